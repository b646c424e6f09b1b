#include "backend/sip/refer_syntax.h"

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(ReferSyntaxTest, SipfragStatusLines) {
  auto status = ParseSipfragStatus("SIP/2.0 180 Ringing\r\n");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->first, 180);
  EXPECT_EQ(status->second, "Ringing");
  status = ParseSipfragStatus("SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->first, 200);
  status = ParseSipfragStatus("SIP/2.0 603 Decline");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->second, "Decline");
  EXPECT_FALSE(ParseSipfragStatus("INVITE sip:x@y SIP/2.0\r\n").has_value());
  EXPECT_FALSE(ParseSipfragStatus("SIP/2.0 99 Low\r\n").has_value());
  EXPECT_FALSE(ParseSipfragStatus("SIP/2.0 2000 Big\r\n").has_value());
  EXPECT_FALSE(ParseSipfragStatus("SIP/2.0 abc\r\n").has_value());
  EXPECT_FALSE(ParseSipfragStatus("").has_value());
  EXPECT_EQ(SipfragBody(100, "Trying"), "SIP/2.0 100 Trying\r\n");
}

TEST(ReferSyntaxTest, ReplacesTravelsPercentEncodedInTheReferToUri) {
  const std::string refer_to =
      ReferToWithReplaces("sip:3003@pbx.example", "a1b2@host;from-tag=f1;to-tag=t2");
  EXPECT_EQ(refer_to, "<sip:3003@pbx.example?Replaces=a1b2%40host%3Bfrom-tag%3Df1%3Bto-tag%3Dt2>");
  // And back, from the headers part of a received Refer-To.
  EXPECT_EQ(ReplacesOfUriHeaders("Replaces=a1b2%40host%3Bfrom-tag%3Df1%3Bto-tag%3Dt2"),
            "a1b2@host;from-tag=f1;to-tag=t2");
  EXPECT_EQ(ReplacesOfUriHeaders("X-Other=1&replaces=abc%3bto-tag%3d9"), "abc;to-tag=9");
  EXPECT_EQ(ReplacesOfUriHeaders("X-Other=1"), "");
  EXPECT_EQ(ReplacesOfUriHeaders("Replaces=bad%zz%4"), "bad%zz%4") << "broken escapes kept as is";
}

}  // namespace
}  // namespace telestra::backend
