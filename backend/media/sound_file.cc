#include "backend/media/sound_file.h"

#include <sndfile.h>
#include <speex/speex_resampler.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

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

absl::Status Invalid(const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
}

// Appends `count` samples of `in` to `pcm`, through the resampler when
// there is one, up to `limit` samples in all.
void Append(SpeexResamplerState* resampler, const float* in, size_t count, size_t limit,
            std::vector<int16_t>* pcm) {
  if (resampler == nullptr) {
    for (size_t i = 0; i < count && pcm->size() < limit; ++i) pcm->push_back(ToPcm16(in[i]));
    return;
  }
  float out[1024];
  // Each pass consumes input; the bound guards against one that does not.
  for (int idle = 0; count > 0 && idle < 8 && pcm->size() < limit;) {
    spx_uint32_t in_len = static_cast<spx_uint32_t>(count);
    spx_uint32_t out_len = static_cast<spx_uint32_t>(std::size(out));
    speex_resampler_process_float(resampler, 0, in, &in_len, out, &out_len);
    for (spx_uint32_t i = 0; i < out_len && pcm->size() < limit; ++i) {
      pcm->push_back(ToPcm16(out[i]));
    }
    in += in_len;
    count -= in_len;
    idle = (in_len == 0 && out_len == 0) ? idle + 1 : 0;
  }
}

}  // namespace

absl::StatusOr<std::vector<int16_t>> DecodeMonoPcm(const std::string& path, int rate,
                                                   int max_seconds) {
  SF_INFO info{};
  std::unique_ptr<SNDFILE, SndfileCloser> file(sf_open(path.c_str(), SFM_READ, &info));
  if (file == nullptr) return Invalid(path, absl::StrCat("cannot open: ", sf_strerror(nullptr)));
  if (info.channels < 1) return Invalid(path, "no audio channels");
  if (info.samplerate < 1000 || info.samplerate > 768000) {
    return Invalid(path, absl::StrCat("unsupported sample rate ", info.samplerate, " Hz"));
  }

  std::unique_ptr<SpeexResamplerState, ResamplerDestroyer> resampler;
  if (info.samplerate != rate) {
    int error = 0;
    resampler.reset(speex_resampler_init(1, static_cast<spx_uint32_t>(info.samplerate),
                                         static_cast<spx_uint32_t>(rate),
                                         SPEEX_RESAMPLER_QUALITY_DEFAULT, &error));
    if (resampler == nullptr) {
      return Invalid(path, absl::StrCat("cannot resample from ", info.samplerate,
                                        " Hz: ", speex_resampler_strerror(error)));
    }
    speex_resampler_skip_zeros(resampler.get());  // no leading filter delay
  }

  const size_t limit = static_cast<size_t>(max_seconds) * static_cast<size_t>(rate);
  std::vector<int16_t> pcm;
  std::vector<float> interleaved(kChunkFrames * info.channels);
  std::vector<float> mono(kChunkFrames);
  while (pcm.size() < limit) {
    sf_count_t frames = sf_readf_float(file.get(), interleaved.data(), kChunkFrames);
    if (frames <= 0) break;
    for (sf_count_t i = 0; i < frames; ++i) {
      float sum = 0;
      for (int c = 0; c < info.channels; ++c) sum += interleaved[i * info.channels + c];
      mono[i] = sum / static_cast<float>(info.channels);
    }
    Append(resampler.get(), mono.data(), static_cast<size_t>(frames), limit, &pcm);
  }
  if (resampler != nullptr && !pcm.empty()) {
    // The filter's tail comes out with zeros after the end.
    std::vector<float> zeros(speex_resampler_get_input_latency(resampler.get()), 0.0f);
    Append(resampler.get(), zeros.data(), zeros.size(), limit, &pcm);
  }
  if (pcm.empty()) return Invalid(path, "holds no audio");
  return pcm;
}

}  // namespace telestra::backend
