#include "backend/media/g711.h"

#include <cstdlib>
#include <vector>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(G711Test, SilenceHasTheStandardIdleCodes) {
  int16_t zero[4] = {0, 0, 0, 0};
  uint8_t out[4];
  G711Encode(kPayloadTypePcmu, zero, out);
  EXPECT_EQ(out[0], 0xff);
  G711Encode(kPayloadTypePcma, zero, out);
  EXPECT_EQ(out[0], 0xd5);
}

TEST(G711Test, EveryCodeDecodesAndEncodesBackToItself) {
  for (int payload_type : {kPayloadTypePcmu, kPayloadTypePcma}) {
    for (int code = 0; code < 256; ++code) {
      if (payload_type == kPayloadTypePcmu && code == 0x7f) continue;  // -0 encodes as +0
      uint8_t in = static_cast<uint8_t>(code);
      int16_t linear;
      G711Decode(payload_type, absl::MakeConstSpan(&in, 1), &linear);
      uint8_t back;
      G711Encode(payload_type, absl::MakeConstSpan(&linear, 1), &back);
      EXPECT_EQ(back, in) << "payload type " << payload_type << " code " << code;
    }
  }
}

TEST(G711Test, RoundTripErrorIsWithinTheCompandingStep) {
  std::vector<int16_t> in;
  for (int v = -32000; v <= 32000; v += 37) in.push_back(static_cast<int16_t>(v));
  std::vector<uint8_t> coded(in.size());
  std::vector<int16_t> out(in.size());
  for (int payload_type : {kPayloadTypePcmu, kPayloadTypePcma}) {
    G711Encode(payload_type, in, coded.data());
    G711Decode(payload_type, coded, out.data());
    for (size_t i = 0; i < in.size(); ++i) {
      int error = std::abs(in[i] - out[i]);
      // G.711 keeps 4 mantissa bits: the error is below 1/16 of the value
      // (plus the smallest step near zero).
      EXPECT_LE(error, std::abs(in[i]) / 16 + 16) << in[i];
    }
  }
}

}  // namespace
}  // namespace telestra::backend
