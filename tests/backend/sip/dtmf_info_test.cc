#include "backend/sip/dtmf_info.h"

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(DtmfInfoTest, DtmfRelayBodiesAsPhonesSendThem) {
  absl::StatusOr<InfoDigit> digit =
      ParseDtmfInfo("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n");
  ASSERT_TRUE(digit.ok()) << digit.status();
  EXPECT_EQ(digit->digit, '5');
  EXPECT_EQ(digit->duration_ms, 160);
  // LF only, blanks, other case, a parameter on the type, # and A-D.
  digit = ParseDtmfInfo("Application/DTMF-Relay; charset=x", "signal = #\nduration= 250\n");
  ASSERT_TRUE(digit.ok()) << digit.status();
  EXPECT_EQ(digit->digit, '#');
  EXPECT_EQ(digit->duration_ms, 250);
  digit = ParseDtmfInfo("application/dtmf-relay", "Signal=b\r\n");
  ASSERT_TRUE(digit.ok());
  EXPECT_EQ(digit->digit, 'B');
  EXPECT_EQ(digit->duration_ms, 0) << "no Duration";
  // The event code form (some gateways send 10 for *, 11 for #).
  digit = ParseDtmfInfo("application/dtmf-relay", "Signal=11\r\nDuration=100\r\n");
  ASSERT_TRUE(digit.ok());
  EXPECT_EQ(digit->digit, '#');
  // A nonsense Duration is ignored, not an error.
  digit = ParseDtmfInfo("application/dtmf-relay", "Signal=1\r\nDuration=-4\r\n");
  ASSERT_TRUE(digit.ok());
  EXPECT_EQ(digit->duration_ms, 0);
}

TEST(DtmfInfoTest, ApplicationDtmfBodies) {
  absl::StatusOr<InfoDigit> digit = ParseDtmfInfo("application/dtmf", "7\r\n");
  ASSERT_TRUE(digit.ok()) << digit.status();
  EXPECT_EQ(digit->digit, '7');
  digit = ParseDtmfInfo("application/dtmf", "10");
  ASSERT_TRUE(digit.ok());
  EXPECT_EQ(digit->digit, '*');
}

TEST(DtmfInfoTest, BodiesThatAreNoDigitAreRefusedWithTheReason) {
  EXPECT_EQ(ParseDtmfInfo("application/dtmf-relay", "Duration=100\r\n").status().message(),
            "no Signal in the application/dtmf-relay body");
  EXPECT_EQ(ParseDtmfInfo("application/dtmf-relay", "Signal=X\r\n").status().message(),
            "Invalid DTMF digit: 'X'");
  EXPECT_EQ(ParseDtmfInfo("application/dtmf", "16").status().message(),
            "Invalid DTMF digit: '16'");
  EXPECT_EQ(ParseDtmfInfo("application/dtmf", std::string("\x01\x02", 2)).status().message(),
            "Invalid DTMF digit: '??'");
  EXPECT_FALSE(ParseDtmfInfo("text/plain", "5").ok());
}

TEST(DtmfInfoTest, ContentTypesAndTheBodyWeSend) {
  EXPECT_TRUE(IsDtmfInfoType("application/dtmf-relay"));
  EXPECT_TRUE(IsDtmfInfoType(" APPLICATION/DTMF ;x=y"));
  EXPECT_FALSE(IsDtmfInfoType("application/media_control+xml"));
  EXPECT_FALSE(IsDtmfInfoType(""));
  EXPECT_EQ(DtmfRelayBody('#', 100), "Signal=#\r\nDuration=100\r\n");
}

}  // namespace
}  // namespace telestra::backend
