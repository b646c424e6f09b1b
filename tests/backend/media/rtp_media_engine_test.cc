#include "backend/media/rtp_media_engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sndfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backend/media/audio_format.h"
#include "backend/media/g711.h"
#include "backend/media/rtcp.h"
#include "backend/media/rtp_packet.h"
#include "backend/media/telephone_event.h"
#include "backend/media/wav_recorder.h"
#include "gtest/gtest.h"
#include "tests/backend/media/engine_test_support.h"
#include "tests/backend/media/media_test_support.h"

namespace telestra::backend {
namespace {

using testing::GoertzelPower;
using testing::MeanSquare;
using testing::OpenUdpPeerPair;
using testing::PickFreeRtpRange;
using testing::PortRange;
using testing::ReadWav;
using testing::TestDir;
using testing::UdpPeer;
using testing::UdpPeerPair;
using testing::WaitFor;

using testing::EngineSetup;
using testing::Pairs;
using testing::RtcpEvery;
using testing::RtpPacket;
using testing::RtpTimeout;
using testing::SendTo;
using testing::Source;
using testing::StartEngine;

constexpr absl::Duration kDeadline = absl::Seconds(3);

bool UdpPortBindable(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

uint64_t Received(const RtpMediaEngine& engine, int64_t call_id) {
  std::optional<MediaStats> stats = engine.Stats(call_id);
  return stats ? stats->packets_received : 0;
}

// ---------------------------------------------------------------- ports

TEST(RtpMediaEngineTest, OpensEvenRtpPortsWithTheRtcpPortNextToThem) {
  auto engine = StartEngine(Pairs(2));
  absl::StatusOr<int> first = engine->Open(1, Source("silence"));
  absl::StatusOr<int> second = engine->Open(2, Source("silence"));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(*first, *second);
  for (int port : {*first, *second}) {
    EXPECT_EQ(port % 2, 0);
    EXPECT_FALSE(UdpPortBindable(port)) << "RTP port " << port << " is not bound";
    EXPECT_FALSE(UdpPortBindable(port + 1)) << "RTCP port " << port + 1 << " is not bound";
  }
  EXPECT_EQ(engine->open_calls(), 2u);
  EXPECT_EQ(engine->local_address(), "127.0.0.1");
}

TEST(RtpMediaEngineTest, ExhaustedRangeIsResourceExhaustedAndCloseFreesThePair) {
  auto engine = StartEngine(Pairs(2));
  absl::StatusOr<int> first = engine->Open(1, Source("silence"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(engine->Open(2, Source("silence")).ok());
  absl::StatusOr<int> third = engine->Open(3, Source("silence"));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(third.status().message(), "No RTP port available");

  EXPECT_EQ(engine->Open(1, Source("silence")).status().code(), absl::StatusCode::kAlreadyExists);

  engine->Close(1);
  engine->Close(1);  // idempotent
  // Torn down by the media thread (at its next tick), or by Open when it
  // needs the pair, as here: the range is full.
  absl::StatusOr<int> reused = engine->Open(3, Source("silence"));
  ASSERT_TRUE(reused.ok()) << reused.status();
  EXPECT_EQ(*reused, *first);
  EXPECT_EQ(engine->open_calls(), 2u);
  EXPECT_FALSE(engine->Stats(1).has_value());
  EXPECT_TRUE(engine->Stats(3).has_value());
}

// The RTP ports of `range` that something holds (cannot be bound now).
std::vector<int> HeldRtpPorts(const PortRange& range) {
  std::vector<int> held;
  for (int port = range.min; port + 1 <= range.max; port += 2) {
    if (!UdpPortBindable(port)) held.push_back(port);
  }
  return held;
}

// An engine on a free range of 64 pairs (so 8 spares: an eighth of the
// range), started, once its spares are bound; nullptr (and a failure) if
// they never are.
std::unique_ptr<RtpMediaEngine> StartEngineWithSpares(PortRange* range) {
  *range = PickFreeRtpRange(64);
  EXPECT_NE(range->min, 0);
  RtpConfig config;
  config.port_min = range->min;
  config.port_max = range->max;
  auto engine = std::make_unique<RtpMediaEngine>(config, "127.0.0.1");
  EXPECT_TRUE(engine->Start().ok());
  bool bound = WaitFor([&] { return HeldRtpPorts(*range).size() == 8; }, kDeadline);
  EXPECT_TRUE(bound) << HeldRtpPorts(*range).size() << " pairs bound ahead";
  return bound ? std::move(engine) : nullptr;
}

TEST(RtpMediaEngineTest, SparePairsAreBoundAheadAndOpenHandsThemOut) {
  PortRange range;
  std::unique_ptr<RtpMediaEngine> started = StartEngineWithSpares(&range);
  ASSERT_NE(started, nullptr);
  RtpMediaEngine& engine = *started;
  std::vector<int> spares = HeldRtpPorts(range);
  for (int port : spares) EXPECT_FALSE(UdpPortBindable(port + 1)) << "RTCP port of " << port;

  absl::StatusOr<int> port = engine.Open(1, Source("silence"));
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_NE(std::find(spares.begin(), spares.end(), *port), spares.end())
      << *port << " was not a spare";
  // The pool is topped up after the next tick: 8 spares and the call.
  EXPECT_TRUE(WaitFor([&] { return HeldRtpPorts(range).size() == 9; }, kDeadline));

  // The closed call's sockets stay bound, parked for a later call.
  engine.Close(1);
  EXPECT_EQ(engine.open_calls(), 0u);
  absl::SleepFor(absl::Milliseconds(100));  // five ticks: torn down
  EXPECT_EQ(HeldRtpPorts(range).size(), 9u);
  EXPECT_FALSE(UdpPortBindable(*port));
}

TEST(RtpMediaEngineTest, ClosedCallsAreTornDownByTheMediaThreadAndTheirSocketsServeALaterCall) {
  auto engine = StartEngine(Pairs(2));  // no spares: calls bind (or unpark) themselves
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  absl::StatusOr<int> first = engine->Open(1, Source("tone:1000"));
  ASSERT_TRUE(first.ok());
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendRecv));
  ASSERT_TRUE(peer.rtp->Receive(absl::Seconds(1)).has_value());
  peer.rtcp->Drain();
  engine->Close(1);
  EXPECT_FALSE(engine->Stats(1).has_value());
  // The RTCP BYE comes from the media thread's teardown, a tick later.
  bool bye = false;
  absl::Time deadline = absl::Now() + absl::Seconds(1);
  while (!bye && absl::Now() < deadline) {
    std::optional<std::vector<uint8_t>> datagram = peer.rtcp->Receive(absl::Milliseconds(200));
    if (!datagram) continue;
    std::optional<RtcpSummary> report = ParseRtcpCompound(*datagram, 0);
    bye = report.has_value() && report->bye;
  }
  EXPECT_TRUE(bye);
  EXPECT_FALSE(UdpPortBindable(*first)) << "parked, not closed";

  // Next-fit: the other pair, then the first one again, on its parked sockets.
  absl::StatusOr<int> second = engine->Open(2, Source("silence"));
  ASSERT_TRUE(second.ok());
  EXPECT_NE(*second, *first);
  engine->Close(2);
  absl::StatusOr<int> third = engine->Open(3, Source("tone:1000"));
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(*third, *first);
  peer.rtp->Drain();
  engine->Update(3, SendTo(peer.rtp->port(), MediaDirection::kSendRecv));
  std::optional<std::vector<uint8_t>> sent = peer.rtp->Receive(absl::Seconds(1));
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(ParseRtpPacket(*sent)->header.ssrc, engine->Stats(3)->local_ssrc);
  for (uint16_t i = 0; i < 10; ++i) {
    ASSERT_TRUE(peer.rtp->SendTo(*third, RtpPacket(i, 160u * i, 0xabc)));
  }
  EXPECT_TRUE(WaitFor([&] { return engine->Stats(3)->packets_received == 10; }, kDeadline));
  EXPECT_EQ(engine->Stats(3)->remote_ssrc, 0xabcu);
}

TEST(RtpMediaEngineTest, DatagramsToSparePairsAreDiscardedAndCounted) {
  PortRange range;
  std::unique_ptr<RtpMediaEngine> started = StartEngineWithSpares(&range);
  ASSERT_NE(started, nullptr);
  RtpMediaEngine& engine = *started;
  const int spare = HeldRtpPorts(range).front();

  UdpPeer far_end;
  ASSERT_TRUE(far_end.ok());
  std::vector<uint8_t> packet = RtpPacket(1, 160, 0x1234);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(far_end.SendTo(spare, packet));
    ASSERT_TRUE(far_end.SendTo(spare + 1, packet));
  }
  EXPECT_TRUE(WaitFor([&] { return engine.counters().datagrams_discarded == 200; }, kDeadline))
      << engine.counters().datagrams_discarded;
  // Read, not left readable: the media thread does not spin on them.
  int64_t cpu_before = engine.counters().media_thread_cpu_ns;
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_LT(engine.counters().media_thread_cpu_ns - cpu_before, 100'000'000);

  // A call on that pair later starts clean.
  absl::StatusOr<int> port = engine.Open(1, Source("silence"));
  ASSERT_TRUE(port.ok());
  EXPECT_EQ(*port, spare);  // the oldest spare goes first
  EXPECT_EQ(engine.Stats(1)->packets_received, 0u);
}

TEST(RtpMediaEngineTest, PortsTakenByAnotherProgramAreSkipped) {
  PortRange range = PickFreeRtpRange(2);
  ASSERT_NE(range.min, 0);
  UdpPeer squatter(range.min + 1);  // the first pair's RTCP port
  ASSERT_TRUE(squatter.ok());
  RtpConfig config;
  config.port_min = range.min;
  config.port_max = range.max;
  RtpMediaEngine engine(config, "127.0.0.1");
  ASSERT_TRUE(engine.Start().ok());
  absl::StatusOr<int> port = engine.Open(1, Source("silence"));
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(*port, range.min + 2);
  EXPECT_EQ(engine.Open(2, Source("silence")).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(RtpMediaEngineTest, BadConfigurationFailsStart) {
  RtpConfig config;
  config.port_min = 30001;
  config.port_max = 30001;
  EXPECT_EQ(RtpMediaEngine(config, "127.0.0.1").Start().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RtpMediaEngine(RtpConfig(), "not-an-ip").Start().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- restored ports

// An engine on a free range of `pairs` pairs, not started: a restart
// reserves the restored calls' ports before the engine binds its spares.
std::unique_ptr<RtpMediaEngine> UnstartedEngine(int pairs, PortRange* range) {
  *range = PickFreeRtpRange(pairs);
  EXPECT_NE(range->min, 0);
  RtpConfig config;
  config.port_min = range->min;
  config.port_max = range->max;
  return std::make_unique<RtpMediaEngine>(config, "127.0.0.1");
}

// A restored call's options: its old RTP port.
MediaOptions OnPort(int port, const std::string& account = "alice",
                    const std::string& record_dir = "") {
  MediaOptions options = Source("silence", account, record_dir);
  options.port = port;
  return options;
}

TEST(RtpMediaEngineTest, AReservedPortIsOpenedByItsRestoredCallAndNoOtherCall) {
  PortRange range;
  std::unique_ptr<RtpMediaEngine> engine = UnstartedEngine(4, &range);
  const int reserved = range.min + 2;
  ASSERT_TRUE(engine->ReservePort(reserved).ok());
  ASSERT_TRUE(engine->Start().ok());
  EXPECT_TRUE(UdpPortBindable(reserved)) << "reserved, not bound before its call opens";
  // The other three pairs go to new calls; then the range is full.
  std::vector<int> others;
  for (int64_t id = 1; id <= 3; ++id) {
    absl::StatusOr<int> port = engine->Open(id, Source("silence"));
    ASSERT_TRUE(port.ok()) << port.status();
    EXPECT_NE(*port, reserved);
    others.push_back(*port);
  }
  EXPECT_EQ(engine->Open(4, Source("silence")).status().code(),
            absl::StatusCode::kResourceExhausted);
  // The restored call gets its own port, bound with its RTCP port.
  absl::StatusOr<int> restored = engine->Open(10, OnPort(reserved));
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(*restored, reserved);
  EXPECT_FALSE(UdpPortBindable(reserved));
  EXPECT_FALSE(UdpPortBindable(reserved + 1));
  EXPECT_EQ(engine->open_calls(), 4u);
  // It carries media like any call.
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  engine->Update(10, SendTo(peer.rtp->port(), MediaDirection::kSendRecv));
  EXPECT_TRUE(peer.rtp->Receive(absl::Seconds(1)).has_value()) << "nothing sent from it";
  for (uint16_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(peer.rtp->SendTo(reserved, RtpPacket(i, 160u * i, 0x5151)));
  }
  EXPECT_TRUE(WaitFor([&] { return Received(*engine, 10) == 5; }, kDeadline));
  // Once it ends, its pair is a free pair like the others.
  engine->Close(10);
  absl::StatusOr<int> later = engine->Open(11, Source("silence"));
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(*later, reserved);
}

TEST(RtpMediaEngineTest, SparePairsAreNeverBoundOnAReservedPort) {
  PortRange range;
  std::unique_ptr<RtpMediaEngine> engine = UnstartedEngine(16, &range);  // 2 spares
  const int reserved = range.min;  // the first pair: the first a spare would take
  ASSERT_TRUE(engine->ReservePort(reserved).ok());
  ASSERT_TRUE(engine->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return HeldRtpPorts(range).size() == 2; }, kDeadline));
  EXPECT_TRUE(UdpPortBindable(reserved));
  for (int64_t id = 1; id <= 15; ++id) {
    absl::StatusOr<int> port = engine->Open(id, Source("silence"));
    ASSERT_TRUE(port.ok()) << "call " << id << ": " << port.status();
    EXPECT_NE(*port, reserved) << "call " << id;
  }
  EXPECT_TRUE(UdpPortBindable(reserved));
  absl::StatusOr<int> restored = engine->Open(20, OnPort(reserved));
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(*restored, reserved);
}

TEST(RtpMediaEngineTest, APortNotReservedIsFailedPreconditionAndAReservationServesOneOpen) {
  PortRange range;
  std::unique_ptr<RtpMediaEngine> engine = UnstartedEngine(4, &range);
  ASSERT_TRUE(engine->ReservePort(range.min).ok());
  ASSERT_TRUE(engine->Start().ok());
  absl::StatusOr<int> unreserved = engine->Open(1, OnPort(range.min + 2));
  EXPECT_EQ(unreserved.status().code(), absl::StatusCode::kFailedPrecondition)
      << unreserved.status();
  EXPECT_EQ(engine->open_calls(), 0u);
  ASSERT_TRUE(engine->Open(2, OnPort(range.min)).ok());
  engine->Close(2);
  absl::StatusOr<int> again = engine->Open(3, OnPort(range.min));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
}

TEST(RtpMediaEngineTest, ACancelledReservationIsAFreePairAgain) {
  PortRange range;
  std::unique_ptr<RtpMediaEngine> engine = UnstartedEngine(1, &range);
  ASSERT_TRUE(engine->ReservePort(range.min).ok());
  ASSERT_TRUE(engine->Start().ok());
  // The range's one pair is kept for a restored call: no new call gets it.
  EXPECT_EQ(engine->Open(1, Source("silence")).status().code(),
            absl::StatusCode::kResourceExhausted);
  // The restored call could not be restored: the pair is free again.
  engine->CancelReservation(range.min);
  absl::StatusOr<int> open = engine->Open(2, Source("silence"));
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_EQ(*open, range.min);
  engine->CancelReservation(range.min);  // not reserved any more: ignored
  EXPECT_EQ(engine->open_calls(), 1u);
}

TEST(RtpMediaEngineTest, ReservePortRefusesPortsOutsideTheRangeOddPortsAndPairsInUse) {
  PortRange range;
  std::unique_ptr<RtpMediaEngine> engine = UnstartedEngine(4, &range);
  EXPECT_EQ(engine->ReservePort(range.min + 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->ReservePort(range.max + 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->ReservePort(range.min - 2).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(engine->ReservePort(range.min).ok());
  EXPECT_EQ(engine->ReservePort(range.min).code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(engine->Start().ok());
  absl::StatusOr<int> open = engine->Open(1, Source("silence"));
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(engine->ReservePort(*open).code(), absl::StatusCode::kUnavailable);
}

TEST(RtpMediaEngineTest, ARestoredCallGoesOnWithItsRecording) {
  const std::string dir = TestDir("restored-recording");
  const std::string path = dir + "/5-alice.wav";
  {  // The last run's recording: 10 frames.
    absl::StatusOr<std::unique_ptr<WavRecorder>> before = WavRecorder::Create(path);
    ASSERT_TRUE(before.ok());
    std::vector<int16_t> frame(kFrameSamples, 3000);
    for (int i = 0; i < 10; ++i) (*before)->Append(frame.data(), frame.data());
  }
  PortRange range;
  std::unique_ptr<RtpMediaEngine> engine = UnstartedEngine(2, &range);
  ASSERT_TRUE(engine->ReservePort(range.min).ok());
  ASSERT_TRUE(engine->Start().ok());
  ASSERT_TRUE(engine->Open(5, OnPort(range.min, "alice", dir)).ok());
  engine->Close(5);
  std::optional<testing::WavData> wav = ReadWav(path);
  ASSERT_TRUE(wav.has_value());
  ASSERT_GE(wav->samples.size(), 10u * kFrameSamples * 2);
  EXPECT_EQ(wav->Channel(0).front(), 3000) << "the last run's audio was overwritten";
  // A new call on that id (no port given) starts a recording of its own.
  ASSERT_TRUE(engine->Open(5, Source("silence", "alice", dir)).ok());
  engine->Close(5);
  std::optional<testing::WavData> fresh = ReadWav(path);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_LT(fresh->samples.size(), 10u * kFrameSamples * 2);
}

// ---------------------------------------------------------------- audio

// Two engines call each other; each records its side.
class LoopbackAudioTest : public ::testing::TestWithParam<int> {};

TEST_P(LoopbackAudioTest, ToneIsReceivedAndBothSidesAreRecorded) {
  const int payload_type = GetParam();
  std::string dir = TestDir(absl::StrCat("loopback-", payload_type));
  auto a = StartEngine();
  auto b = StartEngine();
  absl::StatusOr<int> a_port = a->Open(1, Source("tone:1000", "alice", dir));
  absl::StatusOr<int> b_port = b->Open(2, Source("tone:440", "bob", dir));
  ASSERT_TRUE(a_port.ok() && b_port.ok());
  a->Update(1, SendTo(*b_port, MediaDirection::kSendRecv, payload_type));
  b->Update(2, SendTo(*a_port, MediaDirection::kSendRecv, payload_type));
  ASSERT_TRUE(WaitFor([&] { return Received(*a, 1) >= 40 && Received(*b, 2) >= 40; }, kDeadline));

  MediaStats a_stats = *a->Stats(1);
  MediaStats b_stats = *b->Stats(2);
  EXPECT_EQ(b_stats.remote_ssrc, a_stats.local_ssrc);
  EXPECT_EQ(a_stats.remote_ssrc, b_stats.local_ssrc);
  EXPECT_EQ(b_stats.payload_type, payload_type);
  EXPECT_EQ(b_stats.packets_lost, 0u);
  EXPECT_LT(b_stats.jitter_ms, 20.0);
  a->Close(1);
  b->Close(2);

  std::optional<testing::WavData> a_wav = ReadWav(dir + "/1-alice.wav");
  std::optional<testing::WavData> b_wav = ReadWav(dir + "/2-bob.wav");
  ASSERT_TRUE(a_wav && b_wav);
  EXPECT_EQ(b_wav->rate, 8000);
  EXPECT_EQ(b_wav->channels, 2);
  std::vector<int16_t> a_received = a_wav->Channel(0);
  std::vector<int16_t> a_sent = a_wav->Channel(1);
  std::vector<int16_t> b_received = b_wav->Channel(0);
  std::vector<int16_t> b_sent = b_wav->Channel(1);
  ASSERT_GE(b_received.size(), 30u * kFrameSamples);

  // Bob heard Alice's 1000 Hz (after the jitter buffer's 60 ms) and sent
  // 440 Hz; Alice the other way round.
  auto tail = [](const std::vector<int16_t>& samples) {
    return absl::MakeConstSpan(samples).subspan(samples.size() / 2);
  };
  auto expect_tone = [&](const std::vector<int16_t>& samples, double hz, double other_hz,
                         const char* what) {
    SCOPED_TRACE(what);
    absl::Span<const int16_t> steady = tail(samples);
    double energy = MeanSquare(steady);
    EXPECT_GT(energy, 10362.0 * 10362.0 / 2 * 0.5);  // about -10 dBFS
    EXPECT_GT(GoertzelPower(steady, hz), 0.2 * energy);
    EXPECT_LT(GoertzelPower(steady, other_hz), 0.01 * GoertzelPower(steady, hz));
  };
  expect_tone(b_received, 1000, 440, "bob received");
  expect_tone(b_sent, 440, 1000, "bob sent");
  expect_tone(a_received, 440, 1000, "alice received");
  expect_tone(a_sent, 1000, 440, "alice sent");

  // What Alice recorded as sent is, frame for frame, what Bob recorded as
  // received (both are the decoded wire audio), some whole frames later.
  int best_matches = 0;
  int compared = 0;
  int frames_a = static_cast<int>(a_sent.size()) / kFrameSamples;
  int frames_b = static_cast<int>(b_received.size()) / kFrameSamples;
  for (int shift = -frames_a; shift < frames_b; ++shift) {
    int matches = 0;
    int count = 0;
    for (int f = 0; f < frames_a; ++f) {
      int g = f + shift;
      if (g < 0 || g >= frames_b) continue;
      ++count;
      matches +=
          std::equal(a_sent.begin() + f * kFrameSamples, a_sent.begin() + (f + 1) * kFrameSamples,
                     b_received.begin() + g * kFrameSamples);
    }
    if (matches > best_matches) {
      best_matches = matches;
      compared = count;
    }
  }
  EXPECT_GE(best_matches, 30);
  EXPECT_GE(best_matches, compared * 8 / 10) << "of " << compared << " frames";
}

INSTANTIATE_TEST_SUITE_P(Codecs, LoopbackAudioTest,
                         ::testing::Values(kPayloadTypePcmu, kPayloadTypePcma),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == kPayloadTypePcmu ? std::string("Pcmu")
                                                                 : std::string("Pcma");
                         });

TEST(RtpMediaEngineTest, HeldCallSendsNothingAndResumesOnTheNextPacket) {
  auto engine = StartEngine();
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  ASSERT_TRUE(engine->Open(1, Source("tone:1000")).ok());

  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kRecvOnly));
  EXPECT_FALSE(peer.rtp->Receive(absl::Milliseconds(300)).has_value());
  EXPECT_EQ(engine->Stats(1)->packets_sent, 0u);

  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendRecv));
  std::optional<std::vector<uint8_t>> packet = peer.rtp->Receive(absl::Seconds(1));
  ASSERT_TRUE(packet.has_value());
  EXPECT_TRUE(ParseRtpPacket(*packet)->header.marker);

  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kInactive));
  peer.rtp->Drain();  // what was sent before the update
  uint64_t sent = engine->Stats(1)->packets_sent;
  EXPECT_FALSE(peer.rtp->Receive(absl::Milliseconds(200)).has_value());
  EXPECT_EQ(engine->Stats(1)->packets_sent, sent);

  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendOnly));
  packet = peer.rtp->Receive(absl::Seconds(1));
  ASSERT_TRUE(packet.has_value());
  EXPECT_TRUE(ParseRtpPacket(*packet)->header.marker) << "a new talkspurt after hold";
}

TEST(RtpMediaEngineTest, PacketsCarryOneSsrcConsecutiveSequenceAndTimestamps) {
  auto engine = StartEngine();
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  ASSERT_TRUE(engine->Open(1, Source("tone:1000")).ok());
  ASSERT_TRUE(engine->Open(2, Source("silence")).ok());
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendOnly, kPayloadTypePcma));

  std::vector<RtpHeader> headers;
  for (int i = 0; i < 15; ++i) {
    std::optional<std::vector<uint8_t>> datagram = peer.rtp->Receive(absl::Seconds(1));
    ASSERT_TRUE(datagram.has_value()) << "packet " << i;
    std::optional<RtpPacketView> packet = ParseRtpPacket(*datagram);
    ASSERT_TRUE(packet.has_value());
    EXPECT_EQ((*datagram)[0], 0x80);  // V=2, no padding/extension/CSRC
    EXPECT_EQ(packet->payload.size(), static_cast<size_t>(kFrameSamples));
    headers.push_back(packet->header);
  }
  MediaStats stats = *engine->Stats(1);
  EXPECT_NE(stats.local_ssrc, engine->Stats(2)->local_ssrc);
  EXPECT_TRUE(headers[0].marker);
  for (size_t i = 0; i < headers.size(); ++i) {
    EXPECT_EQ(headers[i].ssrc, stats.local_ssrc);
    EXPECT_EQ(headers[i].payload_type, kPayloadTypePcma);
    if (i == 0) continue;
    EXPECT_FALSE(headers[i].marker);
    EXPECT_EQ(headers[i].sequence, static_cast<uint16_t>(headers[i - 1].sequence + 1));
    EXPECT_EQ(headers[i].timestamp, headers[i - 1].timestamp + kFrameSamples);
  }
}

TEST(RtpMediaEngineTest, FileSourceLoopsOnTheWire) {
  // 100 ms of deterministic noise (no period shorter than the file).
  std::string path = TestDir("file-source") + "/noise.wav";
  std::vector<int16_t> clip(800);
  uint32_t state = 12345;
  for (int16_t& s : clip) {
    state = state * 1103515245 + 12345;
    s = static_cast<int16_t>(static_cast<int>((state >> 16) % 16001) - 8000);
  }
  {
    SF_INFO info{};
    info.samplerate = 8000;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
    ASSERT_NE(file, nullptr);
    sf_write_short(file, clip.data(), static_cast<sf_count_t>(clip.size()));
    sf_close(file);
  }
  std::vector<uint8_t> expected(clip.size());
  G711Encode(kPayloadTypePcmu, clip, expected.data());

  auto engine = StartEngine();
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  ASSERT_TRUE(engine->Open(1, Source("file:" + path)).ok());
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendOnly));
  std::vector<uint8_t> stream;
  for (int i = 0; i < 15; ++i) {  // 300 ms: the 100 ms file three times
    std::optional<std::vector<uint8_t>> datagram = peer.rtp->Receive(absl::Seconds(1));
    ASSERT_TRUE(datagram.has_value());
    std::optional<RtpPacketView> packet = ParseRtpPacket(*datagram);
    stream.insert(stream.end(), packet->payload.begin(), packet->payload.end());
  }
  for (size_t i = 0; i < stream.size(); ++i) {
    ASSERT_EQ(stream[i], expected[i % expected.size()]) << "byte " << i;
  }
}

TEST(RtpMediaEngineTest, UnreadableFileSourceFailsOpenWithInvalidArgument) {
  auto engine = StartEngine(Pairs(1));
  absl::StatusOr<int> port = engine->Open(1, Source("file:/nonexistent/hello.wav"));
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(port.status().message().find("/nonexistent/hello.wav"), absl::string_view::npos);
  EXPECT_EQ(engine->open_calls(), 0u);
  EXPECT_TRUE(engine->Open(2, Source("silence")).ok()) << "the port pair was not leaked";
}

TEST(RtpMediaEngineTest, UncreatableRecordingFailsOpenAndFreesThePort) {
  auto engine = StartEngine(Pairs(1));
  absl::StatusOr<int> port = engine->Open(1, Source("silence", "alice", "/nonexistent/dir"));
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(port.status().message().find("/nonexistent/dir/1-alice.wav"), absl::string_view::npos);
  EXPECT_TRUE(engine->Open(2, Source("silence")).ok());
}

// ---------------------------------------------------------------- receiving

TEST(RtpMediaEngineTest, LossIsCountedAndReportedInReceiverReports) {
  auto engine = StartEngine(RtcpEvery(absl::Milliseconds(100)));
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  absl::StatusOr<int> port = engine->Open(1, Source("silence"));
  ASSERT_TRUE(port.ok());
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kRecvOnly));

  const uint32_t ssrc = 0x5eed1234;
  const uint16_t first = 65530;  // the sequence wraps on the way
  int sent = 0;
  for (int i = 0; i < 50; ++i) {
    if (i % 5 == 2) continue;  // 10 packets lost
    ASSERT_TRUE(peer.rtp->SendTo(
        *port, RtpPacket(static_cast<uint16_t>(first + i), 1000 + i * kFrameSamples, ssrc)));
    ++sent;
  }
  ASSERT_EQ(sent, 40);
  ASSERT_TRUE(WaitFor([&] { return Received(*engine, 1) == 40; }, kDeadline));
  MediaStats stats = *engine->Stats(1);
  EXPECT_EQ(stats.packets_lost, 10u);
  EXPECT_EQ(stats.remote_ssrc, ssrc);
  EXPECT_EQ(stats.payload_type, kPayloadTypePcmu);
  EXPECT_EQ(stats.packets_sent, 0u);

  // Receiving only: RTCP receiver reports (to RTP port + 1) about `ssrc`.
  bool reported = false;
  int max_fraction = 0;
  absl::Time deadline = absl::Now() + kDeadline;
  while (!reported && absl::Now() < deadline) {
    std::optional<std::vector<uint8_t>> datagram = peer.rtcp->Receive(absl::Seconds(1));
    if (!datagram) continue;
    std::optional<RtcpSummary> report = ParseRtcpCompound(*datagram, ssrc);
    ASSERT_TRUE(report.has_value());
    EXPECT_FALSE(report->sender_info.has_value()) << "an SR from a call that only receives";
    EXPECT_EQ(report->sender_ssrc, stats.local_ssrc);
    if (!report->block_about_us) continue;
    max_fraction = std::max<int>(max_fraction, report->block_about_us->fraction_lost);
    if (report->block_about_us->cumulative_lost == 10) {
      reported = true;
      EXPECT_EQ(report->block_about_us->extended_highest_sequence,
                65536u + static_cast<uint16_t>(first + 49));
    }
  }
  EXPECT_TRUE(reported);
  EXPECT_GT(max_fraction, 0);
}

TEST(RtpMediaEngineTest, TelephoneEventsAreCountedNotPlayed) {
  auto engine = StartEngine();
  UdpPeer peer;
  absl::StatusOr<int> port = engine->Open(1, Source("silence"));
  ASSERT_TRUE(port.ok());
  MediaParams params = SendTo(peer.port(), MediaDirection::kRecvOnly);
  params.telephone_event_payload_type = 101;
  engine->Update(1, params);
  for (uint16_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(peer.SendTo(*port, RtpPacket(i, i * kFrameSamples, 9)));
  }
  for (uint16_t i = 5; i < 8; ++i) {  // a DTMF event: same timestamp, PT 101
    std::vector<uint8_t> event = RtpPacket(i, 5 * kFrameSamples, 9, 101);
    event.resize(kRtpHeaderSize + 4);
    ASSERT_TRUE(peer.SendTo(*port, event));
  }
  ASSERT_TRUE(WaitFor([&] { return Received(*engine, 1) == 8; }, kDeadline));
  EXPECT_EQ(engine->Diagnostics(1)->telephone_events_received, 3u);
  EXPECT_EQ(engine->Stats(1)->packets_lost, 0u);
  EXPECT_EQ(engine->Stats(1)->payload_type, 101);
}

// A telephone-event packet of the far end.
std::vector<uint8_t> EventPacket(uint16_t sequence, uint32_t timestamp, uint8_t event,
                                 uint16_t duration, bool end, bool marker = false) {
  std::vector<uint8_t> packet(kRtpHeaderSize + kTelephoneEventSize);
  RtpHeader header;
  header.payload_type = 101;
  header.sequence = sequence;
  header.timestamp = timestamp;
  header.ssrc = 9;
  header.marker = marker;
  WriteRtpHeader(header, packet.data());
  TelephoneEvent payload;
  payload.event = event;
  payload.end = end;
  payload.duration = duration;
  WriteTelephoneEvent(payload, packet.data() + kRtpHeaderSize);
  return packet;
}

// What the DTMF handlers of an engine reported, in order.
struct DtmfReports {
  absl::Mutex mu;
  std::vector<std::string> lines ABSL_GUARDED_BY(mu);
  MediaEngine::DtmfHandlers Handlers() {
    MediaEngine::DtmfHandlers handlers;
    handlers.received = [this](int64_t call_id, char digit, int duration_ms) {
      absl::MutexLock lock(&mu);
      lines.push_back(absl::StrCat("received ", call_id, " ", std::string(1, digit), " ",
                                   duration_ms));
    };
    handlers.sent = [this](int64_t call_id, uint64_t request) {
      absl::MutexLock lock(&mu);
      lines.push_back(absl::StrCat("sent ", call_id, " ", request));
    };
    return handlers;
  }
  std::vector<std::string> Lines() {
    absl::MutexLock lock(&mu);
    return lines;
  }
};

TEST(RtpMediaEngineTest, DtmfGoesOutAsRfc4733EventsThatMuteTheAudio) {
  auto engine = StartEngine();
  DtmfReports reports;
  engine->SetDtmfHandlers(reports.Handlers());
  UdpPeer peer;
  ASSERT_TRUE(engine->Open(1, Source("tone:1000")).ok());
  MediaParams params = SendTo(peer.port(), MediaDirection::kSendRecv);
  // Without telephone-event the engine refuses: the SIP side uses INFO.
  engine->Update(1, params);
  EXPECT_EQ(engine->SendDtmf(1, "1", 100, 1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine->SendDtmf(2, "1", 100, 1).code(), absl::StatusCode::kNotFound);
  params.telephone_event_payload_type = 101;
  engine->Update(1, params);
  ASSERT_TRUE(peer.Receive(absl::Seconds(1)).has_value());
  ASSERT_TRUE(engine->SendDtmf(1, "5#", 60, 42).ok());
  // Audio, then 5 (60 ms: 160, 320, 480 end x3), a pause of audio, then #.
  std::vector<RtpHeader> headers;
  std::vector<std::optional<TelephoneEvent>> events;
  int ends_of_hash = 0;
  for (int i = 0; i < 60 && ends_of_hash < 3; ++i) {
    std::optional<std::vector<uint8_t>> datagram = peer.Receive(absl::Seconds(1));
    ASSERT_TRUE(datagram.has_value()) << i;
    std::optional<RtpPacketView> packet = ParseRtpPacket(*datagram);
    ASSERT_TRUE(packet.has_value());
    headers.push_back(packet->header);
    if (packet->header.payload_type == 101) {
      events.push_back(ParseTelephoneEvent(packet->payload));
      ASSERT_TRUE(events.back().has_value());
      if (events.back()->event == 11 && events.back()->end) ++ends_of_hash;
    } else {
      EXPECT_EQ(packet->header.payload_type, kPayloadTypePcmu);
      EXPECT_EQ(packet->payload.size(), static_cast<size_t>(kFrameSamples));
      events.push_back(std::nullopt);
    }
  }
  ASSERT_EQ(ends_of_hash, 3);
  // One stream: consecutive sequence numbers over audio and events alike.
  for (size_t i = 1; i < headers.size(); ++i) {
    EXPECT_EQ(headers[i].sequence, static_cast<uint16_t>(headers[i - 1].sequence + 1)) << i;
    EXPECT_EQ(headers[i].ssrc, headers[0].ssrc);
  }
  std::vector<std::string> shape;  // "a" audio, "5:160", "5:480E" ...
  uint32_t event_timestamp[2] = {0, 0};
  for (size_t i = 0; i < events.size(); ++i) {
    if (!events[i]) {
      if (shape.empty() || shape.back() != "a") shape.push_back("a");
      continue;
    }
    const char digit = events[i]->event == 5 ? '5' : '#';
    shape.push_back(absl::StrCat(std::string(1, digit), ":", events[i]->duration,
                                 events[i]->end ? "E" : "", headers[i].marker ? "M" : ""));
    event_timestamp[digit == '5' ? 0 : 1] = headers[i].timestamp;
    // Every packet of an event carries the event's start timestamp.
    EXPECT_EQ(headers[i].timestamp, event_timestamp[digit == '5' ? 0 : 1]) << i;
  }
  if (!shape.empty() && shape.front() == "a") shape.erase(shape.begin());  // before the 5
  EXPECT_EQ(shape, (std::vector<std::string>{"5:160M", "5:320", "5:480E", "5:480E", "5:480E", "a",
                                             "#:160M", "#:320", "#:480E", "#:480E", "#:480E"}));
  // The # starts on the media clock: 5 event ticks and 3 of pause after the 5.
  EXPECT_EQ(event_timestamp[1] - event_timestamp[0],
            (5u + DtmfSender::kPauseTicks) * kFrameSamples);
  ASSERT_TRUE(WaitFor([&] { return !reports.Lines().empty(); }, kDeadline));
  EXPECT_EQ(reports.Lines(), (std::vector<std::string>{"sent 1 42"}));
  EXPECT_EQ(engine->Diagnostics(1)->telephone_events_sent, 10u);
}

TEST(RtpMediaEngineTest, ReceivedRfc4733DigitsAreReportedOnceEach) {
  auto engine = StartEngine();
  DtmfReports reports;
  engine->SetDtmfHandlers(reports.Handlers());
  UdpPeer peer;
  absl::StatusOr<int> port = engine->Open(1, Source("silence"));
  ASSERT_TRUE(port.ok());
  MediaParams params = SendTo(peer.port(), MediaDirection::kSendRecv);
  params.telephone_event_payload_type = 101;
  engine->Update(1, params);
  uint16_t sequence = 0;
  // 7 for 100 ms with its end sent three times.
  ASSERT_TRUE(peer.SendTo(*port, EventPacket(sequence++, 1000, 7, 160, false, true)));
  ASSERT_TRUE(peer.SendTo(*port, EventPacket(sequence++, 1000, 7, 480, false)));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(peer.SendTo(*port, EventPacket(sequence++, 1000, 7, 800, true)));
  }
  // * whose end packets are all lost: reported after the timeout.
  ASSERT_TRUE(peer.SendTo(*port, EventPacket(sequence++, 3000, 10, 160, false, true)));
  ASSERT_TRUE(WaitFor([&] { return reports.Lines().size() == 2; }, kDeadline));
  EXPECT_EQ(reports.Lines(), (std::vector<std::string>{"received 1 7 100", "received 1 * 20"}));
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_EQ(reports.Lines().size(), 2u) << "a digit was reported twice";
  EXPECT_EQ(engine->Diagnostics(1)->telephone_events_ignored, 2u);  // the repeated ends
}

// ---------------------------------------------------------------- RTCP

TEST(RtpMediaEngineTest, SenderReportsArriveAtTheRtcpPortAndByeOnClose) {
  auto engine = StartEngine(RtcpEvery(absl::Milliseconds(100)));
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  absl::StatusOr<int> port = engine->Open(1, Source("tone:1000", "alice"));
  ASSERT_TRUE(port.ok());
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendRecv));

  std::optional<std::vector<uint8_t>> datagram = peer.rtcp->Receive(absl::Seconds(2));
  ASSERT_TRUE(datagram.has_value());
  EXPECT_EQ((*datagram)[1], kRtcpSenderReport);
  std::optional<RtcpSummary> report = ParseRtcpCompound(*datagram, 0);
  ASSERT_TRUE(report.has_value());
  EXPECT_GE(report->packets, 2);  // SR + SDES
  MediaStats stats = *engine->Stats(1);
  EXPECT_EQ(report->sender_ssrc, stats.local_ssrc);
  ASSERT_TRUE(report->sender_info.has_value());
  EXPECT_GT(report->sender_info->packet_count, 0u);
  EXPECT_EQ(report->sender_info->octet_count,
            report->sender_info->packet_count * static_cast<uint32_t>(kFrameSamples));
  EXPECT_GE(stats.rtcp_sent, 1u);

  // The far end's report is parsed and counted.
  RtcpCompoundParams far_end;
  far_end.ssrc = 77;
  far_end.cname = "far@127.0.0.1";
  RtcpReportBlock block;
  block.ssrc = stats.local_ssrc;
  block.fraction_lost = 3;
  far_end.block = block;
  uint8_t buffer[kMaxRtcpCompoundSize];
  size_t size = WriteRtcpCompound(far_end, absl::MakeSpan(buffer));
  ASSERT_TRUE(peer.rtcp->SendTo(*port + 1, absl::MakeConstSpan(buffer, size)));
  ASSERT_TRUE(WaitFor([&] { return engine->Stats(1)->rtcp_received == 1; }, kDeadline));
  ASSERT_TRUE(engine->Diagnostics(1)->remote_report.has_value());
  EXPECT_EQ(engine->Diagnostics(1)->remote_report->fraction_lost, 3);

  // Only receiving now: after at most two more SRs (RFC 3550 counts the
  // last two intervals), receiver reports.
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kRecvOnly));
  bool receiver_report = false;
  absl::Time deadline = absl::Now() + kDeadline;
  while (!receiver_report && absl::Now() < deadline) {
    datagram = peer.rtcp->Receive(absl::Seconds(1));
    receiver_report = datagram && (*datagram)[1] == kRtcpReceiverReport;
  }
  EXPECT_TRUE(receiver_report);

  peer.rtcp->Drain();
  engine->Close(1);
  datagram = peer.rtcp->Receive(absl::Seconds(1));
  ASSERT_TRUE(datagram.has_value());
  report = ParseRtcpCompound(*datagram, 0);
  ASSERT_TRUE(report.has_value());
  EXPECT_TRUE(report->bye);
}

// The far end holds our SR for a while and reports a delay since it that is
// 20 ms short: the round trip the engine computes (RFC 3550 6.4.1) is
// those 20 ms plus the real time on the wire and in the two programs.
TEST(RtpMediaEngineTest, TheFarEndsReportBlockGivesTheRoundTrip) {
  auto engine = StartEngine(RtcpEvery(absl::Milliseconds(100)));
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  absl::StatusOr<int> port = engine->Open(1, Source("tone:1000", "alice"));
  ASSERT_TRUE(port.ok());
  EXPECT_EQ(engine->Stats(1)->negotiated_payload_type, -1) << "no media yet";
  engine->Update(1, SendTo(peer.rtp->port(), MediaDirection::kSendRecv));
  MediaStats stats = *engine->Stats(1);
  EXPECT_EQ(stats.negotiated_payload_type, 0);
  EXPECT_EQ(stats.jitter_buffer_ms, 60);
  EXPECT_FALSE(stats.rtt_ms.has_value());

  std::optional<std::vector<uint8_t>> datagram;
  std::optional<RtcpSummary> sr;
  while (!(sr && sr->sender_info)) {
    datagram = peer.rtcp->Receive(absl::Seconds(2));
    ASSERT_TRUE(datagram.has_value());
    sr = ParseRtcpCompound(*datagram, 0);
  }
  const absl::Time received = absl::Now();
  absl::SleepFor(absl::Milliseconds(50));
  RtcpCompoundParams far_end;
  far_end.ssrc = 77;
  far_end.cname = "far@127.0.0.1";
  RtcpReportBlock block;
  block.ssrc = stats.local_ssrc;
  block.last_sr = NtpMiddle32(sr->sender_info->ntp_timestamp);
  const absl::Duration held = absl::Now() - received - absl::Milliseconds(20);
  block.delay_since_last_sr = static_cast<uint32_t>(absl::ToDoubleSeconds(held) * 65536);
  far_end.block = block;
  uint8_t buffer[kMaxRtcpCompoundSize];
  size_t size = WriteRtcpCompound(far_end, absl::MakeSpan(buffer));
  ASSERT_TRUE(peer.rtcp->SendTo(*port + 1, absl::MakeConstSpan(buffer, size)));
  ASSERT_TRUE(WaitFor([&] { return engine->Stats(1)->rtt_ms.has_value(); }, kDeadline));
  const double rtt = *engine->Stats(1)->rtt_ms;
  EXPECT_GE(rtt, 19.9);
  EXPECT_LT(rtt, 20.0 + absl::ToDoubleMilliseconds(kDeadline));
}

// ---------------------------------------------------------------- timeout

TEST(RtpMediaEngineTest, RtpTimeoutFiresOnceForAReceivingCallThatGetsNothing) {
  auto engine = StartEngine(RtpTimeout(1));
  absl::Mutex mu;
  std::vector<int64_t> timed_out;
  RtpMediaEngine* raw = engine.get();
  engine->SetTimeoutHandler([&](int64_t call_id) {
    {
      absl::MutexLock lock(&mu);
      timed_out.push_back(call_id);
    }
    if (call_id == 4) raw->Close(call_id);  // the handler may close the call
  });
  UdpPeer silent_peer;
  absl::StatusOr<int> p1 = engine->Open(1, Source("silence"));
  absl::StatusOr<int> p2 = engine->Open(2, Source("silence"));
  ASSERT_TRUE(p1.ok() && p2.ok());
  ASSERT_TRUE(engine->Open(3, Source("silence")).ok());
  ASSERT_TRUE(engine->Open(4, Source("silence")).ok());
  ASSERT_TRUE(engine->Open(5, Source("silence")).ok());
  engine->Update(1, SendTo(*p2, MediaDirection::kSendRecv));  // 1 and 2 talk
  engine->Update(2, SendTo(*p1, MediaDirection::kSendRecv));
  engine->Update(3, SendTo(silent_peer.port(), MediaDirection::kRecvOnly));
  engine->Update(4, SendTo(silent_peer.port(), MediaDirection::kSendRecv));
  engine->Update(5, SendTo(silent_peer.port(), MediaDirection::kSendOnly));  // not receiving

  auto count = [&] {
    absl::MutexLock lock(&mu);
    return timed_out.size();
  };
  ASSERT_TRUE(WaitFor([&] { return count() >= 2; }, absl::Seconds(3)));
  EXPECT_FALSE(WaitFor([&] { return count() > 2; }, absl::Milliseconds(400)));
  absl::MutexLock lock(&mu);
  std::sort(timed_out.begin(), timed_out.end());
  EXPECT_EQ(timed_out, (std::vector<int64_t>{3, 4}));
  EXPECT_FALSE(engine->Stats(4).has_value());
  EXPECT_TRUE(engine->Stats(3).has_value());
}

TEST(RtpMediaEngineTest, AHeldCallNeverTimesOutAndTheClockRestartsOnResume) {
  auto engine = StartEngine(RtpTimeout(1));
  absl::Mutex mu;
  std::vector<std::pair<int64_t, absl::Time>> timed_out;
  engine->SetTimeoutHandler([&](int64_t call_id) {
    absl::MutexLock lock(&mu);
    timed_out.emplace_back(call_id, absl::Now());
  });
  auto count = [&] {
    absl::MutexLock lock(&mu);
    return timed_out.size();
  };
  UdpPeer silent_peer;
  ASSERT_TRUE(engine->Open(1, Source("silence")).ok());
  ASSERT_TRUE(engine->Open(2, Source("silence")).ok());
  // 1: the far end holds us with a=sendonly and sends no music (we receive
  // only). 2: held by us the same way, sending and receiving in the SDP.
  MediaParams remote_hold = SendTo(silent_peer.port(), MediaDirection::kRecvOnly);
  remote_hold.held = true;
  MediaParams local_hold = SendTo(silent_peer.port(), MediaDirection::kSendRecv);
  local_hold.held = true;
  engine->Update(1, remote_hold);
  engine->Update(2, local_hold);
  EXPECT_FALSE(WaitFor([&] { return count() > 0; }, absl::Milliseconds(2500)));

  // Resumed: a full timeout from now, not from the start of the hold.
  const absl::Time resumed = absl::Now();
  remote_hold.held = false;
  engine->Update(1, remote_hold);
  ASSERT_TRUE(WaitFor([&] { return count() == 1; }, absl::Seconds(3)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(timed_out[0].first, 1);
  EXPECT_GE(timed_out[0].second - resumed, absl::Milliseconds(900));
}

// ---------------------------------------------------------------- threads

TEST(RtpMediaEngineTest, OpenUpdateCloseFromOtherThreadsWhileMediaRuns) {
  EngineSetup setup = RtcpEvery(absl::Milliseconds(20));
  setup.pairs = 16;
  auto engine = StartEngine(setup);
  UdpPeer sink;
  std::atomic<int> failures{0};
  auto worker = [&](int64_t base) {
    for (int64_t i = 0; i < 100; ++i) {
      int64_t id = base + i;
      absl::StatusOr<int> port = engine->Open(id, Source("tone:700"));
      if (!port.ok()) {
        ++failures;
        continue;
      }
      engine->Update(id, SendTo(sink.port(), MediaDirection::kSendRecv));
      engine->Stats(id);
      if (i % 3 == 0) std::this_thread::yield();
      engine->Close(id);
    }
  };
  std::thread first(worker, 1000);
  std::thread second(worker, 2000);
  first.join();
  second.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(engine->open_calls(), 0u);
}

TEST(RtpMediaEngineTest, DestructorClosesCallsAndTheirRecordings) {
  std::string dir = TestDir("destructor");
  UdpPeerPair peer = OpenUdpPeerPair();
  ASSERT_TRUE(peer.rtp);
  {
    auto engine = StartEngine();
    ASSERT_TRUE(engine->Open(7, Source("tone:1000", "carol", dir)).ok());
    engine->Update(7, SendTo(peer.rtp->port(), MediaDirection::kSendRecv));
    ASSERT_TRUE(WaitFor([&] { return engine->Stats(7)->packets_sent >= 5; }, kDeadline));
  }
  std::optional<testing::WavData> wav = ReadWav(dir + "/7-carol.wav");
  ASSERT_TRUE(wav.has_value());
  EXPECT_GE(wav->samples.size(), 5u * kFrameSamples * 2);
  bool bye = false;
  for (int i = 0; i < 10 && !bye; ++i) {
    std::optional<std::vector<uint8_t>> datagram = peer.rtcp->Receive(absl::Seconds(1));
    if (!datagram) break;
    std::optional<RtcpSummary> report = ParseRtcpCompound(*datagram, 0);
    bye = report && report->bye;
  }
  EXPECT_TRUE(bye);
}

}  // namespace
}  // namespace telestra::backend
