#include "backend/media/g711.h"

#include <cstdint>

// spandsp's headers must come in this order: telephony.h first.
// clang-format off
extern "C" {
#include <spandsp/telephony.h>
#include <spandsp/bit_operations.h>
#include <spandsp/g711.h>
}
// clang-format on

namespace telestra::backend {

void G711Encode(int payload_type, absl::Span<const int16_t> in, uint8_t* out) {
  if (payload_type == kPayloadTypePcma) {
    for (size_t i = 0; i < in.size(); ++i) out[i] = linear_to_alaw(in[i]);
  } else {
    for (size_t i = 0; i < in.size(); ++i) out[i] = linear_to_ulaw(in[i]);
  }
}

void G711Decode(int payload_type, absl::Span<const uint8_t> in, int16_t* out) {
  if (payload_type == kPayloadTypePcma) {
    for (size_t i = 0; i < in.size(); ++i) out[i] = alaw_to_linear(in[i]);
  } else {
    for (size_t i = 0; i < in.size(); ++i) out[i] = ulaw_to_linear(in[i]);
  }
}

}  // namespace telestra::backend
