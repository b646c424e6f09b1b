// A 20 ms frame of 8 kHz PCM that carries a 16-bit number through G.711,
// so that a benchmark can tell which frame came out of the other end of a
// call (bench/call_audio.cc): 16 runs of 10 samples, one per bit (most
// significant first), at +8000 for a one and -8000 for a zero. G.711 keeps
// the sign and the rough level of every sample, so the number survives an
// encode and decode; silence, a tone or a frame cut in two do not read as a
// number (every sample of a run must be loud and of the run's sign).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>

#include "backend/media/audio_format.h"

namespace telestra::bench {

inline constexpr int kMarkerBits = 16;
inline constexpr int kMarkerRun = backend::kFrameSamples / kMarkerBits;  // 10 samples
inline constexpr int16_t kMarkerLevel = 8000;
// Below this a sample is not part of a marker (G.711 turns 8000 into
// 7,900..8,200).
inline constexpr int16_t kMarkerThreshold = 4000;

// Writes `number` into `pcm` (kFrameSamples samples).
// Thread: any (pure).
inline void WriteMarkedFrame(uint16_t number, int16_t* pcm) {
  for (int bit = 0; bit < kMarkerBits; ++bit) {
    const bool one = (number >> (kMarkerBits - 1 - bit)) & 1;
    for (int i = 0; i < kMarkerRun; ++i) {
      pcm[bit * kMarkerRun + i] = one ? kMarkerLevel : static_cast<int16_t>(-kMarkerLevel);
    }
  }
}

// The number in `pcm` (kFrameSamples samples), if it holds one.
// Thread: any (pure).
inline std::optional<uint16_t> ReadMarkedFrame(const int16_t* pcm) {
  uint16_t number = 0;
  for (int bit = 0; bit < kMarkerBits; ++bit) {
    const bool one = pcm[bit * kMarkerRun] > 0;
    for (int i = 0; i < kMarkerRun; ++i) {
      const int16_t sample = pcm[bit * kMarkerRun + i];
      if (std::abs(sample) < kMarkerThreshold || (sample > 0) != one) return std::nullopt;
    }
    number = static_cast<uint16_t>((number << 1) | (one ? 1 : 0));
  }
  return number;
}

}  // namespace telestra::bench
