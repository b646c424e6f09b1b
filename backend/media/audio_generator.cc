#include "backend/media/audio_generator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>

#include "backend/media/audio_format.h"

namespace telestra::backend {

AudioGenerator AudioGenerator::Silence() { return AudioGenerator(nullptr); }

AudioGenerator AudioGenerator::Tone(int hz) {
  if (hz <= 0 || hz >= kSampleRate / 2) return Silence();
  int period = kSampleRate / std::gcd(hz, kSampleRate);
  auto table = std::make_shared<AudioClip>(period);
  for (int n = 0; n < period; ++n) {
    double phase = 2 * M_PI * static_cast<double>(hz) * n / kSampleRate;
    (*table)[n] = static_cast<int16_t>(std::lrint(kToneAmplitude * std::sin(phase)));
  }
  return AudioGenerator(std::move(table));
}

AudioGenerator AudioGenerator::Clip(std::shared_ptr<const AudioClip> clip) {
  return AudioGenerator(std::move(clip));
}

void AudioGenerator::Next(int16_t* frame) {
  if (loop_ == nullptr || loop_->empty()) {
    std::memset(frame, 0, kFrameSamples * sizeof(int16_t));
    return;
  }
  const AudioClip& loop = *loop_;
  // Bounded: each pass copies at least one sample.
  for (int filled = 0; filled < kFrameSamples;) {
    int count = static_cast<int>(std::min<size_t>(kFrameSamples - filled, loop.size() - position_));
    std::memcpy(frame + filled, loop.data() + position_, count * sizeof(int16_t));
    filled += count;
    position_ += count;
    if (position_ == loop.size()) position_ = 0;
  }
}

}  // namespace telestra::backend
