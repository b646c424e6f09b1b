#pragma once

#include <cstdint>
#include <memory>

#include "backend/media/audio_clip.h"

namespace telestra::backend {

// What a call sends, one 20 ms frame at a time: silence, a sine tone at
// -10 dBFS (peak 10^(-10/20) of full scale; spandsp's table-driven DDS, so
// no sin() per sample), or a clip played in a loop.
// Thread: owned by one call; the engine's lock serialises access.
class AudioGenerator {
 public:
  static AudioGenerator Silence();
  static AudioGenerator Tone(int hz);
  static AudioGenerator Clip(std::shared_ptr<const AudioClip> clip);

  // Writes the next kFrameSamples samples to `frame`.
  void Next(int16_t* frame);

 private:
  enum class Kind { kSilence, kTone, kClip };
  explicit AudioGenerator(Kind kind) : kind_(kind) {}

  Kind kind_;
  uint32_t phase_ = 0;  // kTone
  int32_t phase_rate_ = 0;  // kTone
  std::shared_ptr<const AudioClip> clip_;  // kClip, never empty
  size_t position_ = 0;  // kClip
};

// Peak amplitude of the tone: -10 dBFS.
inline constexpr int16_t kToneAmplitude = 10362;

}  // namespace telestra::backend
