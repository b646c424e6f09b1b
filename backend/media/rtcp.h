#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace telestra::backend {

// RTCP (RFC 3550 section 6): the compound packets this engine sends (SR or
// RR, then SDES CNAME, then BYE when leaving) and a validating parser for
// the ones it receives. Thread: any (pure functions).

inline constexpr uint8_t kRtcpSenderReport = 200;
inline constexpr uint8_t kRtcpReceiverReport = 201;
inline constexpr uint8_t kRtcpSourceDescription = 202;
inline constexpr uint8_t kRtcpBye = 203;

// Sender info of an SR (section 6.4.1).
struct RtcpSenderInfo {
  uint64_t ntp_timestamp = 0;  // 32.32 fixed point seconds since 1900
  uint32_t rtp_timestamp = 0;
  uint32_t packet_count = 0;
  uint32_t octet_count = 0;  // payload octets
};

// One reception report block (section 6.4.1).
struct RtcpReportBlock {
  uint32_t ssrc = 0;            // the source this block is about
  uint8_t fraction_lost = 0;    // since the previous report, 1/256 units
  int32_t cumulative_lost = 0;  // 24-bit signed on the wire
  uint32_t extended_highest_sequence = 0;
  uint32_t jitter = 0;               // timestamp units
  uint32_t last_sr = 0;              // middle 32 bits of the last SR's NTP timestamp
  uint32_t delay_since_last_sr = 0;  // 1/65536 s
};

struct RtcpCompoundParams {
  uint32_t ssrc = 0;
  std::optional<RtcpSenderInfo> sender_info;  // set: SR; unset: RR
  std::optional<RtcpReportBlock> block;       // at most one source per call
  absl::string_view cname;                    // truncated to 255 bytes
  bool bye = false;                           // append a BYE for `ssrc`
};

// Largest compound WriteRtcpCompound can produce.
// SR with one block (52) + SDES with a 255-byte CNAME, padded (268) + BYE (8).
inline constexpr size_t kMaxRtcpCompoundSize = 52 + 268 + 8;

// Writes the compound packet; returns its size, 0 if `out` is too small.
size_t WriteRtcpCompound(const RtcpCompoundParams& params, absl::Span<uint8_t> out);

// What a received compound packet says, as far as one call cares.
struct RtcpSummary {
  int packets = 0;                                // RTCP packets in the compound
  uint32_t sender_ssrc = 0;                       // SSRC of the leading SR/RR
  std::optional<RtcpSenderInfo> sender_info;      // present when it leads with an SR
  std::optional<RtcpReportBlock> block_about_us;  // the block whose ssrc == local_ssrc
  bool bye = false;
};

// Validates (RFC 3550 A.2: version 2, first packet SR or RR, lengths add up
// to the datagram) and summarises a compound packet; nullopt if invalid.
std::optional<RtcpSummary> ParseRtcpCompound(absl::Span<const uint8_t> datagram,
                                             uint32_t local_ssrc);

// NTP timestamp (32.32 seconds since 1900-01-01) for a Unix time in ns.
uint64_t NtpTimestampFromUnixNanos(int64_t unix_nanos);

// The middle 32 bits of an NTP timestamp (the LSR field).
inline uint32_t NtpMiddle32(uint64_t ntp) { return static_cast<uint32_t>(ntp >> 16); }

// The round-trip time a report block about our stream tells (RFC 3550
// 6.4.1): A - LSR - DLSR, where A is the middle 32 bits of the NTP time
// the block arrived (all in 1/65536 s, modulo 2^32), in milliseconds.
// nullopt when the block refers to no SR of ours (LSR 0) or the result is
// negative (the far end's DLSR is wrong, or our clock stepped back).
std::optional<double> RtcpRoundTripMs(uint32_t arrival_ntp_middle, uint32_t last_sr,
                                      uint32_t delay_since_last_sr);

}  // namespace telestra::backend
