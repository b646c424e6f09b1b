#include "backend/media/rtp_receive_stats.h"

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(RtpReceiveStatsTest, CountsLossFromSequenceGaps) {
  RtpReceiveStats stats;
  stats.Reset(1, 100);
  for (uint16_t seq = 100; seq < 120; ++seq) {
    if (seq % 5 == 0) continue;  // 100, 105, 110, 115 lost
    EXPECT_TRUE(stats.UpdateSequence(seq));
  }
  EXPECT_EQ(stats.received(), 16u);
  EXPECT_EQ(stats.expected(), 20u);  // 100..119
  EXPECT_EQ(stats.cumulative_lost(), 4);
  RtcpReportBlock block = stats.MakeReportBlock(0, 0);
  EXPECT_EQ(block.cumulative_lost, 4);
  EXPECT_EQ(block.fraction_lost, 4 * 256 / 20);
  EXPECT_EQ(block.extended_highest_sequence, 119u);
  // The next interval has no loss.
  EXPECT_TRUE(stats.UpdateSequence(120));
  EXPECT_EQ(stats.MakeReportBlock(0, 0).fraction_lost, 0);
}

TEST(RtpReceiveStatsTest, SequenceWrapExtendsTheHighestSequence) {
  RtpReceiveStats stats;
  stats.Reset(1, 65534);
  for (uint16_t seq : {65534, 65535, 0, 1}) EXPECT_TRUE(stats.UpdateSequence(seq));
  EXPECT_EQ(stats.extended_highest_sequence(), 65536u + 1);
  EXPECT_EQ(stats.expected(), 4u);
  EXPECT_EQ(stats.cumulative_lost(), 0);
}

TEST(RtpReceiveStatsTest, ReorderedAndDuplicatePacketsAreNotLoss) {
  RtpReceiveStats stats;
  stats.Reset(1, 10);
  for (uint16_t seq : {10, 12, 11, 13, 13}) EXPECT_TRUE(stats.UpdateSequence(seq));
  EXPECT_EQ(stats.expected(), 4u);
  EXPECT_EQ(stats.received(), 5u);
  EXPECT_EQ(stats.cumulative_lost(), -1);  // a duplicate, as RFC 3550 counts it
}

TEST(RtpReceiveStatsTest, LargeJumpResynchronisesOnlyAfterTwoSequentialPackets) {
  RtpReceiveStats stats;
  stats.Reset(1, 10);
  EXPECT_TRUE(stats.UpdateSequence(10));
  EXPECT_TRUE(stats.UpdateSequence(11));
  EXPECT_FALSE(stats.UpdateSequence(30000));  // a stray packet
  EXPECT_TRUE(stats.UpdateSequence(12));
  EXPECT_FALSE(stats.UpdateSequence(40000));
  EXPECT_TRUE(stats.UpdateSequence(40001));  // the sender restarted
  EXPECT_EQ(stats.expected(), 1u);
  EXPECT_EQ(stats.received(), 1u);
}

TEST(RtpReceiveStatsTest, JitterOfEvenlySpacedPacketsIsZero) {
  RtpReceiveStats stats;
  stats.Reset(1, 0);
  for (uint32_t i = 0; i < 50; ++i) stats.UpdateJitter(1000 + i * 160, 5000 + i * 160);
  EXPECT_EQ(stats.jitter(), 0u);
}

TEST(RtpReceiveStatsTest, JitterConvergesToTheMeanDeviation) {
  // Every other packet arrives 10 ms (80 samples) late: |D| = 80 samples
  // between any two consecutive packets, so J converges to 80.
  RtpReceiveStats stats;
  stats.Reset(1, 0);
  for (uint32_t i = 0; i < 400; ++i) {
    uint32_t arrival = 5000 + i * 160 + (i % 2 == 0 ? 80 : 0);
    stats.UpdateJitter(i * 160, arrival);
  }
  EXPECT_NEAR(static_cast<double>(stats.jitter()), 80.0, 1.0);
}

// Found by the jitter_buffer fuzzer (fuzz/corpus/jitter_buffer/
// regression-jitter-transit-overflow): transit times half the timestamp
// space apart overflowed int32_t (undefined behaviour, UBSan); the
// difference is taken modulo 2^32 like the timestamps.
TEST(RtpReceiveStatsTest, TransitTimesFarApartWrapInsteadOfOverflowing) {
  RtpReceiveStats stats;
  stats.Reset(1, 0);
  stats.UpdateJitter(0, 1);           // transit 1
  stats.UpdateJitter(0x80000000, 0);  // transit INT32_MIN: D = INT32_MIN - 1, i.e. INT32_MAX
  EXPECT_EQ(stats.jitter(), 0x7fffffffu >> 4);
}

}  // namespace
}  // namespace telestra::backend
