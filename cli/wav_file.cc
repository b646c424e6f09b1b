#include "cli/wav_file.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backend/media/sound_file.h"

namespace telestra::cli {
namespace {

absl::Status Invalid(const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
}

}  // namespace

absl::StatusOr<std::vector<int16_t>> LoadMonoPcm(const std::string& path, int rate) {
  return backend::DecodeMonoPcm(path, rate, kMaxPlaySeconds);
}

absl::StatusOr<std::unique_ptr<WavRecorder>> WavRecorder::Create(const std::string& path,
                                                                 int rate) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  if (file == nullptr) return Invalid(path, sf_strerror(nullptr));
  sf_command(file, SFC_SET_UPDATE_HEADER_AUTO, nullptr, SF_TRUE);
  return std::unique_ptr<WavRecorder>(new WavRecorder(file, path, rate));
}

WavRecorder::~WavRecorder() { sf_close(file_); }

absl::Status WavRecorder::Write(uint32_t sequence, absl::string_view pcm) {
  const size_t count = pcm.size() / 2;
  std::vector<int16_t> samples(count);
  for (size_t i = 0; i < count; ++i) {  // little-endian on the wire, whatever the host
    samples[i] = static_cast<int16_t>(static_cast<uint8_t>(pcm[2 * i]) |
                                      (static_cast<uint8_t>(pcm[2 * i + 1]) << 8));
  }
  if (have_sequence_ && sequence != next_sequence_) {
    const uint32_t gap = sequence - next_sequence_;  // frames dropped (mod 2^32)
    if (gap <= kMaxGapFrames) {
      std::vector<int16_t> silence(static_cast<size_t>(gap) * frame_samples_, 0);
      absl::Status status = WriteSamples(silence.data(), silence.size());
      if (!status.ok()) return status;
    }
  }
  have_sequence_ = true;
  next_sequence_ = sequence + 1;
  frame_samples_ = count;
  return WriteSamples(samples.data(), samples.size());
}

absl::Status WavRecorder::WriteSamples(const int16_t* samples, size_t count) {
  if (count == 0) return absl::OkStatus();
  sf_count_t written = sf_write_short(file_, samples, static_cast<sf_count_t>(count));
  samples_ += written;
  if (written != static_cast<sf_count_t>(count)) {
    return Invalid(path_, absl::StrCat("write failed: ", sf_strerror(file_)));
  }
  return absl::OkStatus();
}

}  // namespace telestra::cli
