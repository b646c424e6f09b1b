#include "backend/media/rtcp.h"

#include <vector>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

RtcpReportBlock SampleBlock() {
  RtcpReportBlock block;
  block.ssrc = 0x11223344;
  block.fraction_lost = 64;
  block.cumulative_lost = -3;  // duplicates
  block.extended_highest_sequence = 0x00010005;
  block.jitter = 42;
  block.last_sr = 0xaabbccdd;
  block.delay_since_last_sr = 65536;
  return block;
}

TEST(RtcpTest, SenderReportWithBlockSdesAndByeRoundTrips) {
  RtcpCompoundParams params;
  params.ssrc = 0xcafebabe;
  RtcpSenderInfo info;
  info.ntp_timestamp = 0x0123456789abcdefULL;
  info.rtp_timestamp = 1600;
  info.packet_count = 10;
  info.octet_count = 1600;
  params.sender_info = info;
  params.block = SampleBlock();
  params.cname = "account-1@127.0.0.1";
  params.bye = true;
  uint8_t buffer[kMaxRtcpCompoundSize];
  size_t size = WriteRtcpCompound(params, absl::MakeSpan(buffer));
  ASSERT_GT(size, 0u);
  EXPECT_EQ(size % 4, 0u);
  EXPECT_EQ(buffer[0], 0x81);  // V=2, one block
  EXPECT_EQ(buffer[1], kRtcpSenderReport);
  EXPECT_EQ(buffer[3], 12);  // 52 bytes = 13 words

  std::optional<RtcpSummary> summary =
      ParseRtcpCompound(absl::MakeConstSpan(buffer, size), 0x11223344);
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->packets, 3);  // SR, SDES, BYE
  EXPECT_EQ(summary->sender_ssrc, 0xcafebabeu);
  ASSERT_TRUE(summary->sender_info.has_value());
  EXPECT_EQ(summary->sender_info->ntp_timestamp, info.ntp_timestamp);
  EXPECT_EQ(summary->sender_info->rtp_timestamp, 1600u);
  EXPECT_EQ(summary->sender_info->packet_count, 10u);
  EXPECT_EQ(summary->sender_info->octet_count, 1600u);
  ASSERT_TRUE(summary->block_about_us.has_value());
  const RtcpReportBlock& block = *summary->block_about_us;
  EXPECT_EQ(block.fraction_lost, 64);
  EXPECT_EQ(block.cumulative_lost, -3);
  EXPECT_EQ(block.extended_highest_sequence, 0x00010005u);
  EXPECT_EQ(block.jitter, 42u);
  EXPECT_EQ(block.last_sr, 0xaabbccddu);
  EXPECT_EQ(block.delay_since_last_sr, 65536u);
  EXPECT_TRUE(summary->bye);
}

TEST(RtcpTest, ReceiverReportWithoutBlock) {
  RtcpCompoundParams params;
  params.ssrc = 7;
  params.cname = "x";
  uint8_t buffer[kMaxRtcpCompoundSize];
  size_t size = WriteRtcpCompound(params, absl::MakeSpan(buffer));
  ASSERT_EQ(size, 8u + 12u);  // RR header+SSRC, SDES padded to 12
  EXPECT_EQ(buffer[0], 0x80);
  EXPECT_EQ(buffer[1], kRtcpReceiverReport);
  std::optional<RtcpSummary> summary = ParseRtcpCompound(absl::MakeConstSpan(buffer, size), 1);
  ASSERT_TRUE(summary.has_value());
  EXPECT_FALSE(summary->sender_info.has_value());
  EXPECT_FALSE(summary->block_about_us.has_value());
  EXPECT_EQ(summary->sender_ssrc, 7u);
  EXPECT_FALSE(summary->bye);
}

TEST(RtcpTest, BlockAboutAnotherSourceIsNotOurs) {
  RtcpCompoundParams params;
  params.ssrc = 7;
  params.block = SampleBlock();
  uint8_t buffer[kMaxRtcpCompoundSize];
  size_t size = WriteRtcpCompound(params, absl::MakeSpan(buffer));
  std::optional<RtcpSummary> summary = ParseRtcpCompound(absl::MakeConstSpan(buffer, size), 99);
  ASSERT_TRUE(summary.has_value());
  EXPECT_FALSE(summary->block_about_us.has_value());
}

TEST(RtcpTest, LongCnameIsTruncatedAndFits) {
  RtcpCompoundParams params;
  params.sender_info = RtcpSenderInfo();
  params.block = SampleBlock();
  std::string cname(400, 'a');
  params.cname = cname;
  params.bye = true;
  uint8_t buffer[kMaxRtcpCompoundSize];
  EXPECT_EQ(WriteRtcpCompound(params, absl::MakeSpan(buffer)), kMaxRtcpCompoundSize);
  uint8_t small[20];
  EXPECT_EQ(WriteRtcpCompound(params, absl::MakeSpan(small)), 0u);
}

TEST(RtcpTest, RejectsInvalidCompounds) {
  RtcpCompoundParams params;
  params.ssrc = 7;
  params.cname = "x";
  uint8_t buffer[kMaxRtcpCompoundSize];
  size_t size = WriteRtcpCompound(params, absl::MakeSpan(buffer));
  // Truncated.
  EXPECT_FALSE(ParseRtcpCompound(absl::MakeConstSpan(buffer, size - 4), 1).has_value());
  // Wrong version.
  std::vector<uint8_t> bad(buffer, buffer + size);
  bad[0] = 0x40;
  EXPECT_FALSE(ParseRtcpCompound(bad, 1).has_value());
  // Not starting with SR/RR (the SDES alone).
  EXPECT_FALSE(ParseRtcpCompound(absl::MakeConstSpan(buffer + 8, size - 8), 1).has_value());
  // A report count larger than the packet.
  std::vector<uint8_t> overcount(buffer, buffer + size);
  overcount[0] = 0x83;
  EXPECT_FALSE(ParseRtcpCompound(overcount, 1).has_value());
  EXPECT_FALSE(ParseRtcpCompound({}, 1).has_value());
}

TEST(RtcpTest, NtpTimestampOfTheUnixEpochAndHalfASecond) {
  EXPECT_EQ(NtpTimestampFromUnixNanos(0), uint64_t{2208988800} << 32);
  uint64_t half = NtpTimestampFromUnixNanos(500000000);
  EXPECT_EQ(half >> 32, 2208988800u);
  EXPECT_EQ(static_cast<uint32_t>(half), 0x80000000u);
  EXPECT_EQ(NtpMiddle32(0x0123456789abcdefULL), 0x456789abu);
}

// RFC 3550 6.4.1's own example: an SR sent at 0xb705:2000 (LSR), the
// receiver's report 5.25 s later (DLSR 0x0005:4000), arriving at
// 0xb710:8000: the round trip is 0x0006:2000 = 6.125 s.
TEST(RtcpTest, RoundTripIsArrivalMinusLastSrMinusItsDelayAsInRfc3550) {
  std::optional<double> rtt = RtcpRoundTripMs(0xb7108000u, 0xb7052000u, 0x00054000u);
  ASSERT_TRUE(rtt.has_value());
  EXPECT_DOUBLE_EQ(*rtt, 6125.0);
}

TEST(RtcpTest, RoundTripIsRightAcrossTheWrapOfTheNtpClock) {
  // LSR just before the 16.16 clock wraps, arrival just after: 20 ms, of
  // which the far end held 5 ms.
  const uint32_t lsr = 0xffffff00u;
  const uint32_t dlsr = 5 * 65536 / 1000;
  const uint32_t arrival = lsr + 20 * 65536 / 1000;  // wraps
  std::optional<double> rtt = RtcpRoundTripMs(arrival, lsr, dlsr);
  ASSERT_TRUE(rtt.has_value());
  EXPECT_NEAR(*rtt, 15.0, 0.05);
}

TEST(RtcpTest, NoRoundTripWithoutAnSrOrWhenTheDelayExceedsTheElapsedTime) {
  EXPECT_FALSE(RtcpRoundTripMs(0x10000000u, 0, 0).has_value());  // no SR of ours yet
  // A DLSR longer than the time since our SR: clocks or a bogus block.
  EXPECT_FALSE(RtcpRoundTripMs(0x00020000u, 0x00010000u, 0x00020000u).has_value());
  EXPECT_DOUBLE_EQ(*RtcpRoundTripMs(0x00020000u, 0x00010000u, 0x00010000u), 0.0);
}

}  // namespace
}  // namespace telestra::backend
