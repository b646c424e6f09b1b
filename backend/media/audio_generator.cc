#include "backend/media/audio_generator.h"

#include <cstring>
#include <utility>

extern "C" {
#include <spandsp/telephony.h>
#include <spandsp/complex.h>
#include <spandsp/dds.h>
}

#include "backend/media/audio_format.h"

namespace telestra::backend {

AudioGenerator AudioGenerator::Silence() { return AudioGenerator(Kind::kSilence); }

AudioGenerator AudioGenerator::Tone(int hz) {
  AudioGenerator generator(Kind::kTone);
  generator.phase_rate_ = dds_phase_rate(static_cast<float>(hz));
  return generator;
}

AudioGenerator AudioGenerator::Clip(std::shared_ptr<const AudioClip> clip) {
  if (clip == nullptr || clip->empty()) return Silence();
  AudioGenerator generator(Kind::kClip);
  generator.clip_ = std::move(clip);
  return generator;
}

void AudioGenerator::Next(int16_t* frame) {
  switch (kind_) {
    case Kind::kSilence:
      std::memset(frame, 0, kFrameSamples * sizeof(int16_t));
      return;
    case Kind::kTone:
      for (int i = 0; i < kFrameSamples; ++i) {
        frame[i] = dds_mod(&phase_, phase_rate_, kToneAmplitude, 0);
      }
      return;
    case Kind::kClip: {
      const AudioClip& clip = *clip_;
      for (int i = 0; i < kFrameSamples; ++i) {
        frame[i] = clip[position_];
        if (++position_ == clip.size()) position_ = 0;
      }
      return;
    }
  }
}

}  // namespace telestra::backend
