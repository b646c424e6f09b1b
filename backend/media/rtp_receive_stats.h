#pragma once

#include <cstdint>

#include "backend/media/rtcp.h"

namespace telestra::backend {

// Reception statistics of one RTP source, exactly as RFC 3550 appendix A
// computes them: extended sequence numbers with wrap and restart detection
// (A.1, without the probation period: a unicast call has one known peer),
// cumulative and interval loss (A.3) and interarrival jitter (A.8).
// Thread: owned by one call; the engine's lock serialises access.
class RtpReceiveStats {
 public:
  // Starts over for a (new) source whose first packet has `sequence`.
  void Reset(uint32_t ssrc, uint16_t sequence);

  bool started() const { return started_; }
  uint32_t ssrc() const { return ssrc_; }

  // Accounts a packet's sequence number. False when the packet is not
  // (yet) taken as part of the stream: a large jump waits for a second
  // sequential packet before the stream is re-synchronised.
  bool UpdateSequence(uint16_t sequence);

  // Updates the interarrival jitter with an audio packet's RTP timestamp and
  // its arrival time in the same units (8 kHz samples).
  void UpdateJitter(uint32_t rtp_timestamp, uint32_t arrival);

  uint64_t received() const { return received_; }
  uint64_t expected() const;
  // expected - received; negative when duplicates arrived.
  int64_t cumulative_lost() const;
  uint32_t extended_highest_sequence() const { return cycles_ + max_sequence_; }
  // Interarrival jitter, timestamp units.
  uint32_t jitter() const { return jitter_q4_ >> 4; }

  // The report block for this source; also starts the next loss interval
  // (fraction lost is since the previous call). `last_sr` and `dlsr` come
  // from the caller, who knows when the source's last SR arrived.
  RtcpReportBlock MakeReportBlock(uint32_t last_sr, uint32_t delay_since_last_sr);

 private:
  bool started_ = false;
  uint32_t ssrc_ = 0;
  uint16_t max_sequence_ = 0;
  uint32_t cycles_ = 0;  // shifted count of sequence number cycles
  uint32_t base_sequence_ = 0;
  uint32_t bad_sequence_ = 0;
  uint64_t received_ = 0;
  uint64_t expected_prior_ = 0;
  uint64_t received_prior_ = 0;
  bool have_transit_ = false;
  int32_t transit_ = 0;
  uint32_t jitter_q4_ = 0;  // jitter * 16
};

}  // namespace telestra::backend
