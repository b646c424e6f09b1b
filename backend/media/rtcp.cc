#include "backend/media/rtcp.h"

#include <algorithm>
#include <cstring>

namespace telestra::backend {
namespace {

constexpr size_t kHeaderSize = 4;
constexpr size_t kSenderInfoSize = 20;
constexpr size_t kReportBlockSize = 24;
constexpr uint8_t kSdesCname = 1;
constexpr uint64_t kNtpUnixEpochOffset = 2208988800ULL;  // 1900 -> 1970, seconds

uint32_t Read32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

void Write32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Common header: V=2, P=0, count, type, length in 32-bit words minus one.
void WriteHeader(uint8_t* p, int count, uint8_t type, size_t size) {
  p[0] = static_cast<uint8_t>(0x80 | (count & 0x1f));
  p[1] = type;
  size_t words = size / 4 - 1;
  p[2] = static_cast<uint8_t>(words >> 8);
  p[3] = static_cast<uint8_t>(words);
}

void WriteReportBlock(uint8_t* p, const RtcpReportBlock& block) {
  int32_t lost = std::clamp(block.cumulative_lost, -0x800000, 0x7fffff);
  Write32(p, block.ssrc);
  Write32(p + 4, static_cast<uint32_t>(block.fraction_lost) << 24 |
                     (static_cast<uint32_t>(lost) & 0xffffff));
  Write32(p + 8, block.extended_highest_sequence);
  Write32(p + 12, block.jitter);
  Write32(p + 16, block.last_sr);
  Write32(p + 20, block.delay_since_last_sr);
}

RtcpReportBlock ReadReportBlock(const uint8_t* p) {
  RtcpReportBlock block;
  block.ssrc = Read32(p);
  uint32_t word = Read32(p + 4);
  block.fraction_lost = static_cast<uint8_t>(word >> 24);
  int32_t lost = static_cast<int32_t>(word & 0xffffff);
  if (lost & 0x800000) lost -= 0x1000000;  // sign-extend 24 bits
  block.cumulative_lost = lost;
  block.extended_highest_sequence = Read32(p + 8);
  block.jitter = Read32(p + 12);
  block.last_sr = Read32(p + 16);
  block.delay_since_last_sr = Read32(p + 20);
  return block;
}

}  // namespace

size_t WriteRtcpCompound(const RtcpCompoundParams& params, absl::Span<uint8_t> out) {
  size_t cname_size = std::min<size_t>(params.cname.size(), 255);
  size_t report_size = kHeaderSize + 4 + (params.sender_info ? kSenderInfoSize : 0) +
                       (params.block ? kReportBlockSize : 0);
  // SDES: header, SSRC, CNAME item (type, length, text), END, pad to 4.
  size_t sdes_size = (kHeaderSize + 4 + 2 + cname_size + 1 + 3) / 4 * 4;
  size_t bye_size = params.bye ? kHeaderSize + 4 : 0;
  size_t total = report_size + sdes_size + bye_size;
  if (total > out.size()) return 0;

  uint8_t* p = out.data();
  int block_count = params.block ? 1 : 0;
  WriteHeader(p, block_count, params.sender_info ? kRtcpSenderReport : kRtcpReceiverReport,
              report_size);
  Write32(p + 4, params.ssrc);
  uint8_t* q = p + 8;
  if (params.sender_info) {
    const RtcpSenderInfo& info = *params.sender_info;
    Write32(q, static_cast<uint32_t>(info.ntp_timestamp >> 32));
    Write32(q + 4, static_cast<uint32_t>(info.ntp_timestamp));
    Write32(q + 8, info.rtp_timestamp);
    Write32(q + 12, info.packet_count);
    Write32(q + 16, info.octet_count);
    q += kSenderInfoSize;
  }
  if (params.block) WriteReportBlock(q, *params.block);
  p += report_size;

  std::memset(p, 0, sdes_size);
  WriteHeader(p, 1, kRtcpSourceDescription, sdes_size);
  Write32(p + 4, params.ssrc);
  p[8] = kSdesCname;
  p[9] = static_cast<uint8_t>(cname_size);
  // An empty cname's data() may be null, which memcpy must not get (UBSan).
  if (cname_size > 0) std::memcpy(p + 10, params.cname.data(), cname_size);
  // The END item and the padding are the zeros left by memset.
  p += sdes_size;

  if (params.bye) {
    WriteHeader(p, 1, kRtcpBye, bye_size);
    Write32(p + 4, params.ssrc);
  }
  return total;
}

std::optional<RtcpSummary> ParseRtcpCompound(absl::Span<const uint8_t> datagram,
                                             uint32_t local_ssrc) {
  const uint8_t* p = datagram.data();
  size_t remaining = datagram.size();
  RtcpSummary summary;
  bool first = true;
  // Each packet is at least 4 bytes, so this loop is bounded by size / 4.
  while (remaining > 0) {
    if (remaining < kHeaderSize || (p[0] >> 6) != 2) return std::nullopt;
    size_t size = (static_cast<size_t>(p[2]) << 8 | p[3]) * 4 + 4;
    if (size > remaining) return std::nullopt;
    uint8_t type = p[1];
    int count = p[0] & 0x1f;
    bool padding = (p[0] & 0x20) != 0;
    // Padding is only allowed on the last packet of a compound.
    if (padding && size != remaining) return std::nullopt;
    if (first && type != kRtcpSenderReport && type != kRtcpReceiverReport) {
      return std::nullopt;
    }
    if (type == kRtcpSenderReport || type == kRtcpReceiverReport) {
      size_t info_size = type == kRtcpSenderReport ? kSenderInfoSize : 0;
      if (size < kHeaderSize + 4 + info_size + count * kReportBlockSize) {
        return std::nullopt;
      }
      if (first) {
        summary.sender_ssrc = Read32(p + 4);
        if (type == kRtcpSenderReport) {
          RtcpSenderInfo info;
          info.ntp_timestamp = static_cast<uint64_t>(Read32(p + 8)) << 32 | Read32(p + 12);
          info.rtp_timestamp = Read32(p + 16);
          info.packet_count = Read32(p + 20);
          info.octet_count = Read32(p + 24);
          summary.sender_info = info;
        }
      }
      const uint8_t* block = p + kHeaderSize + 4 + info_size;
      for (int i = 0; i < count; ++i, block += kReportBlockSize) {
        if (Read32(block) == local_ssrc) summary.block_about_us = ReadReportBlock(block);
      }
    } else if (type == kRtcpBye) {
      summary.bye = true;
    }
    first = false;
    ++summary.packets;
    p += size;
    remaining -= size;
  }
  if (summary.packets == 0) return std::nullopt;
  return summary;
}

uint64_t NtpTimestampFromUnixNanos(int64_t unix_nanos) {
  uint64_t seconds = static_cast<uint64_t>(unix_nanos / 1000000000) + kNtpUnixEpochOffset;
  uint64_t nanos = static_cast<uint64_t>(unix_nanos % 1000000000);
  uint64_t fraction = (nanos << 32) / 1000000000;
  return seconds << 32 | fraction;
}

std::optional<double> RtcpRoundTripMs(uint32_t arrival_ntp_middle, uint32_t last_sr,
                                      uint32_t delay_since_last_sr) {
  if (last_sr == 0) return std::nullopt;
  // Modulo 2^32: right across the wrap of the 16.16 clock (every 18 h).
  const auto rtt = static_cast<int32_t>(arrival_ntp_middle - last_sr - delay_since_last_sr);
  if (rtt < 0) return std::nullopt;
  return rtt * 1000.0 / 65536.0;
}

}  // namespace telestra::backend
