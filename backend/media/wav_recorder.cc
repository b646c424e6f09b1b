#include "backend/media/wav_recorder.h"

#include <sndfile.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backend/media/audio_format.h"
#include "spdlog/spdlog.h"

namespace telestra::backend {

absl::StatusOr<std::unique_ptr<WavRecorder>> WavRecorder::Create(const std::string& path) {
  SF_INFO info{};
  info.samplerate = kSampleRate;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  if (file == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create recording ", path, ": ", sf_strerror(nullptr)));
  }
  sf_command(file, SFC_SET_UPDATE_HEADER_AUTO, nullptr, SF_TRUE);
  return std::unique_ptr<WavRecorder>(new WavRecorder(path, file));
}

WavRecorder::WavRecorder(std::string path, SNDFILE* file)
    : path_(std::move(path)), file_(file), buffer_(kBufferFrames * 2, 0) {}

WavRecorder::~WavRecorder() { Close(); }

void WavRecorder::Append(const int16_t* received, const int16_t* sent) {
  if (file_ == nullptr || failed_) return;
  // kBufferFrames is a multiple of kFrameSamples, so a frame never straddles.
  static_assert(kBufferFrames % kFrameSamples == 0);
  int16_t* out = buffer_.data() + 2 * buffered_frames_;
  for (int i = 0; i < kFrameSamples; ++i) {
    out[2 * i] = received[i];
    out[2 * i + 1] = sent[i];
  }
  buffered_frames_ += kFrameSamples;
  frames_appended_ += kFrameSamples;
  if (buffered_frames_ == kBufferFrames) Flush();
}

void WavRecorder::Flush() {
  if (buffered_frames_ == 0 || failed_) return;
  sf_count_t written = sf_writef_short(file_, buffer_.data(), buffered_frames_);
  if (written != buffered_frames_) {
    failed_ = true;
    spdlog::error("recording {}: write failed ({}); recording stopped", path_, sf_strerror(file_));
  }
  buffered_frames_ = 0;
}

void WavRecorder::Close() {
  if (file_ == nullptr) return;
  Flush();
  sf_close(file_);
  file_ = nullptr;
}

}  // namespace telestra::backend
