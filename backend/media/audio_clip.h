#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace telestra::backend {

// Audio from a file, converted to the engine's format: 8 kHz, mono, 16-bit.
using AudioClip = std::vector<int16_t>;

// Clips longer than this are cut (10 minutes = 9.6 MB at 8 kHz).
inline constexpr int kMaxAudioClipSeconds = 600;

// Reads any file libsndfile can read (WAV in any of its encodings, ...),
// averages its channels to mono and resamples it to 8 kHz with speexdsp's
// resampler when its rate differs. InvalidArgument naming the path when the
// file cannot be opened or holds no audio.
// Thread: any. Blocks on file I/O: call it outside the media thread.
absl::StatusOr<AudioClip> LoadAudioClip(const std::string& path);

// Shares one decoded copy of a file between the calls that play it: a clip
// stays cached while a call holds it (and is reloaded if the file changes).
// Thread: any.
class AudioClipCache {
 public:
  absl::StatusOr<std::shared_ptr<const AudioClip>> Load(const std::string& path);

 private:
  struct Entry {
    int64_t mtime_ns = 0;
    int64_t size = 0;
    std::weak_ptr<const AudioClip> clip;
  };
  // Lock order: a leaf (files are decoded outside it; nothing is called).
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace telestra::backend
