#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

typedef struct sf_private_tag SNDFILE;

namespace telestra::backend {

// Records a call to a WAV file with libsndfile: 8 kHz, 16-bit PCM, stereo,
// left = received audio, right = sent audio. Frames are buffered and
// written every 300 ms (incrementally; libsndfile rewrites the header after
// each write, so the file is valid at any time), the rest on Close().
// A write error (disk full) stops the recording, logged once.
// Thread: owned by one call; the engine's lock serialises access.
class WavRecorder {
 public:
  // Creates (or truncates) `path`. InvalidArgument naming the path if it
  // cannot be created.
  static absl::StatusOr<std::unique_ptr<WavRecorder>> Create(const std::string& path);

  // A call restored after a restart (docs/restart.md): goes on at the end
  // of the recording its last run left at `path` (valid up to its last
  // write), first with silence for the time since that write (at most
  // kMaxGapSeconds: it is written at once, under the media engine's lock,
  // so a longer gap is shortened to it), so that the recording keeps the
  // call's timeline. A file that is absent or not such a recording is
  // created anew.
  static absl::StatusOr<std::unique_ptr<WavRecorder>> Resume(const std::string& path);
  static constexpr int kMaxGapSeconds = 60;

  ~WavRecorder();
  WavRecorder(const WavRecorder&) = delete;
  WavRecorder& operator=(const WavRecorder&) = delete;

  // Appends one 20 ms frame: kFrameSamples samples per channel.
  void Append(const int16_t* received, const int16_t* sent);

  // Writes what is buffered and closes the file. Idempotent.
  void Close();

  const std::string& path() const { return path_; }
  int64_t frames_appended() const { return frames_appended_; }
  bool failed() const { return failed_; }

  // Sample frames buffered before a write.
  static constexpr int kBufferFrames = 2400;  // 300 ms, whole 20 ms frames

 private:
  WavRecorder(std::string path, SNDFILE* file);
  void Flush();

  const std::string path_;
  SNDFILE* file_;
  std::vector<int16_t> buffer_;  // interleaved L/R, kBufferFrames frames
  int buffered_frames_ = 0;
  int64_t frames_appended_ = 0;
  bool failed_ = false;
};

}  // namespace telestra::backend
