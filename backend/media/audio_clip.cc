#include "backend/media/audio_clip.h"

#include <sndfile.h>
#include <speex/speex_resampler.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backend/media/audio_format.h"

namespace telestra::backend {
namespace {

constexpr sf_count_t kChunkFrames = 4096;

struct SndfileCloser {
  void operator()(SNDFILE* file) const { sf_close(file); }
};

struct ResamplerDestroyer {
  void operator()(SpeexResamplerState* state) const { speex_resampler_destroy(state); }
};

// libsndfile reads 16-bit samples as s / 32768, so this is exact for them.
int16_t ToPcm16(float sample) {
  long value = std::lrint(static_cast<double>(sample) * 32768.0);
  return static_cast<int16_t>(std::clamp<long>(value, -32768, 32767));
}

// Feeds `in` through the resampler (or copies it when there is none) and
// appends the result to `clip`, up to `limit` samples.
void Convert(SpeexResamplerState* resampler, const float* in, size_t count,
             std::vector<float>* scratch, size_t limit, AudioClip* clip) {
  if (resampler == nullptr) {
    for (size_t i = 0; i < count && clip->size() < limit; ++i) clip->push_back(ToPcm16(in[i]));
    return;
  }
  // Each pass consumes some input; the bound guards against a resampler
  // that consumes nothing.
  for (int pass = 0; count > 0 && pass < 64; ++pass) {
    spx_uint32_t in_len = static_cast<spx_uint32_t>(count);
    spx_uint32_t out_len = static_cast<spx_uint32_t>(scratch->size());
    speex_resampler_process_float(resampler, 0, in, &in_len, scratch->data(), &out_len);
    for (spx_uint32_t i = 0; i < out_len && clip->size() < limit; ++i) {
      clip->push_back(ToPcm16((*scratch)[i]));
    }
    in += in_len;
    count -= in_len;
  }
}

absl::Status Invalid(const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("audio file ", path, ": ", why));
}

}  // namespace

absl::StatusOr<AudioClip> LoadAudioClip(const std::string& path) {
  SF_INFO info{};
  std::unique_ptr<SNDFILE, SndfileCloser> file(sf_open(path.c_str(), SFM_READ, &info));
  if (file == nullptr) {
    return Invalid(path, absl::StrCat("cannot open: ", sf_strerror(nullptr)));
  }
  if (info.channels < 1) return Invalid(path, "no audio channels");
  if (info.samplerate < 1000 || info.samplerate > 768000) {
    return Invalid(path, absl::StrCat("unsupported sample rate ", info.samplerate, " Hz"));
  }

  std::unique_ptr<SpeexResamplerState, ResamplerDestroyer> resampler;
  if (info.samplerate != kSampleRate) {
    int error = 0;
    resampler.reset(speex_resampler_init(1, static_cast<spx_uint32_t>(info.samplerate), kSampleRate,
                                         SPEEX_RESAMPLER_QUALITY_DEFAULT, &error));
    if (resampler == nullptr) {
      return Invalid(path, absl::StrCat("cannot resample from ", info.samplerate,
                                        " Hz: ", speex_resampler_strerror(error)));
    }
    speex_resampler_skip_zeros(resampler.get());  // no leading filter delay
  }

  const size_t limit = static_cast<size_t>(kMaxAudioClipSeconds) * kSampleRate;
  std::vector<float> interleaved(kChunkFrames * info.channels);
  std::vector<float> mono(kChunkFrames);
  // One chunk's output at the file's rate, plus the filter's slack.
  std::vector<float> scratch(static_cast<size_t>(kChunkFrames * kSampleRate / info.samplerate) +
                             64);
  AudioClip clip;
  while (clip.size() < limit) {
    sf_count_t frames = sf_readf_float(file.get(), interleaved.data(), kChunkFrames);
    if (frames <= 0) break;
    for (sf_count_t i = 0; i < frames; ++i) {
      float sum = 0;
      for (int c = 0; c < info.channels; ++c) sum += interleaved[i * info.channels + c];
      mono[i] = sum / static_cast<float>(info.channels);
    }
    Convert(resampler.get(), mono.data(), static_cast<size_t>(frames), &scratch, limit, &clip);
  }
  if (resampler != nullptr && clip.size() < limit) {
    // Flush the filter's tail with zeros.
    std::vector<float> zeros(speex_resampler_get_input_latency(resampler.get()), 0.0f);
    Convert(resampler.get(), zeros.data(), zeros.size(), &scratch, limit, &clip);
  }
  if (clip.empty()) return Invalid(path, "holds no audio");
  return clip;
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
