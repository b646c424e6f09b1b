// libFuzzer target: RTP and RTCP packet parsing and writing
// (backend/media/rtp_packet.h, backend/media/rtcp.h), what the media
// thread does with every datagram that reaches a call's ports.
//
// Input: bytes 0..3 are the call's own SSRC (big-endian), the rest is one
// datagram, parsed both as RTP and as an RTCP compound. Properties checked:
//  - RTP: a parsed packet is version 2 with its payload inside the
//    datagram, after the 12-byte header and the CSRCs, and its header
//    fields are the datagram's bytes; the header written back with the
//    payload parses to the same header and payload, and is the datagram
//    itself when that had no CSRC, extension or padding;
//  - RTCP: a valid compound starts with an SR or RR of version 2, is a
//    whole number of 32-bit words and holds at most size / 4 packets; what
//    the call keeps of it (sender SSRC, sender info, the block about our
//    SSRC, BYE) written back as a compound parses to the same;
//  - the writer, with parameters taken from the datagram's bytes (and an
//    output buffer of a size taken from them too), writes nothing when the
//    buffer is too small, else a valid compound of a whole number of words
//    that parses back to its parameters (the CNAME cut to 255 bytes).
// Built by scripts/fuzz.sh and replayed over fuzz/corpus/rtp_rtcp by
// //tests/hardening:fuzz_corpus_rtp_rtcp_test.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "backend/media/rtcp.h"
#include "backend/media/rtp_packet.h"

namespace {

namespace media = telestra::backend;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "rtp_rtcp_fuzzer: property violated: %s\n", what);
    std::abort();
  }
}

uint32_t Read32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

bool SameHeader(const media::RtpHeader& a, const media::RtpHeader& b) {
  return a.marker == b.marker && a.payload_type == b.payload_type && a.sequence == b.sequence &&
         a.timestamp == b.timestamp && a.ssrc == b.ssrc;
}

bool SameBlock(const std::optional<media::RtcpReportBlock>& a,
               const std::optional<media::RtcpReportBlock>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->ssrc == b->ssrc && a->fraction_lost == b->fraction_lost &&
         a->cumulative_lost == b->cumulative_lost &&
         a->extended_highest_sequence == b->extended_highest_sequence && a->jitter == b->jitter &&
         a->last_sr == b->last_sr && a->delay_since_last_sr == b->delay_since_last_sr;
}

bool SameSenderInfo(const std::optional<media::RtcpSenderInfo>& a,
                    const std::optional<media::RtcpSenderInfo>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->ntp_timestamp == b->ntp_timestamp && a->rtp_timestamp == b->rtp_timestamp &&
         a->packet_count == b->packet_count && a->octet_count == b->octet_count;
}

void CheckRtp(absl::Span<const uint8_t> datagram) {
  std::optional<media::RtpPacketView> packet = media::ParseRtpPacket(datagram);
  if (datagram.size() < media::kRtpHeaderSize || (datagram[0] >> 6) != 2) {
    Check(!packet.has_value(), "short or not version 2: rejected");
  }
  if (!packet) return;
  const uint8_t* p = datagram.data();
  const size_t csrc_count = p[0] & 0x0f;
  const uint8_t* begin = packet->payload.data();
  Check(packet->payload.empty() || (begin >= p + media::kRtpHeaderSize + 4 * csrc_count &&
                                    begin + packet->payload.size() <= p + datagram.size()),
        "the payload lies inside the datagram, after the header and CSRCs");
  Check(packet->header.marker == ((p[1] & 0x80) != 0) &&
            packet->header.payload_type == (p[1] & 0x7f) &&
            packet->header.sequence == (p[2] << 8 | p[3]) &&
            packet->header.timestamp == Read32(p + 4) && packet->header.ssrc == Read32(p + 8),
        "header fields are the datagram's bytes");
  if ((p[0] & 0x30) == 0) {
    Check(begin == p + media::kRtpHeaderSize + 4 * csrc_count &&
              packet->payload.size() == datagram.size() - media::kRtpHeaderSize - 4 * csrc_count,
          "without extension or padding the payload is the rest of the datagram");
  }

  // Written back (as the engine writes: no CSRC, extension or padding).
  std::vector<uint8_t> written(media::kRtpHeaderSize + packet->payload.size());
  media::WriteRtpHeader(packet->header, written.data());
  if (!packet->payload.empty()) {
    std::memcpy(written.data() + media::kRtpHeaderSize, packet->payload.data(),
                packet->payload.size());
  }
  std::optional<media::RtpPacketView> again = media::ParseRtpPacket(written);
  Check(again.has_value(), "a written packet parses");
  Check(SameHeader(again->header, packet->header), "header round trip");
  Check(absl::MakeConstSpan(again->payload) == packet->payload, "payload round trip");
  if ((p[0] & 0x3f) == 0) {
    Check(absl::MakeConstSpan(written) == datagram, "a plain packet is written back byte for byte");
  }
}

void CheckRtcp(absl::Span<const uint8_t> datagram, uint32_t local_ssrc) {
  std::optional<media::RtcpSummary> summary = media::ParseRtcpCompound(datagram, local_ssrc);
  if (!summary) return;
  Check(datagram.size() >= 8 && (datagram[0] >> 6) == 2 &&
            (datagram[1] == media::kRtcpSenderReport || datagram[1] == media::kRtcpReceiverReport),
        "a valid compound starts with a version 2 SR or RR");
  Check(datagram.size() % 4 == 0, "a valid compound is a whole number of words");
  Check(summary->packets >= 1 && static_cast<size_t>(summary->packets) <= datagram.size() / 4,
        "packet count");
  Check(summary->sender_ssrc == Read32(datagram.data() + 4), "sender SSRC");
  Check(summary->sender_info.has_value() == (datagram[1] == media::kRtcpSenderReport),
        "sender info exactly for an SR");
  Check(!summary->block_about_us || summary->block_about_us->ssrc == local_ssrc,
        "the block about us is about our SSRC");

  // What the call keeps, written back.
  media::RtcpCompoundParams params;
  params.ssrc = summary->sender_ssrc;
  params.sender_info = summary->sender_info;
  params.block = summary->block_about_us;
  params.cname = "fuzz";
  params.bye = summary->bye;
  uint8_t buffer[media::kMaxRtcpCompoundSize];
  size_t size = media::WriteRtcpCompound(params, absl::MakeSpan(buffer));
  Check(size > 0, "the summary fits a compound");
  std::optional<media::RtcpSummary> again =
      media::ParseRtcpCompound(absl::MakeConstSpan(buffer, size), local_ssrc);
  Check(again.has_value(), "a written compound parses");
  Check(again->sender_ssrc == summary->sender_ssrc, "sender SSRC round trip");
  Check(SameSenderInfo(again->sender_info, summary->sender_info), "sender info round trip");
  Check(SameBlock(again->block_about_us, summary->block_about_us), "report block round trip");
  Check(again->bye == summary->bye, "BYE round trip");
}

// Parameters for the writer from the datagram's bytes (zeros past its end).
void CheckRtcpWriter(absl::Span<const uint8_t> datagram) {
  uint8_t bytes[48] = {};
  std::memcpy(bytes, datagram.data(), std::min(sizeof(bytes), datagram.size()));
  const absl::Span<const uint8_t> rest = datagram.size() > sizeof(bytes)
                                             ? datagram.subspan(sizeof(bytes))
                                             : absl::Span<const uint8_t>();
  media::RtcpCompoundParams params;
  params.ssrc = Read32(bytes);
  const uint8_t flags = bytes[4];
  if (flags & 1) {
    media::RtcpSenderInfo info;
    info.ntp_timestamp = static_cast<uint64_t>(Read32(bytes + 8)) << 32 | Read32(bytes + 12);
    info.rtp_timestamp = Read32(bytes + 16);
    info.packet_count = Read32(bytes + 20);
    info.octet_count = Read32(bytes + 24);
    params.sender_info = info;
  }
  if (flags & 2) {
    media::RtcpReportBlock block;
    block.ssrc = Read32(bytes + 28);
    block.fraction_lost = bytes[5];
    block.cumulative_lost = static_cast<int32_t>(Read32(bytes + 32));  // clamped to 24 bits
    block.extended_highest_sequence = Read32(bytes + 36);
    block.jitter = Read32(bytes + 40);
    block.last_sr = Read32(bytes + 44);
    block.delay_since_last_sr = Read32(bytes + 8);
    params.block = block;
  }
  params.bye = (flags & 4) != 0;
  params.cname = absl::string_view(reinterpret_cast<const char*>(rest.data()), rest.size());
  // Sometimes a buffer too small (its size from byte 6), else the largest.
  const size_t capacity = (flags & 8) ? bytes[6] : media::kMaxRtcpCompoundSize;
  std::vector<uint8_t> out(capacity);
  const size_t size = media::WriteRtcpCompound(params, absl::MakeSpan(out));
  const size_t cname = std::min<size_t>(rest.size(), 255);
  const size_t needed = 8 + (params.sender_info ? 20 : 0) + (params.block ? 24 : 0) +
                        (10 + cname + 1 + 3) / 4 * 4 + (params.bye ? 8 : 0);
  Check(needed <= media::kMaxRtcpCompoundSize, "kMaxRtcpCompoundSize is the largest");
  if (needed > capacity) {
    Check(size == 0, "nothing written into a buffer too small");
    return;
  }
  Check(size == needed, "the written size");
  Check(size % 4 == 0, "a written compound is a whole number of words");
  const uint32_t local = params.block ? params.block->ssrc : params.ssrc ^ 1;
  std::optional<media::RtcpSummary> parsed =
      media::ParseRtcpCompound(absl::MakeConstSpan(out.data(), size), local);
  Check(parsed.has_value(), "a written compound parses");
  Check(parsed->packets == 2 + (params.bye ? 1 : 0), "SR/RR, SDES and BYE");
  Check(parsed->sender_ssrc == params.ssrc, "sender SSRC");
  Check(SameSenderInfo(parsed->sender_info, params.sender_info), "sender info");
  Check(parsed->bye == params.bye, "BYE");
  if (params.block) {
    media::RtcpReportBlock expected = *params.block;
    expected.cumulative_lost = std::clamp(expected.cumulative_lost, -0x800000, 0x7fffff);
    Check(SameBlock(parsed->block_about_us, expected), "report block (lost clamped)");
  } else {
    Check(!parsed->block_about_us.has_value(), "no block written, none parsed");
  }
  // The CNAME item: SDES header, SSRC, type 1, length, text.
  const uint8_t* sdes = out.data() + 8 + (params.sender_info ? 20 : 0) + (params.block ? 24 : 0);
  Check(sdes[1] == media::kRtcpSourceDescription && sdes[8] == 1 && sdes[9] == cname &&
            (cname == 0 || std::memcmp(sdes + 10, rest.data(), cname) == 0),
        "the CNAME is written, cut to 255 bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint32_t local_ssrc = Read32(data);
  const absl::Span<const uint8_t> datagram(data + 4, size - 4);
  CheckRtp(datagram);
  CheckRtcp(datagram, local_ssrc);
  CheckRtcpWriter(datagram);
  return 0;
}
