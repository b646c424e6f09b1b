#include "backend/media/rtp_receive_stats.h"

#include <algorithm>

namespace telestra::backend {
namespace {

constexpr uint32_t kSequenceMod = 1u << 16;
constexpr uint16_t kMaxDropout = 3000;
constexpr uint16_t kMaxMisorder = 100;

}  // namespace

void RtpReceiveStats::Reset(uint32_t ssrc, uint16_t sequence) {
  *this = RtpReceiveStats();
  started_ = true;
  ssrc_ = ssrc;
  base_sequence_ = sequence;
  max_sequence_ = sequence;
  bad_sequence_ = kSequenceMod + 1;  // so that seq == bad_seq is false
}

bool RtpReceiveStats::UpdateSequence(uint16_t sequence) {
  uint16_t delta = static_cast<uint16_t>(sequence - max_sequence_);
  if (delta < kMaxDropout) {
    // In order, with a permissible gap.
    if (sequence < max_sequence_) cycles_ += kSequenceMod;  // wrapped
    max_sequence_ = sequence;
  } else if (delta <= kSequenceMod - kMaxMisorder) {
    // A very large jump: re-synchronise only if the next packet follows it
    // (the sender restarted without telling us).
    if (sequence == bad_sequence_) {
      uint32_t ssrc = ssrc_;
      Reset(ssrc, sequence);
    } else {
      bad_sequence_ = (sequence + 1u) & (kSequenceMod - 1);
      return false;
    }
  }
  // else: a duplicate or reordered packet; counted as received.
  ++received_;
  return true;
}

void RtpReceiveStats::UpdateJitter(uint32_t rtp_timestamp, uint32_t arrival) {
  int32_t transit = static_cast<int32_t>(arrival - rtp_timestamp);
  if (!have_transit_) {
    have_transit_ = true;
    transit_ = transit;
    return;
  }
  // Modulo 2^32 like the timestamps themselves: the far end chooses them,
  // so the difference of two transit times may not fit an int32_t.
  int32_t d =
      static_cast<int32_t>(static_cast<uint32_t>(transit) - static_cast<uint32_t>(transit_));
  transit_ = transit;
  uint32_t magnitude =
      d < 0 ? static_cast<uint32_t>(-static_cast<int64_t>(d)) : static_cast<uint32_t>(d);
  // J += (|D| - J) / 16, in fixed point with 4 fractional bits (A.8).
  jitter_q4_ += magnitude - ((jitter_q4_ + 8) >> 4);
}

uint64_t RtpReceiveStats::expected() const {
  if (!started_) return 0;
  return static_cast<uint64_t>(extended_highest_sequence()) - base_sequence_ + 1;
}

int64_t RtpReceiveStats::cumulative_lost() const {
  return static_cast<int64_t>(expected()) - static_cast<int64_t>(received_);
}

RtcpReportBlock RtpReceiveStats::MakeReportBlock(uint32_t last_sr, uint32_t delay_since_last_sr) {
  RtcpReportBlock block;
  block.ssrc = ssrc_;
  uint64_t expected_now = expected();
  int64_t expected_interval = static_cast<int64_t>(expected_now - expected_prior_);
  int64_t received_interval = static_cast<int64_t>(received_ - received_prior_);
  expected_prior_ = expected_now;
  received_prior_ = received_;
  int64_t lost_interval = expected_interval - received_interval;
  block.fraction_lost =
      (expected_interval == 0 || lost_interval <= 0)
          ? 0
          : static_cast<uint8_t>(std::min<int64_t>(255, (lost_interval << 8) / expected_interval));
  block.cumulative_lost =
      static_cast<int32_t>(std::clamp<int64_t>(cumulative_lost(), -0x800000, 0x7fffff));
  block.extended_highest_sequence = extended_highest_sequence();
  block.jitter = jitter();
  block.last_sr = last_sr;
  block.delay_since_last_sr = delay_since_last_sr;
  return block;
}

}  // namespace telestra::backend
