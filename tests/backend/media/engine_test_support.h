// Helpers for the tests of RtpMediaEngine: a started engine on a free port
// range, audio sources, far ends and the packets a far end sends.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "backend/media/g711.h"
#include "backend/media/rtp_media_engine.h"
#include "backend/media_engine.h"

namespace telestra::backend::testing {

struct EngineSetup {
  int pairs = 8;
  int rtp_timeout = 0;
  int jitter_buffer_ms = 60;
  absl::Duration rtcp_interval = absl::Seconds(5);
};
EngineSetup Pairs(int pairs);
EngineSetup RtcpEvery(absl::Duration interval);
EngineSetup RtpTimeout(int seconds);

// An engine on a free range of `setup.pairs` pairs of 127.0.0.1, started
// (a test failure if it cannot be).
std::unique_ptr<RtpMediaEngine> StartEngine(const EngineSetup& setup = EngineSetup());

// MediaOptions with the source `text` (ParseAudioSource).
MediaOptions Source(const std::string& text, const std::string& account = "alice",
                    const std::string& record_dir = "");

// Media towards 127.0.0.1:`port`.
MediaParams SendTo(int port, MediaDirection direction, int payload_type = kPayloadTypePcmu);

// A G.711 packet as a far end would send it: every sample `level`.
std::vector<uint8_t> RtpPacket(uint16_t sequence, uint32_t timestamp, uint32_t ssrc,
                               int payload_type = kPayloadTypePcmu, int16_t level = 1000);

}  // namespace telestra::backend::testing
