// Issue 17: a call takes RTP and RTCP only from its far end. Real sockets
// on loopback: the far end of the SDP is 127.0.0.1; an intruder (or a far
// end behind NAT) sends from 127.0.0.2 and 127.0.0.3.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backend/media/audio_format.h"
#include "backend/media/g711.h"
#include "backend/media/rtcp.h"
#include "backend/media/rtp_media_engine.h"
#include "backend/media/rtp_packet.h"
#include "gtest/gtest.h"
#include "tests/backend/media/media_test_support.h"

namespace telestra::backend {
namespace {

using testing::OpenUdpPeerPair;
using testing::PickFreeRtpRange;
using testing::PortRange;
using testing::ReadWav;
using testing::TestDir;
using testing::UdpPeer;
using testing::UdpPeerPair;
using testing::WaitFor;

constexpr absl::Duration kDeadline = absl::Seconds(3);
constexpr int16_t kIntruderLevel = 8000;
constexpr int16_t kFarEndLevel = 1000;

std::unique_ptr<RtpMediaEngine> StartEngine(bool latch, int rtp_timeout = 0,
                                            absl::Duration rtcp_interval = absl::Seconds(5)) {
  PortRange range = PickFreeRtpRange(4);
  EXPECT_NE(range.min, 0) << "no free port range";
  RtpConfig config;
  config.port_min = range.min;
  config.port_max = range.max;
  config.rtp_timeout = rtp_timeout;
  config.latch = latch;
  RtpMediaEngine::Options options;
  options.rtcp_interval = rtcp_interval;
  auto engine = std::make_unique<RtpMediaEngine>(config, "127.0.0.1", options);
  absl::Status started = engine->Start();
  EXPECT_TRUE(started.ok()) << started;
  return engine;
}

MediaOptions Options(const std::string& record_dir = "") {
  MediaOptions options;
  options.account = "alice";
  options.record_dir = record_dir;
  return options;
}

// The far end's SDP: 127.0.0.1:`port`, send and receive.
MediaParams FarEndAt(int port) {
  MediaParams params;
  params.remote_address = "127.0.0.1";
  params.remote_rtp_port = port;
  params.payload_type = kPayloadTypePcmu;
  params.direction = MediaDirection::kSendRecv;
  return params;
}

std::vector<uint8_t> Rtp(uint16_t sequence, uint32_t ssrc, int16_t level) {
  std::vector<uint8_t> packet(kRtpHeaderSize + kFrameSamples);
  RtpHeader header;
  header.payload_type = kPayloadTypePcmu;
  header.sequence = sequence;
  header.timestamp = 160u * sequence;
  header.ssrc = ssrc;
  WriteRtpHeader(header, packet.data());
  std::vector<int16_t> samples(kFrameSamples, level);
  G711Encode(kPayloadTypePcmu, samples, packet.data() + kRtpHeaderSize);
  return packet;
}

std::vector<uint8_t> SenderReport(uint32_t ssrc) {
  RtcpCompoundParams params;
  params.ssrc = ssrc;
  params.cname = "far@end";
  RtcpSenderInfo info;
  info.ntp_timestamp = uint64_t{0xe000000012345678};
  info.packet_count = 1;
  params.sender_info = info;
  std::vector<uint8_t> packet(kMaxRtcpCompoundSize);
  packet.resize(WriteRtcpCompound(params, absl::MakeSpan(packet)));
  return packet;
}

MediaStats StatsOf(const RtpMediaEngine& engine, int64_t call_id) {
  std::optional<MediaStats> stats = engine.Stats(call_id);
  EXPECT_TRUE(stats.has_value());
  return stats.value_or(MediaStats());
}

// The first RTP packet of the engine's own stream that `peer` receives.
std::optional<RtpHeader> ReceiveOurRtp(UdpPeer& peer) {
  std::optional<std::vector<uint8_t>> datagram = peer.Receive(absl::Seconds(1));
  if (!datagram) return std::nullopt;
  std::optional<RtpPacketView> packet = ParseRtpPacket(*datagram);
  if (!packet) return std::nullopt;
  return packet->header;
}

TEST(RtpSourceTest, RtpAndRtcpFromAnotherAddressAreDiscardedCountedAndNotRecorded) {
  const std::string dir = TestDir("rtp-source-foreign");
  auto engine = StartEngine(/*latch=*/false);
  UdpPeerPair far_end = OpenUdpPeerPair();
  ASSERT_TRUE(far_end.rtp);
  UdpPeer intruder(0, "127.0.0.2");
  ASSERT_TRUE(intruder.ok());
  absl::StatusOr<int> port = engine->Open(1, Options(dir));
  ASSERT_TRUE(port.ok()) << port.status();
  engine->Update(1, FarEndAt(far_end.rtp->port()));

  // The intruder's stream: loud, in sequence, plus sender reports.
  for (uint16_t i = 0; i < 50; ++i)
    ASSERT_TRUE(intruder.SendTo(*port, Rtp(i, 0xbad, kIntruderLevel)));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(intruder.SendTo(*port + 1, SenderReport(0xbad)));
  ASSERT_TRUE(WaitFor([&] { return engine->counters().datagrams_foreign == 55; }, kDeadline))
      << engine->counters().datagrams_foreign;
  MediaStats stats = StatsOf(*engine, 1);
  EXPECT_EQ(stats.packets_foreign, 50u);
  EXPECT_EQ(stats.rtcp_foreign, 5u);
  EXPECT_EQ(stats.packets_received, 0u);
  EXPECT_EQ(stats.rtcp_received, 0u);
  EXPECT_EQ(stats.remote_ssrc, 0u);
  EXPECT_EQ(engine->Diagnostics(1)->jitter_buffer.packets_stored, 0u);

  // The far end itself, from another port of its address: taken.
  UdpPeer far_end_other_port;
  ASSERT_TRUE(far_end_other_port.ok());
  for (uint16_t i = 0; i < 10; ++i)
    ASSERT_TRUE(far_end.rtp->SendTo(*port, Rtp(i, 0x900d, kFarEndLevel)));
  for (uint16_t i = 10; i < 20; ++i) {
    ASSERT_TRUE(far_end_other_port.SendTo(*port, Rtp(i, 0x900d, kFarEndLevel)));
  }
  ASSERT_TRUE(far_end.rtcp->SendTo(*port + 1, SenderReport(0x900d)));
  ASSERT_TRUE(WaitFor(
      [&] {
        MediaStats now = StatsOf(*engine, 1);
        // (A burst: the 60 ms buffer plays out what fits of it.)
        return now.packets_received == 20 && now.rtcp_received == 1 &&
               engine->Diagnostics(1)->jitter_buffer.frames_played >= 3;
      },
      kDeadline))
      << StatsOf(*engine, 1).packets_received << " "
      << engine->Diagnostics(1)->jitter_buffer.frames_played;
  EXPECT_EQ(StatsOf(*engine, 1).remote_ssrc, 0x900du);
  EXPECT_EQ(engine->counters().datagrams_foreign, 55u);

  // The recording's left channel (received audio) holds the far end's
  // level and never the intruder's.
  engine->Close(1);
  std::optional<testing::WavData> wav = ReadWav(absl::StrCat(dir, "/1-alice.wav"));
  ASSERT_TRUE(wav.has_value());
  std::vector<int16_t> received = wav->Channel(0);
  int loudest = 0;
  for (int16_t sample : received) loudest = std::max(loudest, std::abs(static_cast<int>(sample)));
  EXPECT_GT(loudest, kFarEndLevel / 2);
  EXPECT_LT(loudest, (kFarEndLevel + kIntruderLevel) / 2);
}

TEST(RtpSourceTest, RtpFromAnotherAddressDoesNotKeepTheCallAlive) {
  auto engine = StartEngine(/*latch=*/false, /*rtp_timeout=*/1);
  absl::Mutex mu;
  std::vector<int64_t> timed_out;
  engine->SetTimeoutHandler([&](int64_t call_id) {
    absl::MutexLock lock(&mu);
    timed_out.push_back(call_id);
  });
  UdpPeer far_end;  // silent
  UdpPeer intruder(0, "127.0.0.2");
  ASSERT_TRUE(far_end.ok() && intruder.ok());
  absl::StatusOr<int> port = engine->Open(7, Options());
  ASSERT_TRUE(port.ok());
  engine->Update(7, FarEndAt(far_end.port()));

  // A steady stream from the intruder for longer than the timeout: the
  // call still times out.
  uint16_t sequence = 0;
  const absl::Time start = absl::Now();
  ASSERT_TRUE(WaitFor(
      [&] {
        intruder.SendTo(*port, Rtp(sequence++, 0xbad, kIntruderLevel));
        absl::MutexLock lock(&mu);
        return !timed_out.empty();
      },
      absl::Seconds(4)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(timed_out, std::vector<int64_t>{7});
  }
  MediaStats stats = StatsOf(*engine, 7);
  EXPECT_EQ(stats.packets_received, 0u);
  EXPECT_GT(stats.packets_foreign, 20u);
}

TEST(RtpSourceTest, LatchTakesTheFirstSourceAfterTheAnswerAndThenOnlyThatOne) {
  auto engine = StartEngine(/*latch=*/true, /*rtp_timeout=*/0, absl::Milliseconds(100));
  UdpPeerPair sdp_far_end = OpenUdpPeerPair();  // what the SDP says
  ASSERT_TRUE(sdp_far_end.rtp);
  UdpPeer nat_rtp(0, "127.0.0.2");  // where the far end's media really comes from
  UdpPeer nat_rtcp(0, "127.0.0.2");
  UdpPeer nat_other_port(0, "127.0.0.2");
  UdpPeer other_host(0, "127.0.0.3");
  ASSERT_TRUE(nat_rtp.ok() && nat_rtcp.ok() && nat_other_port.ok() && other_host.ok());
  absl::StatusOr<int> port = engine->Open(1, Options());
  ASSERT_TRUE(port.ok());

  // Before the answer nothing is taken, and nothing latches.
  ASSERT_TRUE(other_host.SendTo(*port, Rtp(1, 0x07e4, kIntruderLevel)));
  ASSERT_TRUE(WaitFor([&] { return StatsOf(*engine, 1).packets_foreign == 1; }, kDeadline));

  engine->Update(1, FarEndAt(sdp_far_end.rtp->port()));
  // Until a source latches, our RTP goes to the SDP's address.
  std::optional<RtpHeader> ours = ReceiveOurRtp(*sdp_far_end.rtp);
  ASSERT_TRUE(ours.has_value());
  const uint32_t our_ssrc = ours->ssrc;

  // A malformed datagram does not latch; the first RTP packet does.
  ASSERT_TRUE(other_host.SendTo(*port, std::vector<uint8_t>{1, 2, 3}));
  ASSERT_TRUE(WaitFor([&] { return engine->Diagnostics(1)->packets_ignored >= 1; }, kDeadline));
  ASSERT_TRUE(nat_rtp.SendTo(*port, Rtp(100, 0xaa, kFarEndLevel)));
  ASSERT_TRUE(WaitFor([&] { return StatsOf(*engine, 1).packets_received == 1; }, kDeadline));
  // ... and from then on our RTP goes to it, not to the SDP's address.
  nat_rtp.Drain();
  std::optional<RtpHeader> latched = ReceiveOurRtp(nat_rtp);
  ASSERT_TRUE(latched.has_value());
  EXPECT_EQ(latched->ssrc, our_ssrc);
  sdp_far_end.rtp->Drain();
  EXPECT_FALSE(sdp_far_end.rtp->Receive(absl::Milliseconds(100)).has_value());

  // Only that source: not the SDP's address, not another port of the
  // latched address, not another host.
  uint64_t foreign_before = engine->counters().datagrams_foreign;
  ASSERT_TRUE(sdp_far_end.rtp->SendTo(*port, Rtp(101, 0xaa, kIntruderLevel)));
  ASSERT_TRUE(nat_other_port.SendTo(*port, Rtp(102, 0xaa, kIntruderLevel)));
  ASSERT_TRUE(other_host.SendTo(*port, Rtp(103, 0xaa, kIntruderLevel)));
  ASSERT_TRUE(nat_rtp.SendTo(*port, Rtp(104, 0xaa, kFarEndLevel)));
  ASSERT_TRUE(WaitFor([&] { return StatsOf(*engine, 1).packets_received == 2; }, kDeadline));
  ASSERT_TRUE(WaitFor([&] { return StatsOf(*engine, 1).packets_foreign == 4; }, kDeadline));
  EXPECT_EQ(engine->counters().datagrams_foreign, foreign_before + 3);

  // RTCP latches on its own: the first compound's source, then only it; our
  // reports go there.
  ASSERT_TRUE(nat_rtcp.SendTo(*port + 1, SenderReport(0xaa)));
  ASSERT_TRUE(WaitFor([&] { return StatsOf(*engine, 1).rtcp_received == 1; }, kDeadline));
  ASSERT_TRUE(sdp_far_end.rtcp->SendTo(*port + 1, SenderReport(0xaa)));
  ASSERT_TRUE(WaitFor([&] { return StatsOf(*engine, 1).rtcp_foreign == 1; }, kDeadline));
  EXPECT_EQ(StatsOf(*engine, 1).rtcp_received, 1u);
  nat_rtcp.Drain();
  std::optional<std::vector<uint8_t>> report = nat_rtcp.Receive(absl::Seconds(1));
  ASSERT_TRUE(report.has_value());
  std::optional<RtcpSummary> summary = ParseRtcpCompound(*report, 0);
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->sender_ssrc, our_ssrc);

  // A new answer with another address or port latches again.
  UdpPeerPair moved = OpenUdpPeerPair();
  ASSERT_TRUE(moved.rtp);
  engine->Update(1, FarEndAt(moved.rtp->port()));
  ASSERT_TRUE(other_host.SendTo(*port, Rtp(200, 0xaa, kFarEndLevel)));
  ASSERT_TRUE(WaitFor([&] { return StatsOf(*engine, 1).packets_received == 3; }, kDeadline));
  ASSERT_TRUE(nat_rtp.SendTo(*port, Rtp(201, 0xaa, kIntruderLevel)));
  ASSERT_TRUE(WaitFor([&] { return StatsOf(*engine, 1).packets_foreign == 5; }, kDeadline));
  EXPECT_EQ(StatsOf(*engine, 1).packets_received, 3u);
}

}  // namespace
}  // namespace telestra::backend
