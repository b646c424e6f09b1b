#include "backend/call_quality.h"

#include <cmath>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(CallQualityTest, AG711CallWithoutDelayOrLossScoresTheModelsBest) {
  EXPECT_DOUBLE_EQ(EModelRating(0, 0), 93.2);
  // 1 + 0.035 * 93.2 + 7e-6 * 93.2 * 33.2 * 6.8
  EXPECT_NEAR(MosFromRating(93.2), 4.4093, 1e-4);
}

TEST(CallQualityTest, DelayCostsLittleUntil177MsAndMoreAfter) {
  // Id = 0.024 d below 177.3 ms ...
  EXPECT_NEAR(EModelRating(100, 0), 93.2 - 2.4, 1e-9);
  // ... plus 0.11 (d - 177.3) above it.
  EXPECT_NEAR(EModelRating(300, 0), 93.2 - 7.2 - 0.11 * 122.7, 1e-9);
  EXPECT_NEAR(EModelRating(150, 0) - EModelRating(151, 0), 0.024, 1e-9);
  EXPECT_NEAR(EModelRating(250, 0) - EModelRating(251, 0), 0.134, 1e-9);
}

TEST(CallQualityTest, LossUsesG711sRobustnessWithoutConcealment) {
  // Ie_eff = 95 Ppl / (Ppl + 4.3): 1 % costs 17.9, 5 % costs 51.1.
  EXPECT_NEAR(EModelRating(0, 1), 93.2 - 95.0 / 5.3, 1e-9);
  EXPECT_NEAR(EModelRating(0, 5), 93.2 - 95.0 * 5 / 9.3, 1e-9);
  EXPECT_NEAR(MosFromRating(EModelRating(0, 1)), 3.83, 0.01);
  EXPECT_NEAR(MosFromRating(EModelRating(0, 5)), 2.17, 0.01);
  // Everything lost: the rating goes below zero, the MOS stops at 1.
  EXPECT_DOUBLE_EQ(MosFromRating(EModelRating(0, 100)), 1.0);
}

TEST(CallQualityTest, MosIsClampedOutsideZeroToOneHundred) {
  EXPECT_DOUBLE_EQ(MosFromRating(-5), 1.0);
  EXPECT_DOUBLE_EQ(MosFromRating(0), 1.0);
  EXPECT_DOUBLE_EQ(MosFromRating(100), 4.5);
  EXPECT_DOUBLE_EQ(MosFromRating(120), 4.5);
  EXPECT_NEAR(MosFromRating(50), 1 + 1.75 + 7e-6 * 50 * -10 * 50, 1e-12);
  // The cubic would dip below 1 for small R: held at 1 there, rising after.
  EXPECT_DOUBLE_EQ(MosFromRating(3), 1.0);
  for (double r = 1; r <= 100; r += 1) EXPECT_LE(MosFromRating(r - 1), MosFromRating(r)) << r;
  for (double r = 8; r <= 100; r += 1) EXPECT_LT(MosFromRating(r - 1), MosFromRating(r)) << r;
}

TEST(CallQualityTest, OneWayDelayIsHalfTheRoundTripPlusTheJitterBuffer) {
  EXPECT_DOUBLE_EQ(OneWayDelayMs(std::nullopt, 60), 60.0);
  EXPECT_DOUBLE_EQ(OneWayDelayMs(40.0, 60), 80.0);
}

TEST(CallQualityTest, CodecNamesOfTheG711PayloadTypes) {
  EXPECT_EQ(CodecName(0), "PCMU");
  EXPECT_EQ(CodecName(8), "PCMA");
  EXPECT_EQ(CodecName(-1), "");
  EXPECT_EQ(CodecName(18), "");
}

TEST(CallQualityTest, NoMosBeforeAnyAudio) {
  MediaStats stats;
  stats.negotiated_payload_type = 8;
  stats.jitter_buffer_ms = 60;
  CallQualityFigures q = QualityOf(stats);
  EXPECT_EQ(q.codec, "PCMA");
  EXPECT_EQ(q.packets_received, 0u);
  EXPECT_FALSE(q.mos.has_value());
  EXPECT_FALSE(q.rtt_ms.has_value());
  EXPECT_DOUBLE_EQ(q.loss_percent, 0);
}

TEST(CallQualityTest, FiguresOfACallWithLossLatePacketsAndARoundTrip) {
  MediaStats stats;
  stats.negotiated_payload_type = 0;
  stats.packets_received = 190;
  stats.packets_lost = 8;
  stats.packets_late = 2;  // heard by nobody: counted as lost for the MOS
  stats.jitter_ms = 3.14159;
  stats.rtt_ms = 40.004;
  stats.jitter_buffer_ms = 60;
  CallQualityFigures q = QualityOf(stats);
  EXPECT_EQ(q.codec, "PCMU");
  EXPECT_EQ(q.packets_received, 190u);
  EXPECT_EQ(q.packets_lost, 8u);
  EXPECT_DOUBLE_EQ(q.jitter_ms, 3.14);
  ASSERT_TRUE(q.rtt_ms.has_value());
  EXPECT_DOUBLE_EQ(*q.rtt_ms, 40.0);
  EXPECT_NEAR(q.loss_percent, 100.0 * 10 / 198, 1e-9);
  ASSERT_TRUE(q.mos.has_value());
  // d = 40.004 / 2 + 60 ms, Ppl = 5.05 %.
  const double expected = MosFromRating(EModelRating(80.002, 100.0 * 10 / 198));
  EXPECT_NEAR(*q.mos, expected, 0.005);
  EXPECT_DOUBLE_EQ(*q.mos * 100, std::round(*q.mos * 100));
}

}  // namespace
}  // namespace telestra::backend
