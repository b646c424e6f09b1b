#include "backend/media/media_call.h"

#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "backend/media/audio_format.h"
#include "backend/media/g711.h"
#include "backend/media/rtp_packet.h"
#include "spdlog/spdlog.h"

namespace telestra::backend {
namespace {

constexpr int64_t kNanosPerSample = 1000000000 / kSampleRate;  // 125 us
// A packet from another SSRC takes over only once the current source has
// been silent this long (a new stream after a re-INVITE, not a stray packet).
constexpr int64_t kSourceSwitchNs = 200 * 1000000LL;
// Largest payload decoded: a UDP datagram's worth of G.711.
constexpr size_t kMaxPayload = 1500;

int64_t RealtimeNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool Includes(MediaDirection direction, bool send) {
  switch (direction) {
    case MediaDirection::kSendRecv:
      return true;
    case MediaDirection::kSendOnly:
      return send;
    case MediaDirection::kRecvOnly:
      return !send;
    case MediaDirection::kInactive:
      return false;
  }
  return false;
}

}  // namespace

MediaCall::MediaCall(Init init, const MediaCallSettings& settings)
    : id_(init.id),
      cname_(std::move(init.cname)),
      settings_(settings),
      sockets_(std::move(init.sockets)),
      source_(std::move(init.source)),
      recorder_(std::move(init.recorder)),
      ssrc_(init.ssrc),
      sequence_(init.first_sequence),
      timestamp_(init.first_timestamp),
      jitter_buffer_(settings.jitter_buffer_ms) {}

bool MediaCall::sending() const {
  return started_ && Includes(direction_, /*send=*/true) && rtp_destination() != nullptr &&
         IsG711(payload_type_);
}

const SocketAddress* MediaCall::rtp_destination() const {
  if (latched_rtp_) return &*latched_rtp_;
  return remote_rtp_ ? &*remote_rtp_ : nullptr;
}

const SocketAddress* MediaCall::rtcp_destination() const {
  if (latched_rtcp_) return &*latched_rtcp_;
  return remote_rtcp_ ? &*remote_rtcp_ : nullptr;
}

bool MediaCall::receiving() const { return started_ && Includes(direction_, /*send=*/false); }

void MediaCall::Update(const MediaParams& params, int64_t now_ns, absl::BitGenRef rng) {
  bool was_sending = sending();
  bool was_receiving = receiving();
  std::optional<SocketAddress> previous_remote = remote_rtp_;

  std::optional<SocketAddress> remote =
      ParseSocketAddress(params.remote_address, params.remote_rtp_port);
  if (!remote || remote->is_unspecified() || params.remote_rtp_port <= 0 ||
      params.remote_rtp_port > 65534 || remote->family() != sockets_.family()) {
    if (!params.remote_address.empty() && params.remote_address != "0.0.0.0") {
      spdlog::warn("call {}: cannot send RTP to {} port {}", id_, params.remote_address,
                   params.remote_rtp_port);
    }
    remote_rtp_.reset();
    remote_rtcp_.reset();
  } else {
    remote_rtp_ = *remote;
    remote_rtcp_ = remote->WithPort(params.remote_rtp_port + 1);
  }
  if (previous_remote != remote_rtp_) {
    // A new far end (or the first): latching starts over.
    latched_rtp_.reset();
    latched_rtcp_.reset();
  }
  if (!IsG711(params.payload_type)) {
    spdlog::warn("call {}: payload type {} is not PCMU/PCMA; not sending", id_,
                 params.payload_type);
  }
  direction_ = params.direction;
  if (held_ && !params.held) last_rtp_ns_ = now_ns;  // resumed: the timeout starts again
  held_ = params.held;
  payload_type_ = params.payload_type;
  telephone_event_payload_type_ = params.telephone_event_payload_type;
  if (!started_) {
    started_ = true;
    ScheduleRtcp(now_ns, rng);
  }
  if (receiving() && !was_receiving) last_rtp_ns_ = now_ns;  // the timeout starts now
  if (!receiving() && was_receiving) jitter_buffer_.Reset();
  if (sending() && !was_sending) marker_pending_ = true;
}

bool MediaCall::OnTick(int64_t now_ns, absl::BitGenRef rng) {
  int16_t received[kFrameSamples];
  int16_t sent[kFrameSamples];
  if (!started_) {
    // No media yet (dialing, ringing without early media): the taps keep
    // their clock with silence.
    if (!taps_.empty()) {
      std::memset(received, 0, sizeof(received));
      ExchangeWithTaps(received, sent);
    }
    return false;
  }
  bool receive = receiving();
  if (receive) {
    jitter_buffer_.Get(received);
  } else {
    std::memset(received, 0, sizeof(received));
  }
  bool spoken = false;
  if (!taps_.empty()) {
    // A held call's listeners hear silence, whatever arrives.
    static const int16_t kSilence[kFrameSamples] = {};
    spoken = ExchangeWithTaps(held_ ? kSilence : received, sent);
  }
  if (sending()) {
    if (!spoken) source_.Next(sent);
    std::optional<uint64_t> done;
    std::optional<DtmfSender::Packet> event = dtmf_sender_.Tick(timestamp_, &done);
    if (event) {
      SendTelephoneEvent(*event);
      std::memset(sent, 0, sizeof(sent));  // the audio is muted while a digit plays
      marker_pending_ = true;              // and starts a new talkspurt after it
    } else {
      SendRtp(sent);
    }
    if (done) dtmf_notices_.push_back(DtmfNotice{id_, /*sent=*/true, *done, 0, 0});
  } else {
    std::memset(sent, 0, sizeof(sent));
  }
  dtmf_receiver_.OnTick(now_ns, &digits_received_);
  NoteReceivedDigits();
  timestamp_ += kFrameSamples;  // the media clock runs while on hold too
  if (recorder_ != nullptr) recorder_->Append(received, sent);

  if (now_ns >= next_rtcp_ns_) {
    SendRtcp(now_ns, /*bye=*/false);
    ScheduleRtcp(now_ns, rng);
  }
  if (receive && !held_ && settings_.rtp_timeout_ns > 0 && !timeout_reported_ &&
      now_ns - last_rtp_ns_ >= settings_.rtp_timeout_ns) {
    timeout_reported_ = true;
    return true;
  }
  return false;
}

bool MediaCall::ExchangeWithTaps(const int16_t* heard, int16_t* sent) {
  bool speaking = false;
  int32_t mix[kFrameSamples];
  int16_t frame[kFrameSamples];
  size_t kept = 0;
  for (size_t i = 0; i < taps_.size(); ++i) {
    std::shared_ptr<CallAudioTap>& tap = taps_[i];
    if (tap->stopped()) continue;  // let go (the application has its stop)
    if (tap->listens()) NoteWakeup(tap, tap->OnHeard(heard));
    if (tap->speaks()) {
      if (!speaking) {
        speaking = true;
        std::memset(mix, 0, sizeof(mix));
      }
      bool wake = false;
      if (tap->TakeSpoken(frame, &wake)) {
        for (int s = 0; s < kFrameSamples; ++s) mix[s] += frame[s];
      }
      NoteWakeup(tap, wake);
    }
    if (kept != i) taps_[kept] = std::move(tap);
    ++kept;
  }
  taps_.resize(kept);
  if (!speaking) return false;
  for (int s = 0; s < kFrameSamples; ++s) {
    sent[s] = static_cast<int16_t>(std::clamp<int32_t>(mix[s], INT16_MIN, INT16_MAX));
  }
  return true;
}

void MediaCall::NoteWakeup(const std::shared_ptr<CallAudioTap>& tap, bool due) {
  if (due) wakeups_.push_back(tap);
}

void MediaCall::AttachTap(std::shared_ptr<CallAudioTap> tap) {
  std::string codec = payload_type_ == 0 ? "PCMU" : payload_type_ == 8 ? "PCMA" : "";
  NoteWakeup(tap, tap->OnAttached(codec));
  taps_.push_back(std::move(tap));
}

void MediaCall::StopTaps(const std::string& reason) {
  for (std::shared_ptr<CallAudioTap>& tap : taps_) NoteWakeup(tap, tap->OnStopped(reason));
  taps_.clear();
}

void MediaCall::TakeWakeups(std::vector<std::shared_ptr<CallAudioTap>>* out) {
  if (wakeups_.empty()) return;
  for (std::shared_ptr<CallAudioTap>& tap : wakeups_) out->push_back(std::move(tap));
  wakeups_.clear();
}

void MediaCall::SkipFrames(int frames) {
  if (started_) timestamp_ += static_cast<uint32_t>(frames) * kFrameSamples;
}

void MediaCall::SendRtp(int16_t* frame) {
  uint8_t packet[kRtpHeaderSize + kFrameSamples];
  RtpHeader header;
  header.marker = marker_pending_;
  header.payload_type = static_cast<uint8_t>(payload_type_);
  header.sequence = sequence_++;
  header.timestamp = timestamp_;
  header.ssrc = ssrc_;
  marker_pending_ = false;
  WriteRtpHeader(header, packet);
  uint8_t* payload = packet + kRtpHeaderSize;
  G711Encode(payload_type_, absl::MakeConstSpan(frame, kFrameSamples), payload);
  TransmitRtp(packet, sizeof(packet), kFrameSamples);
  // What went on the wire, for the recording's right channel.
  if (recorder_ != nullptr) {
    G711Decode(payload_type_, absl::MakeConstSpan(payload, kFrameSamples), frame);
  }
}

void MediaCall::SendTelephoneEvent(const DtmfSender::Packet& event) {
  uint8_t packet[kRtpHeaderSize + kTelephoneEventSize];
  RtpHeader header;
  header.marker = event.marker;
  header.payload_type = static_cast<uint8_t>(telephone_event_payload_type_);
  header.sequence = sequence_++;
  header.timestamp = event.timestamp;
  header.ssrc = ssrc_;
  WriteRtpHeader(header, packet);
  WriteTelephoneEvent(event.payload, packet + kRtpHeaderSize);
  TransmitRtp(packet, sizeof(packet), kTelephoneEventSize);
  ++telephone_events_sent_;
}

void MediaCall::TransmitRtp(const uint8_t* packet, size_t size, size_t payload_size) {
  const SocketAddress* destination = rtp_destination();
  ssize_t sent =
      sendto(sockets_.rtp_fd(), packet, size, MSG_DONTWAIT, destination->get(), destination->length);
  if (sent == static_cast<ssize_t>(size)) {
    ++packets_sent_;
    octets_sent_ += payload_size;
  } else {
    ++send_errors_;  // counted; the sequence number still advances (a loss)
  }
}

absl::Status MediaCall::QueueDtmf(const std::string& digits, int duration_ms, uint64_t request) {
  if (telephone_event_payload_type_ < 0) {
    return absl::FailedPreconditionError("the far end did not negotiate telephone-event");
  }
  if (!sending()) return absl::FailedPreconditionError("the call sends no audio");
  if (dtmf_sender_.pending() + digits.size() > MediaEngine::kMaxQueuedDtmf) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "Too many DTMF digits queued on call ", id_, " (at most ", MediaEngine::kMaxQueuedDtmf,
        ")"));
  }
  dtmf_sender_.Queue(digits, duration_ms, request);
  return absl::OkStatus();
}

void MediaCall::NoteReceivedDigits() {
  for (const DtmfReceiver::Digit& digit : digits_received_) {
    dtmf_notices_.push_back(DtmfNotice{id_, /*sent=*/false, 0, digit.digit, digit.duration_ms});
  }
  digits_received_.clear();
}

void MediaCall::TakeDtmf(std::vector<DtmfNotice>* out) {
  if (dtmf_notices_.empty()) return;
  out->insert(out->end(), dtmf_notices_.begin(), dtmf_notices_.end());
  dtmf_notices_.clear();
}

void MediaCall::ScheduleRtcp(int64_t now_ns, absl::BitGenRef rng) {
  // RFC 3550 6.3.5: randomised to 0.5..1.5 of the interval.
  double factor = absl::Uniform(rng, 0.5, 1.5);
  next_rtcp_ns_ =
      now_ns + static_cast<int64_t>(absl::ToDoubleNanoseconds(settings_.rtcp_interval) * factor);
}

void MediaCall::SendRtcp(int64_t now_ns, bool bye) {
  const SocketAddress* destination = rtcp_destination();
  if (destination == nullptr) return;
  RtcpCompoundParams params;
  params.ssrc = ssrc_;
  params.cname = cname_;
  params.bye = bye;
  // An SR if we sent RTP during the current or the previous interval.
  if (packets_sent_ != packets_sent_at_report_[0]) {
    RtcpSenderInfo info;
    info.ntp_timestamp = NtpTimestampFromUnixNanos(RealtimeNanos());
    info.rtp_timestamp = timestamp_;
    info.packet_count = static_cast<uint32_t>(packets_sent_);
    info.octet_count = static_cast<uint32_t>(octets_sent_);
    params.sender_info = info;
  }
  packets_sent_at_report_[0] = packets_sent_at_report_[1];
  packets_sent_at_report_[1] = packets_sent_;
  if (receive_stats_.started()) {
    uint32_t dlsr = 0;
    if (last_sr_arrival_ns_ != 0) {
      dlsr = static_cast<uint32_t>((now_ns - last_sr_arrival_ns_) * 65536 / 1000000000);
    }
    params.block = receive_stats_.MakeReportBlock(last_sr_ntp_middle_, dlsr);
  }
  uint8_t buffer[kMaxRtcpCompoundSize];
  size_t size = WriteRtcpCompound(params, absl::MakeSpan(buffer));
  if (size == 0) return;
  ssize_t sent = sendto(sockets_.rtcp_fd(), buffer, size, MSG_DONTWAIT, destination->get(),
                        destination->length);
  if (sent == static_cast<ssize_t>(size)) {
    ++rtcp_sent_;
  } else {
    ++send_errors_;
  }
}

MediaCall::Source MediaCall::Classify(const SocketAddress& source, bool rtcp) const {
  if (!started_) return Source::kForeign;  // no answer yet: no far end known
  if (settings_.latch) {
    const std::optional<SocketAddress>& latched = rtcp ? latched_rtcp_ : latched_rtp_;
    if (!latched) return Source::kToLatch;
    return source == *latched ? Source::kFarEnd : Source::kForeign;
  }
  return remote_rtp_ && source.SameHost(*remote_rtp_) ? Source::kFarEnd : Source::kForeign;
}

void MediaCall::CountForeign(const SocketAddress& source, bool rtcp) {
  if (rtp_foreign_ == 0 && rtcp_foreign_ == 0) {
    std::string far_end = "no answer yet";
    if (started_ && settings_.latch) {
      const SocketAddress* latched = rtcp ? rtcp_destination() : rtp_destination();
      far_end = absl::StrCat("latched to ", latched->ToString());
    } else if (started_) {
      far_end = remote_rtp_ ? absl::StrCat("SDP address ", remote_rtp_->ToString())
                            : "no usable SDP address";
    }
    spdlog::warn(
        "call {}: discarding {} from {}, not the far end ({}); more are counted, not "
        "logged",
        id_, rtcp ? "RTCP" : "RTP", source.ToString(), far_end);
  }
  ++(rtcp ? rtcp_foreign_ : rtp_foreign_);
}

bool MediaCall::OnRtp(absl::Span<const uint8_t> datagram, const SocketAddress& source,
                      int64_t now_ns) {
  Source from = Classify(source, /*rtcp=*/false);
  if (from == Source::kForeign) {
    CountForeign(source, /*rtcp=*/false);
    return false;
  }
  std::optional<RtpPacketView> packet = ParseRtpPacket(datagram);
  if (!packet) {
    ++packets_ignored_;
    return true;
  }
  if (from == Source::kToLatch) {
    latched_rtp_ = source;
    spdlog::info("call {}: RTP latched to {}{}", id_, source.ToString(),
                 remote_rtp_ ? absl::StrCat(" (SDP address ", remote_rtp_->ToString(), ")") : "");
  }
  if (!receiving()) {
    ++packets_ignored_;
    return true;
  }
  const RtpHeader& header = packet->header;
  if (!receive_stats_.started() || (header.ssrc != receive_stats_.ssrc() &&
                                    now_ns - last_source_packet_ns_ >= kSourceSwitchNs)) {
    receive_stats_.Reset(header.ssrc, header.sequence);
    jitter_buffer_.Reset();
  } else if (header.ssrc != receive_stats_.ssrc()) {
    ++packets_ignored_;
    return true;
  }
  if (!receive_stats_.UpdateSequence(header.sequence)) {
    ++packets_ignored_;  // a sequence jump not yet confirmed
    return true;
  }
  ++packets_received_;
  last_rtp_ns_ = now_ns;
  last_source_packet_ns_ = now_ns;
  last_payload_type_ = header.payload_type;
  if (header.payload_type == telephone_event_payload_type_) {
    ++telephone_events_received_;  // DTMF is reported, not played
    if (std::optional<TelephoneEvent> event = ParseTelephoneEvent(packet->payload)) {
      dtmf_receiver_.OnPacket(*event, header.timestamp, now_ns, &digits_received_);
      NoteReceivedDigits();
    } else {
      ++packets_ignored_;
    }
    return true;
  }
  if (!IsG711(header.payload_type) || packet->payload.size() > kMaxPayload) {
    ++packets_ignored_;
    return true;
  }
  receive_stats_.UpdateJitter(header.timestamp, static_cast<uint32_t>(now_ns / kNanosPerSample));
  int16_t samples[kMaxPayload];
  G711Decode(header.payload_type, packet->payload, samples);
  jitter_buffer_.Put(header.timestamp, absl::MakeConstSpan(samples, packet->payload.size()));
  return true;
}

bool MediaCall::OnRtcp(absl::Span<const uint8_t> datagram, const SocketAddress& source,
                       int64_t now_ns) {
  Source from = Classify(source, /*rtcp=*/true);
  if (from == Source::kForeign) {
    CountForeign(source, /*rtcp=*/true);
    return false;
  }
  std::optional<RtcpSummary> summary = ParseRtcpCompound(datagram, ssrc_);
  if (!summary) {
    ++rtcp_malformed_;
    return true;
  }
  if (from == Source::kToLatch) {
    latched_rtcp_ = source;
    spdlog::info("call {}: RTCP latched to {}", id_, source.ToString());
  }
  ++rtcp_received_;
  if (summary->sender_info) {
    last_sr_ntp_middle_ = NtpMiddle32(summary->sender_info->ntp_timestamp);
    last_sr_arrival_ns_ = now_ns;
  }
  if (summary->block_about_us) {
    remote_report_ = summary->block_about_us;
    // One clock read per report (every few seconds): the round trip.
    if (std::optional<double> rtt = RtcpRoundTripMs(
            NtpMiddle32(NtpTimestampFromUnixNanos(RealtimeNanos())), remote_report_->last_sr,
            remote_report_->delay_since_last_sr)) {
      rtt_ms_ = rtt;
    }
  }
  if (summary->bye) ++rtcp_bye_received_;
  return true;
}

void MediaCall::Close(int64_t now_ns) {
  if (started_) SendRtcp(now_ns, /*bye=*/true);
  if (recorder_ != nullptr) recorder_->Close();
}

MediaStats MediaCall::stats() const {
  MediaStats stats;
  stats.local_ssrc = ssrc_;
  stats.remote_ssrc = receive_stats_.ssrc();
  stats.packets_sent = packets_sent_;
  stats.packets_received = packets_received_;
  stats.packets_lost =
      static_cast<uint64_t>(std::max<int64_t>(0, receive_stats_.cumulative_lost()));
  stats.rtcp_sent = rtcp_sent_;
  stats.rtcp_received = rtcp_received_;
  stats.jitter_ms = static_cast<double>(receive_stats_.jitter()) * 1000.0 / kSampleRate;
  stats.payload_type = last_payload_type_;
  stats.negotiated_payload_type = started_ ? payload_type_ : -1;
  stats.packets_late = jitter_buffer_.counters().packets_late;
  stats.jitter_buffer_ms = settings_.jitter_buffer_ms;
  stats.rtt_ms = rtt_ms_;
  stats.packets_foreign = rtp_foreign_;
  stats.rtcp_foreign = rtcp_foreign_;
  return stats;
}

MediaCallDiagnostics MediaCall::diagnostics() const {
  MediaCallDiagnostics d;
  d.rtp_port = sockets_.rtp_port();
  d.telephone_events_received = telephone_events_received_;
  d.telephone_events_sent = telephone_events_sent_;
  d.telephone_events_ignored = dtmf_receiver_.ignored();
  d.packets_ignored = packets_ignored_;
  d.send_errors = send_errors_;
  d.rtcp_malformed = rtcp_malformed_;
  d.rtcp_bye_received = rtcp_bye_received_;
  d.remote_report = remote_report_;
  d.jitter_buffer = jitter_buffer_.counters();
  if (recorder_ != nullptr) {
    d.frames_recorded = recorder_->frames_appended();
    d.recording_failed = recorder_->failed();
  }
  return d;
}

}  // namespace telestra::backend
