// Applications' audio streams (CallAudioTap) on the real engine: real UDP
// on loopback, the far end a plain socket.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "backend/call_audio_tap.h"
#include "backend/media/audio_format.h"
#include "backend/media/g711.h"
#include "backend/media/rtp_media_engine.h"
#include "backend/media/rtp_packet.h"
#include "gtest/gtest.h"
#include "tests/backend/media/engine_test_support.h"
#include "tests/backend/media/media_test_support.h"

namespace telestra::backend {
namespace {

using testing::OpenUdpPeerPair;
using testing::ReadWav;
using testing::RtpPacket;
using testing::SendTo;
using testing::Source;
using testing::StartEngine;
using testing::TestDir;
using testing::UdpPeerPair;
using testing::WaitFor;

constexpr absl::Duration kDeadline = absl::Seconds(3);

// A tap whose wakeups are counted.
struct CountedTap {
  explicit CountedTap(CallAudioTap::Direction direction)
      : tap(std::make_shared<CallAudioTap>(direction)) {
    tap->SetWakeup([this] { ++wakeups; });
  }
  ~CountedTap() { tap->Detach("Test over"); }
  std::shared_ptr<CallAudioTap> tap;
  std::atomic<int> wakeups{0};
};

// Takes heard frames until `count` were taken (or the deadline).
std::vector<CallAudioTap::Heard> TakeHeard(CallAudioTap& tap, size_t count) {
  std::vector<CallAudioTap::Heard> frames;
  WaitFor(
      [&] {
        CallAudioTap::Heard heard;
        while (frames.size() < count && tap.TakeHeard(&heard)) frames.push_back(heard);
        return frames.size() >= count;
      },
      kDeadline);
  return frames;
}

// The decoded samples of the next G.711 packet the far end receives.
std::optional<std::vector<int16_t>> NextAudio(testing::UdpPeer& peer) {
  std::optional<std::vector<uint8_t>> datagram = peer.Receive(kDeadline);
  if (!datagram) return std::nullopt;
  std::optional<RtpPacketView> packet = ParseRtpPacket(*datagram);
  if (!packet || !IsG711(packet->header.payload_type)) return std::nullopt;
  std::vector<int16_t> samples(packet->payload.size());
  G711Decode(packet->header.payload_type, packet->payload, samples.data());
  return samples;
}

std::vector<int16_t> Level(int frames, int16_t value) {
  return std::vector<int16_t>(static_cast<size_t>(frames) * kFrameSamples, value);
}

TEST(CallAudioEngineTest, AttachingToAnUnknownCallIsNotFoundAndStopsTheTap) {
  auto engine = StartEngine();
  CountedTap listener(CallAudioTap::Direction::kListen);
  absl::Status status = engine->AttachAudio(7, listener.tap);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(listener.tap->stopped());
  EXPECT_EQ(listener.tap->stop_reason(), "Call ended");
  EXPECT_EQ(listener.wakeups.load(), 1);
}

TEST(CallAudioEngineTest, BeforeMediaStartsAListenerGetsSilenceFramesInRealTime) {
  auto engine = StartEngine();
  ASSERT_TRUE(engine->Open(1, Source("tone:1000")).ok());  // no Update: no SDP yet
  CountedTap listener(CallAudioTap::Direction::kListen);
  ASSERT_TRUE(engine->AttachAudio(1, listener.tap).ok());
  EXPECT_EQ(listener.tap->state(), CallAudioTap::State::kAttached);
  EXPECT_EQ(listener.tap->codec(), "");  // none negotiated yet
  absl::Time start = absl::Now();
  std::vector<CallAudioTap::Heard> frames = TakeHeard(*listener.tap, 10);
  ASSERT_EQ(frames.size(), 10u);
  // Ten frames take about 200 ms: they come with the media clock, not at once.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].sequence, static_cast<uint32_t>(i));
    EXPECT_EQ(testing::MeanSquare(frames[i].pcm), 0.0);
  }
  EXPECT_GE(listener.wakeups.load(), 1);
}

TEST(CallAudioEngineTest, AListenerHearsTheFarEndAfterTheJitterBuffer) {
  auto engine = StartEngine();
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  absl::StatusOr<int> port = engine->Open(1, Source("silence"));
  ASSERT_TRUE(port.ok());
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendRecv, kPayloadTypePcma));
  CountedTap listener(CallAudioTap::Direction::kListen);
  ASSERT_TRUE(engine->AttachAudio(1, listener.tap).ok());
  EXPECT_EQ(listener.tap->codec(), "PCMA");

  for (uint16_t i = 0; i < 25; ++i) {
    ASSERT_TRUE(peer.rtp->SendTo(
        *port, RtpPacket(i, 1000 + i * kFrameSamples, 0xabc, kPayloadTypePcma, 3000)));
    absl::SleepFor(absl::Milliseconds(20));  // a far end's pace
  }
  bool heard_far_end = false;
  WaitFor(
      [&] {
        CallAudioTap::Heard heard;
        while (listener.tap->TakeHeard(&heard)) {
          if (std::abs(heard.pcm[80] - 3000) < 100) heard_far_end = true;
        }
        return heard_far_end;
      },
      kDeadline);
  EXPECT_TRUE(heard_far_end);
}

TEST(CallAudioEngineTest, WhatASpeakerSaysReplacesTheSourceAndTheSourceComesBackAfter) {
  auto engine = StartEngine();
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  ASSERT_TRUE(engine->Open(1, Source("silence")).ok());
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendRecv));
  auto speaker = std::make_unique<CountedTap>(CallAudioTap::Direction::kSpeak);
  ASSERT_TRUE(engine->AttachAudio(1, speaker->tap).ok());
  ASSERT_EQ(speaker->tap->Speak(Level(100, 4000)), 100u * kFrameSamples);

  bool spoken = false;
  for (int i = 0; i < 50 && !spoken; ++i) {
    std::optional<std::vector<int16_t>> audio = NextAudio(*peer.rtp);
    ASSERT_TRUE(audio.has_value());
    spoken = std::abs((*audio)[0] - 4000) < 150;
  }
  EXPECT_TRUE(spoken) << "the speaker's level never reached the far end";

  speaker.reset();  // detached: the account's source (silence) is back
  bool silent = false;
  for (int i = 0; i < 50 && !silent; ++i) {
    std::optional<std::vector<int16_t>> audio = NextAudio(*peer.rtp);
    ASSERT_TRUE(audio.has_value());
    silent = testing::MeanSquare(*audio) < 10;
  }
  EXPECT_TRUE(silent);
}

TEST(CallAudioEngineTest, TwoSpeakersAreMixed) {
  auto engine = StartEngine();
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  ASSERT_TRUE(engine->Open(1, Source("tone:1000")).ok());
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendRecv));
  CountedTap first(CallAudioTap::Direction::kSpeak);
  CountedTap second(CallAudioTap::Direction::kBoth);
  ASSERT_TRUE(engine->AttachAudio(1, first.tap).ok());
  ASSERT_TRUE(engine->AttachAudio(1, second.tap).ok());
  // Queued under one lock hold each: the two queues start within a tick of
  // each other, so most frames carry both.
  first.tap->Speak(Level(100, 1000));
  second.tap->Speak(Level(100, 1500));
  bool mixed = false;
  for (int i = 0; i < 60 && !mixed; ++i) {
    std::optional<std::vector<int16_t>> audio = NextAudio(*peer.rtp);
    ASSERT_TRUE(audio.has_value());
    mixed = std::abs((*audio)[0] - 2500) < 100;
  }
  EXPECT_TRUE(mixed);
}

TEST(CallAudioEngineTest, AMarkComesBackOnceItsAudioIsOnTheWire) {
  auto engine = StartEngine();
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  ASSERT_TRUE(engine->Open(1, Source("silence")).ok());
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendRecv));
  CountedTap speaker(CallAudioTap::Direction::kSpeak);
  ASSERT_TRUE(engine->AttachAudio(1, speaker.tap).ok());
  peer.rtp->Drain();
  speaker.tap->Speak(Level(10, 2000));
  speaker.tap->Mark("ten");
  CallAudioTap::Notice notice;
  bool marked = WaitFor([&] { return speaker.tap->TakeNotice(&notice); }, kDeadline);
  ASSERT_TRUE(marked);
  EXPECT_EQ(notice.mark, "ten");
  // By then the ten frames were sent: they are all waiting at the far end.
  int loud = 0;
  while (std::optional<std::vector<int16_t>> audio = NextAudio(*peer.rtp)) {
    if (std::abs((*audio)[0] - 2000) < 150) ++loud;
    if (loud == 10) break;
  }
  EXPECT_EQ(loud, 10);
  EXPECT_EQ(speaker.tap->counters().frames_spoken, 10u);
}

TEST(CallAudioEngineTest, AHeldCallsListenersHearSilenceWhateverArrives) {
  auto engine = StartEngine();
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  absl::StatusOr<int> port = engine->Open(1, Source("silence"));
  ASSERT_TRUE(port.ok());
  MediaParams held = SendTo(peer.rtp->port(), MediaDirection::kRecvOnly);
  held.held = true;
  engine->Update(1, held);
  CountedTap listener(CallAudioTap::Direction::kListen);
  ASSERT_TRUE(engine->AttachAudio(1, listener.tap).ok());
  for (uint16_t i = 0; i < 15; ++i) {
    ASSERT_TRUE(peer.rtp->SendTo(*port, RtpPacket(i, i * kFrameSamples, 0xabc)));
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::vector<CallAudioTap::Heard> frames = TakeHeard(*listener.tap, 20);
  ASSERT_EQ(frames.size(), 20u);
  for (const CallAudioTap::Heard& heard : frames) EXPECT_EQ(testing::MeanSquare(heard.pcm), 0.0);
  EXPECT_GT(engine->Stats(1)->packets_received, 0u);  // it did arrive
}

TEST(CallAudioEngineTest, ClosingTheCallStopsItsTapsAndWakesThem) {
  auto engine = StartEngine();
  ASSERT_TRUE(engine->Open(1, Source("silence")).ok());
  CountedTap listener(CallAudioTap::Direction::kBoth);
  ASSERT_TRUE(engine->AttachAudio(1, listener.tap).ok());
  int before = listener.wakeups.load();
  engine->Close(1);
  EXPECT_TRUE(listener.tap->stopped());
  EXPECT_EQ(listener.tap->stop_reason(), "Call ended");
  EXPECT_GT(listener.wakeups.load(), before);
}

TEST(CallAudioEngineTest, TheRecordingHoldsWhatTheSpeakerSaid) {
  std::string dir = TestDir("call-audio-record");
  auto engine = StartEngine();
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  ASSERT_TRUE(engine->Open(1, Source("silence", "alice", dir)).ok());
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendRecv));
  CountedTap speaker(CallAudioTap::Direction::kSpeak);
  ASSERT_TRUE(engine->AttachAudio(1, speaker.tap).ok());
  speaker.tap->Speak(Level(25, 3000));
  ASSERT_TRUE(WaitFor([&] { return speaker.tap->spoken_queued() == 0; }, kDeadline));
  engine->Close(1);
  std::optional<testing::WavData> wav = ReadWav(dir + "/1-alice.wav");
  ASSERT_TRUE(wav.has_value());
  std::vector<int16_t> sent = wav->Channel(1);
  int loud = 0;
  for (int16_t sample : sent) {
    if (std::abs(sample - 3000) < 150) ++loud;
  }
  EXPECT_GE(loud, 24 * kFrameSamples);  // what went on the wire, G.711 and all
}

}  // namespace
}  // namespace telestra::backend
