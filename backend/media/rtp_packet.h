#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/types/span.h"

namespace telestra::backend {

// The fixed RTP header (RFC 3550 section 5.1) as this engine sends it:
// version 2, no padding, no extension, no CSRCs.
inline constexpr size_t kRtpHeaderSize = 12;

struct RtpHeader {
  bool marker = false;
  uint8_t payload_type = 0;  // 0..127
  uint16_t sequence = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
};

// Writes the 12-byte header to `out` (at least kRtpHeaderSize bytes).
void WriteRtpHeader(const RtpHeader& header, uint8_t* out);

// A received RTP packet: its header and where its payload lies in the
// datagram (CSRCs, the header extension and padding skipped).
struct RtpPacketView {
  RtpHeader header;
  absl::Span<const uint8_t> payload;
};

// Parses one datagram. nullopt when it is not a well-formed RTP version 2
// packet (too short, wrong version, CSRC/extension/padding beyond its end).
// Thread: any (pure function).
std::optional<RtpPacketView> ParseRtpPacket(absl::Span<const uint8_t> datagram);

}  // namespace telestra::backend
