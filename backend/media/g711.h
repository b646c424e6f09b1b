#pragma once

#include <cstdint>

#include "absl/types/span.h"

namespace telestra::backend {

// G.711 (PCMU, PCMA) through spandsp's A-law/u-law conversions.
// Thread: any (pure functions).

inline constexpr int kPayloadTypePcmu = 0;
inline constexpr int kPayloadTypePcma = 8;

inline bool IsG711(int payload_type) {
  return payload_type == kPayloadTypePcmu || payload_type == kPayloadTypePcma;
}

// Encodes in.size() samples into `out` (at least in.size() bytes).
// `payload_type` must be IsG711.
void G711Encode(int payload_type, absl::Span<const int16_t> in, uint8_t* out);

// Decodes in.size() bytes into `out` (at least in.size() samples).
void G711Decode(int payload_type, absl::Span<const uint8_t> in, int16_t* out);

}  // namespace telestra::backend
