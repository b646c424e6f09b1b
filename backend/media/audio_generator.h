#pragma once

#include <cstdint>
#include <memory>

#include "backend/media/audio_clip.h"

namespace telestra::backend {

// What a call sends, one 20 ms frame at a time: silence, a sine tone at
// -10 dBFS, or a clip played in a loop.
//
// A tone is computed once (std::sin) as exactly one period of the sampled
// sine, 8000 / gcd(hz, 8000) samples (8 for 1000 Hz, at most 8000 = 16 KB),
// and then looped like a clip, so producing a frame is a copy, with no math
// per sample and no phase drift.
// Thread: owned by one call; the engine's lock serialises access.
class AudioGenerator {
 public:
  static AudioGenerator Silence();
  // `hz` must be 1..3999 (below Nyquist).
  static AudioGenerator Tone(int hz);
  static AudioGenerator Clip(std::shared_ptr<const AudioClip> clip);

  // Writes the next kFrameSamples samples to `frame`.
  void Next(int16_t* frame);

 private:
  explicit AudioGenerator(std::shared_ptr<const AudioClip> loop) : loop_(std::move(loop)) {}

  std::shared_ptr<const AudioClip> loop_;  // null or empty: silence
  size_t position_ = 0;
};

// Peak amplitude of the tone: -10 dBFS (10^(-10/20) of full scale, so its
// RMS is 10 dB below that of a full-scale sine).
inline constexpr int16_t kToneAmplitude = 10362;

}  // namespace telestra::backend
