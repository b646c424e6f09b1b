#include "backend/dtmf.h"

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(DtmfTest, EventCodesFollowRfc4733) {
  const std::string digits = "0123456789*#ABCD";
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(DtmfEventCode(digits[i]), i) << digits[i];
    EXPECT_EQ(DtmfDigitOfEvent(i), digits[i]);
  }
  EXPECT_EQ(DtmfEventCode('a'), 12);
  EXPECT_EQ(DtmfEventCode('d'), 15);
  EXPECT_EQ(DtmfEventCode('E'), -1);
  EXPECT_EQ(DtmfEventCode(' '), -1);
  EXPECT_EQ(DtmfDigitOfEvent(16), '\0');
  EXPECT_EQ(DtmfDigitOfEvent(-1), '\0');
}

TEST(DtmfTest, DigitsAreCheckedAndNormalized) {
  EXPECT_EQ(*NormalizeDtmfDigits("12*#abCD"), "12*#ABCD");
  EXPECT_EQ(NormalizeDtmfDigits("").status().message(), "Field digits must not be empty");
  EXPECT_EQ(NormalizeDtmfDigits("12x").status().message(), "Invalid DTMF digit: 'x'");
  EXPECT_EQ(NormalizeDtmfDigits(std::string("1\n", 2)).status().message(),
            "Invalid DTMF digit: '\\x0A'");
  EXPECT_TRUE(NormalizeDtmfDigits(std::string(64, '1')).ok());
  EXPECT_EQ(NormalizeDtmfDigits(std::string(65, '1')).status().message(),
            "Too many DTMF digits: 65 (at most 64)");
}

TEST(DtmfTest, DurationDefaultsAndRange) {
  EXPECT_EQ(*CheckDtmfDuration(0), 100);
  EXPECT_EQ(*CheckDtmfDuration(40), 40);
  EXPECT_EQ(*CheckDtmfDuration(2000), 2000);
  EXPECT_EQ(CheckDtmfDuration(39).status().message(),
            "Field duration_ms out of range: 39 (40..2000)");
  EXPECT_EQ(CheckDtmfDuration(2001).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckDtmfDuration(-5).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace telestra::backend
