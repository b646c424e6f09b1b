#include "backend/media/audio_clip.h"

#include <sys/stat.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backend/media/audio_format.h"
#include "backend/media/sound_file.h"

namespace telestra::backend {
namespace {

absl::Status Invalid(const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("audio file ", path, ": ", why));
}

}  // namespace

absl::StatusOr<AudioClip> LoadAudioClip(const std::string& path) {
  absl::StatusOr<std::vector<int16_t>> pcm = DecodeMonoPcm(path, kSampleRate, kMaxAudioClipSeconds);
  if (!pcm.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("audio file ", pcm.status().message()));
  }
  return *std::move(pcm);
}

absl::StatusOr<std::shared_ptr<const AudioClip>> AudioClipCache::Load(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return Invalid(path, "cannot open: no such file or not accessible");
  }
  int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  {
    absl::MutexLock lock(&mu_);
    absl::erase_if(entries_, [](const auto& entry) { return entry.second.clip.expired(); });
    auto it = entries_.find(path);
    if (it != entries_.end() && it->second.mtime_ns == mtime_ns && it->second.size == st.st_size) {
      if (std::shared_ptr<const AudioClip> clip = it->second.clip.lock()) return clip;
    }
  }
  // Decode outside the lock: two calls may decode the same file at once;
  // the later one wins the cache slot, both get a correct clip.
  absl::StatusOr<AudioClip> clip = LoadAudioClip(path);
  if (!clip.ok()) return clip.status();
  auto shared = std::make_shared<const AudioClip>(std::move(*clip));
  absl::MutexLock lock(&mu_);
  entries_[path] = Entry{mtime_ns, static_cast<int64_t>(st.st_size), shared};
  return shared;
}

}  // namespace telestra::backend
