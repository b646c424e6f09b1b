#include "tests/backend/media/engine_test_support.h"

#include "absl/status/status.h"
#include "backend/media/audio_format.h"
#include "backend/media/rtp_packet.h"
#include "gtest/gtest.h"
#include "tests/backend/media/media_test_support.h"

namespace telestra::backend::testing {

EngineSetup Pairs(int pairs) {
  EngineSetup setup;
  setup.pairs = pairs;
  return setup;
}

EngineSetup RtcpEvery(absl::Duration interval) {
  EngineSetup setup;
  setup.rtcp_interval = interval;
  return setup;
}

EngineSetup RtpTimeout(int seconds) {
  EngineSetup setup;
  setup.rtp_timeout = seconds;
  return setup;
}

std::unique_ptr<RtpMediaEngine> StartEngine(const EngineSetup& setup) {
  PortRange range = PickFreeRtpRange(setup.pairs);
  EXPECT_NE(range.min, 0) << "no free port range";
  RtpConfig config;
  config.port_min = range.min;
  config.port_max = range.max;
  config.rtp_timeout = setup.rtp_timeout;
  config.jitter_buffer_ms = setup.jitter_buffer_ms;
  RtpMediaEngine::Options options;
  options.rtcp_interval = setup.rtcp_interval;
  auto engine = std::make_unique<RtpMediaEngine>(config, "127.0.0.1", options);
  absl::Status started = engine->Start();
  EXPECT_TRUE(started.ok()) << started;
  return engine;
}

MediaOptions Source(const std::string& text, const std::string& account,
                    const std::string& record_dir) {
  MediaOptions options;
  options.account = account;
  absl::StatusOr<AudioSource> source = ParseAudioSource(text);
  EXPECT_TRUE(source.ok()) << source.status();
  if (source.ok()) options.source = *source;
  options.record_dir = record_dir;
  return options;
}

MediaParams SendTo(int port, MediaDirection direction, int payload_type) {
  MediaParams params;
  params.remote_address = "127.0.0.1";
  params.remote_rtp_port = port;
  params.payload_type = payload_type;
  params.direction = direction;
  return params;
}

std::vector<uint8_t> RtpPacket(uint16_t sequence, uint32_t timestamp, uint32_t ssrc,
                               int payload_type, int16_t level) {
  std::vector<uint8_t> packet(kRtpHeaderSize + kFrameSamples);
  RtpHeader header;
  header.payload_type = static_cast<uint8_t>(payload_type);
  header.sequence = sequence;
  header.timestamp = timestamp;
  header.ssrc = ssrc;
  WriteRtpHeader(header, packet.data());
  std::vector<int16_t> samples(kFrameSamples, level);
  if (IsG711(payload_type)) {
    G711Encode(payload_type, samples, packet.data() + kRtpHeaderSize);
  }
  return packet;
}

}  // namespace telestra::backend::testing
