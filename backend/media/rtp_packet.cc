#include "backend/media/rtp_packet.h"

namespace telestra::backend {
namespace {

uint16_t Read16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

uint32_t Read32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

}  // namespace

void WriteRtpHeader(const RtpHeader& header, uint8_t* out) {
  out[0] = 0x80;  // V=2, P=0, X=0, CC=0
  out[1] = static_cast<uint8_t>((header.marker ? 0x80 : 0) | (header.payload_type & 0x7f));
  out[2] = static_cast<uint8_t>(header.sequence >> 8);
  out[3] = static_cast<uint8_t>(header.sequence);
  out[4] = static_cast<uint8_t>(header.timestamp >> 24);
  out[5] = static_cast<uint8_t>(header.timestamp >> 16);
  out[6] = static_cast<uint8_t>(header.timestamp >> 8);
  out[7] = static_cast<uint8_t>(header.timestamp);
  out[8] = static_cast<uint8_t>(header.ssrc >> 24);
  out[9] = static_cast<uint8_t>(header.ssrc >> 16);
  out[10] = static_cast<uint8_t>(header.ssrc >> 8);
  out[11] = static_cast<uint8_t>(header.ssrc);
}

std::optional<RtpPacketView> ParseRtpPacket(absl::Span<const uint8_t> datagram) {
  const uint8_t* p = datagram.data();
  size_t size = datagram.size();
  if (size < kRtpHeaderSize || (p[0] >> 6) != 2) return std::nullopt;
  bool padding = (p[0] & 0x20) != 0;
  bool extension = (p[0] & 0x10) != 0;
  size_t csrc_count = p[0] & 0x0f;
  size_t offset = kRtpHeaderSize + 4 * csrc_count;
  if (offset > size) return std::nullopt;
  if (extension) {
    if (offset + 4 > size) return std::nullopt;
    size_t words = Read16(p + offset + 2);
    offset += 4 + 4 * words;
    if (offset > size) return std::nullopt;
  }
  size_t end = size;
  if (padding) {
    size_t pad = p[size - 1];
    if (pad == 0 || offset + pad > size) return std::nullopt;
    end -= pad;
  }
  RtpPacketView view;
  view.header.marker = (p[1] & 0x80) != 0;
  view.header.payload_type = p[1] & 0x7f;
  view.header.sequence = Read16(p + 2);
  view.header.timestamp = Read32(p + 4);
  view.header.ssrc = Read32(p + 8);
  view.payload = datagram.subspan(offset, end - offset);
  return view;
}

}  // namespace telestra::backend
