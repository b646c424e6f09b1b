#include "backend/media/telephone_event.h"

#include <algorithm>

#include "backend/dtmf.h"
#include "backend/media/audio_format.h"

namespace telestra::backend {

void WriteTelephoneEvent(const TelephoneEvent& event, uint8_t* out) {
  out[0] = event.event;
  out[1] = static_cast<uint8_t>((event.end ? 0x80 : 0) | (event.volume & 0x3f));
  out[2] = static_cast<uint8_t>(event.duration >> 8);
  out[3] = static_cast<uint8_t>(event.duration & 0xff);
}

std::optional<TelephoneEvent> ParseTelephoneEvent(absl::Span<const uint8_t> payload) {
  if (payload.size() < kTelephoneEventSize) return std::nullopt;
  TelephoneEvent event;
  event.event = payload[0];
  event.end = (payload[1] & 0x80) != 0;
  event.volume = payload[1] & 0x3f;
  event.duration = static_cast<uint16_t>((payload[2] << 8) | payload[3]);
  return event;
}

// ---------------------------------------------------------------- sending

void DtmfSender::Queue(const std::string& digits, int duration_ms, uint64_t request) {
  const int samples = std::clamp(duration_ms * kSampleRate / 1000, kFrameSamples, 0xffff);
  for (size_t i = 0; i < digits.size(); ++i) {
    int event = DtmfEventCode(digits[i]);
    if (event < 0) continue;  // checked by the caller; never sent
    Digit digit;
    digit.event = static_cast<uint8_t>(event);
    digit.duration = static_cast<uint16_t>(samples);
    digit.last_of_request = i + 1 == digits.size();
    digit.request = request;
    digits_.push_back(digit);
  }
}

std::optional<DtmfSender::Packet> DtmfSender::Tick(uint32_t timestamp,
                                                   std::optional<uint64_t>* done) {
  done->reset();
  if (pause_ > 0) {
    --pause_;
    return std::nullopt;
  }
  if (digits_.empty()) return std::nullopt;
  const Digit& digit = digits_.front();
  if (!playing_) {
    playing_ = true;
    start_ = timestamp;
    elapsed_ = 0;
    ends_sent_ = 0;
  }
  Packet packet;
  packet.timestamp = start_;
  packet.payload.event = digit.event;
  if (elapsed_ < digit.duration) {
    packet.marker = elapsed_ == 0;
    elapsed_ = std::min<uint32_t>(elapsed_ + kFrameSamples, digit.duration);
    packet.payload.duration = static_cast<uint16_t>(elapsed_);
    if (elapsed_ < digit.duration) return packet;
    // This packet reaches the full duration: it is the first end packet.
  }
  packet.payload.end = true;
  packet.payload.duration = digit.duration;
  if (++ends_sent_ == kEndRepeats) {
    if (digit.last_of_request) *done = digit.request;
    digits_.pop_front();
    playing_ = false;
    pause_ = kPauseTicks;
  }
  return packet;
}

void DtmfSender::Clear() {
  digits_.clear();
  playing_ = false;
  pause_ = 0;
}

// -------------------------------------------------------------- receiving

void DtmfReceiver::OnPacket(const TelephoneEvent& event, uint32_t timestamp, int64_t now_ns,
                            std::vector<Digit>* out) {
  if (DtmfDigitOfEvent(event.event) == '\0') {
    ++ignored_;  // not DTMF (flash, tones of RFC 4734)
    return;
  }
  if (any_ && timestamp == timestamp_) {
    if (!active_) {
      ++ignored_;  // a retransmitted end, or a late packet of a reported digit
      return;
    }
    duration_ = std::max(duration_, event.duration);
    last_packet_ns_ = now_ns;
    if (event.end) Report(/*end_lost=*/false, out);
    return;
  }
  if (any_ && static_cast<int32_t>(timestamp - timestamp_) < 0) {
    ++ignored_;  // a late packet of an earlier event
    return;
  }
  if (active_) Report(/*end_lost=*/true, out);  // a new event before the last one's end
  any_ = true;
  active_ = true;
  timestamp_ = timestamp;
  event_ = event.event;
  duration_ = event.duration;
  last_packet_ns_ = now_ns;
  if (event.end) Report(/*end_lost=*/false, out);
}

void DtmfReceiver::OnTick(int64_t now_ns, std::vector<Digit>* out) {
  if (active_ && now_ns - last_packet_ns_ >= kLostEndNs) Report(/*end_lost=*/true, out);
}

void DtmfReceiver::Report(bool end_lost, std::vector<Digit>* out) {
  active_ = false;
  Digit digit;
  digit.digit = DtmfDigitOfEvent(event_);
  digit.duration_ms = duration_ * 1000 / kSampleRate;
  digit.end_lost = end_lost;
  out->push_back(digit);
}

}  // namespace telestra::backend
