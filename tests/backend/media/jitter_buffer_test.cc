#include "backend/media/jitter_buffer.h"

#include <vector>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

// A 20 ms packet whose samples all equal `value`.
std::vector<int16_t> Packet(int16_t value) { return std::vector<int16_t>(kFrameSamples, value); }

// Gets a frame; returns its first sample, or -1 if Get() said silence.
int Play(JitterBuffer* buffer) {
  int16_t frame[kFrameSamples];
  bool audio = buffer->Get(frame);
  for (int i = 1; i < kFrameSamples; ++i) EXPECT_EQ(frame[i], frame[0]);
  return audio ? frame[0] : -1;
}

TEST(JitterBufferTest, PlaysInOrderAfterTheConfiguredDepth) {
  JitterBuffer buffer(60);
  EXPECT_EQ(buffer.depth_samples(), 480);
  const uint32_t ts = 1000;
  // The sender and the playout clock tick together: put, then get.
  std::vector<int> played;
  for (int i = 0; i < 10; ++i) {
    buffer.Put(ts + i * kFrameSamples, Packet(static_cast<int16_t>(i + 1)));
    played.push_back(Play(&buffer));
  }
  // Three ticks of prefill (60 ms), then packets 1, 2, ... in order.
  EXPECT_EQ(played, (std::vector<int>{-1, -1, -1, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(buffer.counters().frames_played, 7u);
  EXPECT_EQ(buffer.counters().frames_concealed, 0u);
}

TEST(JitterBufferTest, ReorderedPacketsWithinTheDepthPlayInOrder) {
  JitterBuffer buffer(60);
  buffer.Put(0, Packet(1));
  buffer.Put(2 * kFrameSamples, Packet(3));
  buffer.Put(1 * kFrameSamples, Packet(2));
  buffer.Put(3 * kFrameSamples, Packet(4));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Play(&buffer), -1);
  EXPECT_EQ(Play(&buffer), 1);
  EXPECT_EQ(Play(&buffer), 2);
  EXPECT_EQ(Play(&buffer), 3);
  EXPECT_EQ(Play(&buffer), 4);
}

TEST(JitterBufferTest, MissingPacketIsSilenceAndLatePacketIsDropped) {
  JitterBuffer buffer(20);
  buffer.Put(0, Packet(1));
  EXPECT_EQ(Play(&buffer), -1);              // prefill
  buffer.Put(2 * kFrameSamples, Packet(3));  // 2 is missing for now
  EXPECT_EQ(Play(&buffer), 1);
  EXPECT_EQ(Play(&buffer), -1);  // the gap plays as silence
  EXPECT_EQ(buffer.Put(1 * kFrameSamples, Packet(2)), JitterBuffer::PutResult::kLate);
  EXPECT_EQ(Play(&buffer), 3);
  EXPECT_EQ(buffer.counters().packets_late, 1u);
}

TEST(JitterBufferTest, UnderrunWaitsForTheNextPacketAndPrefillsAgain) {
  JitterBuffer buffer(40);
  buffer.Put(0, Packet(1));
  EXPECT_EQ(Play(&buffer), -1);
  EXPECT_EQ(Play(&buffer), -1);
  EXPECT_EQ(Play(&buffer), 1);
  EXPECT_EQ(Play(&buffer), -1);  // nothing buffered: underrun
  EXPECT_EQ(buffer.counters().underruns, 1u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Play(&buffer), -1);  // the sender paused
  // The sender resumes 5 frames later: a fresh prefill, nothing lost.
  buffer.Put(7 * kFrameSamples, Packet(8));
  EXPECT_EQ(Play(&buffer), -1);
  buffer.Put(8 * kFrameSamples, Packet(9));
  EXPECT_EQ(Play(&buffer), -1);
  EXPECT_EQ(Play(&buffer), 8);
  EXPECT_EQ(Play(&buffer), 9);
}

TEST(JitterBufferTest, BurstBeyondTheCapacityDropsTheOldestAudio) {
  JitterBuffer buffer(20);  // capacity (2 x 1 + 4) frames
  int frames = buffer.capacity_samples() / kFrameSamples;
  EXPECT_EQ(frames, 6);
  for (int i = 0; i < frames + 3; ++i) {
    buffer.Put(i * kFrameSamples, Packet(static_cast<int16_t>(i + 1)));
  }
  EXPECT_GE(buffer.counters().overflows, 1u);
  EXPECT_EQ(Play(&buffer), -1);  // prefill
  // The packet that did not fit (number frames + 1) now ends `depth` (one
  // frame) ahead of the playout point; what came before it is gone.
  EXPECT_EQ(Play(&buffer), frames + 1);
  EXPECT_EQ(Play(&buffer), frames + 2);
  EXPECT_EQ(Play(&buffer), frames + 3);
  EXPECT_EQ(buffer.counters().overflows, 1u);
}

TEST(JitterBufferTest, PacketsOfAnySizeAreSplitIntoFrames) {
  JitterBuffer buffer(20);
  std::vector<int16_t> thirty_ms(240, 7);
  buffer.Put(0, thirty_ms);
  buffer.Put(240, thirty_ms);
  EXPECT_EQ(Play(&buffer), -1);
  EXPECT_EQ(Play(&buffer), 7);
  EXPECT_EQ(Play(&buffer), 7);
  EXPECT_EQ(Play(&buffer), 7);
}

TEST(JitterBufferTest, TimestampWrapIsSeamless) {
  JitterBuffer buffer(20);
  uint32_t ts = 0xffffffffu - kFrameSamples + 1;  // the next packet wraps to 0
  buffer.Put(ts, Packet(1));
  EXPECT_EQ(Play(&buffer), -1);
  buffer.Put(ts + kFrameSamples, Packet(2));
  EXPECT_EQ(Play(&buffer), 1);
  buffer.Put(ts + 2 * kFrameSamples, Packet(3));
  EXPECT_EQ(Play(&buffer), 2);
  EXPECT_EQ(Play(&buffer), 3);
}

TEST(JitterBufferTest, LargeTimestampJumpRestarts) {
  JitterBuffer buffer(20);
  buffer.Put(0, Packet(1));
  EXPECT_EQ(Play(&buffer), -1);
  EXPECT_EQ(Play(&buffer), 1);
  buffer.Put(1u << 30, Packet(2));  // a new stream
  EXPECT_EQ(buffer.counters().resyncs, 1u);
  EXPECT_EQ(Play(&buffer), -1);
  EXPECT_EQ(Play(&buffer), 2);
}

TEST(JitterBufferTest, DepthIsClampedAndRoundedUpToFrames) {
  EXPECT_EQ(JitterBuffer(0).depth_samples(), kFrameSamples);
  EXPECT_EQ(JitterBuffer(50).depth_samples(), 3 * kFrameSamples);
  EXPECT_EQ(JitterBuffer(100000).depth_samples(), 50 * kFrameSamples);
}

}  // namespace
}  // namespace telestra::backend
