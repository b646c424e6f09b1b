#include "backend/media/wav_recorder.h"

#include <sndfile.h>
#include <sys/stat.h>

#include <algorithm>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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

absl::StatusOr<std::unique_ptr<WavRecorder>> WavRecorder::Resume(const std::string& path) {
  struct stat before;
  if (stat(path.c_str(), &before) != 0) return Create(path);
  SF_INFO info{};
  SNDFILE* file = sf_open(path.c_str(), SFM_RDWR, &info);
  if (file == nullptr || info.samplerate != kSampleRate || info.channels != 2 ||
      info.format != (SF_FORMAT_WAV | SF_FORMAT_PCM_16) ||
      sf_seek(file, 0, SEEK_END | SFM_WRITE) < 0) {
    if (file != nullptr) sf_close(file);
    spdlog::warn("recording {}: not a recording to go on with; started anew", path);
    return Create(path);
  }
  sf_command(file, SFC_SET_UPDATE_HEADER_AUTO, nullptr, SF_TRUE);
  std::unique_ptr<WavRecorder> recorder(new WavRecorder(path, file));
  // Silence for the time nothing was recorded (the file's last write to now).
  const double gap =
      std::clamp<double>(absl::ToDoubleSeconds(absl::Now() - absl::TimeFromTimespec(before.st_mtim)),
                         0.0, kMaxGapSeconds);
  const int16_t silence[kFrameSamples] = {};
  const int64_t frames = static_cast<int64_t>(gap * kSampleRate) / kFrameSamples;
  for (int64_t i = 0; i < frames; ++i) recorder->Append(silence, silence);
  recorder->Flush();
  spdlog::info("recording {}: goes on after {:.2f} s of silence", path, gap);
  return recorder;
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
