#include "backend/media/telephone_event.h"

#include <cstdint>
#include <optional>
#include <vector>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(TelephoneEventTest, PayloadRoundTrips) {
  TelephoneEvent event;
  event.event = 11;
  event.end = true;
  event.volume = 10;
  event.duration = 800;
  uint8_t wire[kTelephoneEventSize];
  WriteTelephoneEvent(event, wire);
  EXPECT_EQ(wire[0], 11);
  EXPECT_EQ(wire[1], 0x80 | 10);
  EXPECT_EQ(wire[2], 800 >> 8);
  EXPECT_EQ(wire[3], 800 & 0xff);
  std::optional<TelephoneEvent> parsed = ParseTelephoneEvent(wire);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->event, 11);
  EXPECT_TRUE(parsed->end);
  EXPECT_EQ(parsed->volume, 10);
  EXPECT_EQ(parsed->duration, 800);
  EXPECT_FALSE(ParseTelephoneEvent(absl::MakeConstSpan(wire, 3)).has_value());
}

// Runs the sender tick by tick from timestamp 1000 (160 per tick) until it
// is idle; the packets, and at which tick each request was done.
struct Played {
  std::vector<std::optional<DtmfSender::Packet>> ticks;
  std::vector<std::pair<int, uint64_t>> done;  // (tick, request)
};

Played Play(DtmfSender& sender, int max_ticks = 200) {
  Played run;
  uint32_t timestamp = 1000;
  for (int tick = 0; tick < max_ticks && !sender.idle(); ++tick, timestamp += 160) {
    std::optional<uint64_t> done;
    run.ticks.push_back(sender.Tick(timestamp, &done));
    if (done) run.done.emplace_back(tick, *done);
  }
  return run;
}

TEST(DtmfSenderTest, OneDigitIsAGrowingEventThenThreeEndsThenAPause) {
  DtmfSender sender;
  sender.Queue("5", 100, 7);
  EXPECT_EQ(sender.pending(), 1u);
  Played run = Play(sender);
  // 100 ms = 800 samples: 160, 320, 480, 640, then 800 with the end bit,
  // three times; then three ticks of audio.
  ASSERT_EQ(run.ticks.size(), 7u + DtmfSender::kPauseTicks);
  const uint16_t durations[] = {160, 320, 480, 640, 800, 800, 800};
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(run.ticks[i].has_value()) << i;
    const DtmfSender::Packet& packet = *run.ticks[i];
    EXPECT_EQ(packet.timestamp, 1000u) << "every packet of an event has its start's timestamp";
    EXPECT_EQ(packet.marker, i == 0) << i;
    EXPECT_EQ(packet.payload.event, 5);
    EXPECT_EQ(packet.payload.duration, durations[i]) << i;
    EXPECT_EQ(packet.payload.end, i >= 4) << i;
    EXPECT_EQ(packet.payload.volume, 10);
  }
  for (size_t i = 7; i < run.ticks.size(); ++i) EXPECT_FALSE(run.ticks[i].has_value()) << i;
  ASSERT_EQ(run.done.size(), 1u);
  EXPECT_EQ(run.done[0], std::make_pair(6, uint64_t{7})) << "done with the last end packet";
  EXPECT_EQ(sender.pending(), 0u);
}

TEST(DtmfSenderTest, DigitsFollowEachOtherWithTheirOwnTimestampsAndRequests) {
  DtmfSender sender;
  sender.Queue("1#", 40, 1);
  sender.Queue("D", 60, 2);
  Played run = Play(sender);
  std::vector<DtmfSender::Packet> packets;
  std::vector<uint32_t> starts;
  for (const auto& tick : run.ticks) {
    if (!tick) continue;
    packets.push_back(*tick);
    if (tick->marker) starts.push_back(tick->timestamp);
  }
  // 40 ms: 160 then 320 (end) x3 = 4 packets; 60 ms: 160, 320, 480 (end) x3 = 5.
  ASSERT_EQ(packets.size(), 4u + 4u + 5u);
  EXPECT_EQ(packets[0].payload.event, 1);
  EXPECT_EQ(packets[4].payload.event, 11);
  EXPECT_EQ(packets[8].payload.event, 15);
  ASSERT_EQ(starts.size(), 3u);
  // Each digit starts after the previous one's 4 ticks and a pause.
  EXPECT_EQ(starts[0], 1000u);
  EXPECT_EQ(starts[1], 1000u + (4 + DtmfSender::kPauseTicks) * 160);
  EXPECT_EQ(starts[2], starts[1] + (4 + DtmfSender::kPauseTicks) * 160);
  ASSERT_EQ(run.done.size(), 2u);
  EXPECT_EQ(run.done[0].second, 1u);
  EXPECT_EQ(run.done[1].second, 2u);
  EXPECT_LT(run.done[0].first, run.done[1].first);
}

TEST(DtmfSenderTest, ClearDropsEverythingUnreported) {
  DtmfSender sender;
  sender.Queue("123", 100, 1);
  std::optional<uint64_t> done;
  EXPECT_TRUE(sender.Tick(0, &done).has_value());
  sender.Clear();
  EXPECT_TRUE(sender.idle());
  EXPECT_FALSE(sender.Tick(160, &done).has_value());
  EXPECT_FALSE(done.has_value());
}

TelephoneEvent Event(uint8_t code, uint16_t duration, bool end = false) {
  TelephoneEvent event;
  event.event = code;
  event.duration = duration;
  event.end = end;
  return event;
}

constexpr int64_t kMs = 1000000;

TEST(DtmfReceiverTest, EachDigitIsReportedOnceAtItsFirstEnd) {
  DtmfReceiver receiver;
  std::vector<DtmfReceiver::Digit> out;
  receiver.OnPacket(Event(5, 160), 8000, 0, &out);
  receiver.OnPacket(Event(5, 320), 8000, 20 * kMs, &out);
  EXPECT_TRUE(out.empty());
  receiver.OnPacket(Event(5, 800, true), 8000, 40 * kMs, &out);
  receiver.OnPacket(Event(5, 800, true), 8000, 60 * kMs, &out);  // retransmissions
  receiver.OnPacket(Event(5, 800, true), 8000, 80 * kMs, &out);
  receiver.OnTick(2000 * kMs, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].digit, '5');
  EXPECT_EQ(out[0].duration_ms, 100);
  EXPECT_FALSE(out[0].end_lost);
  EXPECT_EQ(receiver.ignored(), 2u);
  // The same key again is a new event (a new timestamp).
  receiver.OnPacket(Event(5, 400, true), 9600, 100 * kMs, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].digit, '5');
}

TEST(DtmfReceiverTest, ADigitWhoseEndWasLostIsReportedAfterTheTimeout) {
  DtmfReceiver receiver;
  std::vector<DtmfReceiver::Digit> out;
  receiver.OnPacket(Event(11, 160), 100, 0, &out);
  receiver.OnPacket(Event(11, 480), 100, 40 * kMs, &out);
  receiver.OnTick(40 * kMs + DtmfReceiver::kLostEndNs - 1, &out);
  EXPECT_TRUE(out.empty()) << "not yet overdue";
  receiver.OnTick(40 * kMs + DtmfReceiver::kLostEndNs, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].digit, '#');
  EXPECT_EQ(out[0].duration_ms, 60);
  EXPECT_TRUE(out[0].end_lost);
  // Its end packets arriving late are not a second digit.
  receiver.OnPacket(Event(11, 800, true), 100, 400 * kMs, &out);
  EXPECT_EQ(out.size(), 1u);
}

TEST(DtmfReceiverTest, ANewEventReportsThePreviousOneWhoseEndWasLost) {
  DtmfReceiver receiver;
  std::vector<DtmfReceiver::Digit> out;
  receiver.OnPacket(Event(1, 160), 1000, 0, &out);
  receiver.OnPacket(Event(2, 160), 3000, 100 * kMs, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].digit, '1');
  EXPECT_TRUE(out[0].end_lost);
  receiver.OnPacket(Event(2, 320, true), 3000, 120 * kMs, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].digit, '2');
  // A late packet of the first event (an earlier timestamp) is ignored.
  receiver.OnPacket(Event(1, 800, true), 1000, 140 * kMs, &out);
  EXPECT_EQ(out.size(), 2u);
}

TEST(DtmfReceiverTest, EventsThatAreNotDtmfAreIgnored) {
  DtmfReceiver receiver;
  std::vector<DtmfReceiver::Digit> out;
  receiver.OnPacket(Event(16, 800, true), 100, 0, &out);  // flash
  receiver.OnPacket(Event(200, 800, true), 200, 0, &out);
  receiver.OnTick(10000 * kMs, &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(receiver.ignored(), 2u);
}

TEST(DtmfReceiverTest, TheTimestampWrapsAround) {
  DtmfReceiver receiver;
  std::vector<DtmfReceiver::Digit> out;
  receiver.OnPacket(Event(3, 320, true), 0xffffff00u, 0, &out);
  receiver.OnPacket(Event(4, 320, true), 0x00000100u, 100 * kMs, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].digit, '4');
}

}  // namespace
}  // namespace telestra::backend
