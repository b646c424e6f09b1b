#include "backend/media/rtp_packet.h"

#include <vector>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(RtpPacketTest, WritesAndParsesTheFixedHeader) {
  RtpHeader header;
  header.marker = true;
  header.payload_type = 8;
  header.sequence = 0xfffe;
  header.timestamp = 0x89abcdef;
  header.ssrc = 0x01234567;
  std::vector<uint8_t> packet(kRtpHeaderSize + 3, 0xd5);
  WriteRtpHeader(header, packet.data());
  EXPECT_EQ(packet[0], 0x80);
  EXPECT_EQ(packet[1], 0x88);  // marker + PT 8
  std::optional<RtpPacketView> view = ParseRtpPacket(packet);
  ASSERT_TRUE(view.has_value());
  EXPECT_TRUE(view->header.marker);
  EXPECT_EQ(view->header.payload_type, 8);
  EXPECT_EQ(view->header.sequence, 0xfffe);
  EXPECT_EQ(view->header.timestamp, 0x89abcdefu);
  EXPECT_EQ(view->header.ssrc, 0x01234567u);
  EXPECT_EQ(view->payload.size(), 3u);
}

TEST(RtpPacketTest, SkipsCsrcsExtensionAndPadding) {
  std::vector<uint8_t> packet = {
      0xb1, 0x00, 0x00, 0x01,  // V=2 P=1 X=1 CC=1, PT 0, seq 1
      0,    0,    0,    160,   // timestamp
      0,    0,    0,    7,     // SSRC
      0,    0,    0,    9,     // CSRC
      0xbe, 0xde, 0,    1,     // extension header, 1 word
      1,    2,    3,    4,     // extension word
      0x11, 0x22,              // payload
      0,    0,    3,           // padding (3 bytes, count in the last)
  };
  std::optional<RtpPacketView> view = ParseRtpPacket(packet);
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->payload.size(), 2u);
  EXPECT_EQ(view->payload[0], 0x11);
  EXPECT_EQ(view->payload[1], 0x22);
}

TEST(RtpPacketTest, RejectsMalformedDatagrams) {
  std::vector<uint8_t> short_packet(11, 0x80);
  EXPECT_FALSE(ParseRtpPacket(short_packet).has_value());
  std::vector<uint8_t> version1(12, 0);
  version1[0] = 0x40;
  EXPECT_FALSE(ParseRtpPacket(version1).has_value());
  std::vector<uint8_t> csrc_overflow(12, 0);
  csrc_overflow[0] = 0x8f;  // 15 CSRCs, none present
  EXPECT_FALSE(ParseRtpPacket(csrc_overflow).has_value());
  std::vector<uint8_t> extension_overflow = {0x90, 0, 0, 0, 0,    0,    0, 0,
                                             0,    0, 0, 0, 0xbe, 0xde, 0, 9};
  EXPECT_FALSE(ParseRtpPacket(extension_overflow).has_value());
  std::vector<uint8_t> padding_overflow(13, 0);
  padding_overflow[0] = 0xa0;
  padding_overflow[12] = 200;
  EXPECT_FALSE(ParseRtpPacket(padding_overflow).has_value());
}

}  // namespace
}  // namespace telestra::backend
