#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "backend/media/audio_generator.h"
#include "backend/media/jitter_buffer.h"
#include "backend/media/rtcp.h"
#include "backend/media/rtp_receive_stats.h"
#include "backend/media/rtp_socket_pair.h"
#include "backend/media/socket_address.h"
#include "backend/media/telephone_event.h"
#include "backend/media/wav_recorder.h"
#include "backend/call_audio_tap.h"
#include "backend/media_engine.h"

namespace telestra::backend {

// Engine-wide settings every call uses.
struct MediaCallSettings {
  int64_t rtp_timeout_ns = 0;  // 0: never
  int jitter_buffer_ms = 60;
  absl::Duration rtcp_interval = absl::Seconds(5);
  bool latch = false;  // RtpConfig::latch
};

// What RtpMediaEngine::Diagnostics reports beyond MediaStats.
// A DTMF happening of a call for the engine to report (MediaCall::TakeDtmf).
struct DtmfNotice {
  int64_t call_id = 0;
  bool sent = false;     // true: `request` is out; false: `digit` arrived
  uint64_t request = 0;
  char digit = 0;
  int duration_ms = 0;
};

struct MediaCallDiagnostics {
  int rtp_port = 0;
  uint64_t telephone_events_received = 0;  // RTP packets of the telephone-event type
  uint64_t telephone_events_sent = 0;
  uint64_t telephone_events_ignored = 0;   // not DTMF, repeated ends, late
  uint64_t packets_ignored = 0;            // not receiving, malformed, other payload, other SSRC
  uint64_t send_errors = 0;                // sendto refused (socket buffer full, ...)
  uint64_t rtcp_malformed = 0;
  uint64_t rtcp_bye_received = 0;
  // The far end's last report block about our stream, if any.
  std::optional<RtcpReportBlock> remote_report;
  JitterBuffer::Counters jitter_buffer;
  int64_t frames_recorded = 0;  // sample frames appended to the recording
  bool recording_failed = false;
};

// One call's media: sending (RTP packetisation of the audio source),
// receiving (statistics, jitter buffer), RTCP and recording. It does no
// scheduling of its own: the engine calls OnTick every 20 ms and OnRtp /
// OnRtcp when its sockets are readable.
//
// Sources: until the media starts (the first Update) no datagram is taken.
// After it, RTP and RTCP are taken only from the far end: without latching,
// from the IP address of its SDP (any port); with latching, from the first
// source (address and port) of a well-formed RTP packet, respectively RTCP
// compound, after the answer, and then only from that source, which is also
// where the call's RTP, respectively RTCP, goes from then on. An Update
// with another SDP address or port starts latching over. Datagrams from
// anywhere else are discarded (they reach neither the statistics, the RTP
// timeout, the jitter buffer nor the recording) and counted.
// Thread: the engine's lock is held around every call of every method
// (OnTick/OnRtp/OnRtcp on the media thread, the others on any thread).
class MediaCall {
 public:
  struct Init {
    int64_t id = 0;
    std::string cname;  // RTCP SDES CNAME
    RtpSocketPair sockets;
    AudioGenerator source = AudioGenerator::Silence();
    std::unique_ptr<WavRecorder> recorder;  // null: not recorded
    uint32_t ssrc = 0;
    uint16_t first_sequence = 0;
    uint32_t first_timestamp = 0;
  };
  MediaCall(Init init, const MediaCallSettings& settings);

  // Applies the negotiated media; the first call starts the media clock.
  void Update(const MediaParams& params, int64_t now_ns, absl::BitGenRef rng);

  // One 20 ms tick: plays out (and records) a frame, sends a packet when
  // the direction includes sending, RTCP when due. True the one time the
  // call's RTP timeout expires.
  bool OnTick(int64_t now_ns, absl::BitGenRef rng);

  // Queues RFC 4733 digits (see MediaEngine::SendDtmf for the errors).
  absl::Status QueueDtmf(const std::string& digits, int duration_ms, uint64_t request);

  // Moves the DTMF notices since the last call to `out`.
  void TakeDtmf(std::vector<DtmfNotice>* out);

  // Attaches an application's audio stream (MediaEngine::AttachAudio).
  void AttachTap(std::shared_ptr<CallAudioTap> tap);
  // Stops every attached tap with `reason` (the call is closing).
  void StopTaps(const std::string& reason);
  // Moves the taps whose wakeup is due to `out` (the engine runs them once
  // its lock is released).
  void TakeWakeups(std::vector<std::shared_ptr<CallAudioTap>>* out);

  // Advances the send clock by `frames` without sending anything (the media
  // thread missed ticks), so timestamps keep following real time.
  void SkipFrames(int frames);

  // A datagram from `source`. False when it was discarded for its source
  // (see above); it is counted in the call's stats then.
  bool OnRtp(absl::Span<const uint8_t> datagram, const SocketAddress& source, int64_t now_ns);
  bool OnRtcp(absl::Span<const uint8_t> datagram, const SocketAddress& source, int64_t now_ns);

  // Sends a final RTCP report with BYE and closes the recording.
  void Close(int64_t now_ns);

  MediaStats stats() const;
  MediaCallDiagnostics diagnostics() const;

  int64_t id() const { return id_; }
  int rtp_port() const { return sockets_.rtp_port(); }
  bool recording() const { return recorder_ != nullptr; }
  // The sockets, for the next call on this pair (after Close).
  RtpSocketPair TakeSockets() { return std::move(sockets_); }
  int rtp_fd() const { return sockets_.rtp_fd(); }
  int rtcp_fd() const { return sockets_.rtcp_fd(); }

 private:
  bool sending() const;
  bool receiving() const;
  void SendRtp(int16_t* frame);
  // One tick of the attached taps: the listeners get `heard`; when any tap
  // speaks, `sent` becomes their mix (silence where they ran dry) and true
  // is returned. Stopped taps are let go.
  bool ExchangeWithTaps(const int16_t* heard, int16_t* sent);
  void NoteWakeup(const std::shared_ptr<CallAudioTap>& tap, bool due);
  void SendTelephoneEvent(const DtmfSender::Packet& event);
  // Moves the digits the receiver reported (digits_received_) to the notices.
  void NoteReceivedDigits();
  // Sends one RTP packet to the far end; counts it or the error.
  void TransmitRtp(const uint8_t* packet, size_t size, size_t payload_size);
  void SendRtcp(int64_t now_ns, bool bye);
  void ScheduleRtcp(int64_t now_ns, absl::BitGenRef rng);
  // Where RTP / RTCP go: the latched source, else the SDP's; null: nowhere.
  const SocketAddress* rtp_destination() const;
  const SocketAddress* rtcp_destination() const;
  enum class Source { kFarEnd, kForeign, kToLatch };
  Source Classify(const SocketAddress& source, bool rtcp) const;
  // Counts (and logs the first of) the discarded datagrams of other sources.
  void CountForeign(const SocketAddress& source, bool rtcp);

  const int64_t id_;
  const std::string cname_;
  const MediaCallSettings settings_;
  RtpSocketPair sockets_;
  AudioGenerator source_;
  std::unique_ptr<WavRecorder> recorder_;

  // Negotiated media.
  bool started_ = false;  // Update was called: the media clock runs
  MediaDirection direction_ = MediaDirection::kInactive;
  bool held_ = false;  // no RTP timeout while held
  int payload_type_ = -1;
  int telephone_event_payload_type_ = -1;
  std::optional<SocketAddress> remote_rtp_;  // from the SDP; unset: none usable
  std::optional<SocketAddress> remote_rtcp_;
  // With latching: the far end's sources, once seen.
  std::optional<SocketAddress> latched_rtp_;
  std::optional<SocketAddress> latched_rtcp_;
  uint64_t rtp_foreign_ = 0;   // RTP discarded for its source
  uint64_t rtcp_foreign_ = 0;  // RTCP discarded for its source

  // Sending.
  const uint32_t ssrc_;
  uint16_t sequence_;
  uint32_t timestamp_;          // of the packet of the next tick
  bool marker_pending_ = true;  // first packet of a talkspurt
  uint64_t packets_sent_ = 0;
  uint64_t octets_sent_ = 0;
  uint64_t send_errors_ = 0;
  DtmfSender dtmf_sender_;
  uint64_t telephone_events_sent_ = 0;

  // Receiving.
  RtpReceiveStats receive_stats_;
  JitterBuffer jitter_buffer_;
  uint64_t packets_received_ = 0;
  uint64_t packets_ignored_ = 0;
  uint64_t telephone_events_received_ = 0;
  DtmfReceiver dtmf_receiver_;
  std::vector<DtmfReceiver::Digit> digits_received_;  // scratch of OnRtp/OnTick
  std::vector<DtmfNotice> dtmf_notices_;              // for TakeDtmf
  int last_payload_type_ = -1;
  int64_t last_rtp_ns_ = 0;            // last RTP (or start of receiving), for the timeout
  int64_t last_source_packet_ns_ = 0;  // last packet of the current source
  bool timeout_reported_ = false;

  // Applications' audio streams, and those whose wakeup is due.
  std::vector<std::shared_ptr<CallAudioTap>> taps_;
  std::vector<std::shared_ptr<CallAudioTap>> wakeups_;

  // RTCP.
  int64_t next_rtcp_ns_ = 0;
  uint64_t rtcp_sent_ = 0;
  uint64_t rtcp_received_ = 0;
  uint64_t rtcp_malformed_ = 0;
  uint64_t rtcp_bye_received_ = 0;
  uint64_t packets_sent_at_report_[2] = {0, 0};  // at the last two reports
  uint32_t last_sr_ntp_middle_ = 0;              // of the far end's last SR
  int64_t last_sr_arrival_ns_ = 0;
  std::optional<RtcpReportBlock> remote_report_;
  std::optional<double> rtt_ms_;  // from the last report block that gave one
};

}  // namespace telestra::backend
