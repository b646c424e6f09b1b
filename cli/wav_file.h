// Sound files for `telestra audio`: a file to play read into the stream's
// format, and a recording written as the stream's frames come.
#pragma once

#include <sndfile.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace telestra::cli {

// Files to play are cut after this long.
inline constexpr int kMaxPlaySeconds = 600;

// Reads any file libsndfile reads (WAV in any encoding, FLAC, Ogg ...),
// averages its channels to mono and resamples it to `rate` with speexdsp
// when its rate differs: 16-bit samples. InvalidArgument naming the path
// when it cannot be read or holds no audio.
absl::StatusOr<std::vector<int16_t>> LoadMonoPcm(const std::string& path, int rate);

// A mono 16-bit PCM WAV file being written, frame by frame. A gap in the
// frames' sequence numbers (frames the gateway dropped for a slow client)
// is filled with silence, so the recording keeps the call's timeline. The
// header is rewritten after every write: the file is a valid WAV at any
// moment, also if telestra is killed.
// Thread: one thread.
class WavRecorder {
 public:
  // Longest gap filled with silence (a larger jump is not filled).
  static constexpr uint32_t kMaxGapFrames = 3000;  // 60 s

  // InvalidArgument naming the path when the file cannot be created.
  static absl::StatusOr<std::unique_ptr<WavRecorder>> Create(const std::string& path, int rate);
  ~WavRecorder();
  WavRecorder(const WavRecorder&) = delete;
  WavRecorder& operator=(const WavRecorder&) = delete;

  // One frame: little-endian 16-bit samples, and its sequence number.
  absl::Status Write(uint32_t sequence, absl::string_view pcm);

  int64_t samples() const { return samples_; }
  int rate() const { return rate_; }

 private:
  WavRecorder(SNDFILE* file, std::string path, int rate)
      : file_(file), path_(std::move(path)), rate_(rate) {}
  absl::Status WriteSamples(const int16_t* samples, size_t count);

  SNDFILE* file_;
  const std::string path_;
  const int rate_;
  int64_t samples_ = 0;
  bool have_sequence_ = false;
  uint32_t next_sequence_ = 0;
  size_t frame_samples_ = 0;  // of the last frame
};

}  // namespace telestra::cli
