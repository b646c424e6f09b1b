#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"

namespace telestra::backend {

// RFC 4733 telephone-events: the 4-byte payload, and the two halves of a
// call's DTMF over RTP. Timestamps and durations are in samples (8 kHz).

inline constexpr size_t kTelephoneEventSize = 4;

struct TelephoneEvent {
  uint8_t event = 0;      // 0..255; DTMF is 0..15
  bool end = false;       // E bit
  uint8_t volume = 10;    // 0..63, -dBm0
  uint16_t duration = 0;  // samples since the event's timestamp
};

// Writes the payload to `out` (kTelephoneEventSize bytes).
void WriteTelephoneEvent(const TelephoneEvent& event, uint8_t* out);

// The event of a payload; nullopt when it is shorter than 4 bytes. (A
// payload of several events, RFC 4733 2.5.1.5, reports its first.)
std::optional<TelephoneEvent> ParseTelephoneEvent(absl::Span<const uint8_t> payload);

// The sending half: digits queued by send-dtmf, played one after another.
// Each digit takes the RTP timestamp of the tick it starts in and sends
// one packet per 20 ms tick (the first with the marker bit, the duration
// growing by 160 samples), then its end packet three times (one per tick,
// same duration, new sequence numbers), then a pause of kPauseTicks in
// which audio flows again. While a digit plays, the call's audio is muted
// (the tick sends the event instead).
// Thread: the caller's (MediaCall: under the engine's lock).
class DtmfSender {
 public:
  static constexpr int kEndRepeats = 3;
  static constexpr int kPauseTicks = 3;  // 60 ms between two digits

  struct Packet {
    TelephoneEvent payload;
    uint32_t timestamp = 0;
    bool marker = false;
  };

  // Appends `digits` (valid DTMF, see backend/dtmf.h), each lasting
  // `duration_ms`; `request` is reported by Tick when its last digit's end
  // went out.
  void Queue(const std::string& digits, int duration_ms, uint64_t request);

  // What the tick at RTP timestamp `timestamp` sends: a packet (the audio is
  // muted then) or nothing (the audio flows). Sets `*done` to the request
  // whose last end packet this was.
  std::optional<Packet> Tick(uint32_t timestamp, std::optional<uint64_t>* done);

  // Digits not yet finished (the one playing included).
  size_t pending() const { return digits_.size(); }
  bool idle() const { return digits_.empty() && pause_ == 0; }

  // Drops everything queued (the requests are not reported).
  void Clear();

 private:
  struct Digit {
    uint8_t event = 0;
    uint16_t duration = 0;  // samples
    bool last_of_request = false;
    uint64_t request = 0;
  };
  std::deque<Digit> digits_;
  bool playing_ = false;   // the front digit has started
  uint32_t start_ = 0;     // its timestamp
  uint32_t elapsed_ = 0;   // samples sent of it
  int ends_sent_ = 0;
  int pause_ = 0;          // ticks of audio before the next digit
};

// The receiving half: telephone-event packets in, each digit out once.
// A digit is reported at its first end packet; one whose end never comes
// is reported when the next event starts or when no packet of it has
// arrived for kLostEndNs. Retransmitted end packets and packets of an
// event already reported are ignored, and so are event codes above 15
// (not DTMF).
// Thread: the caller's (MediaCall: under the engine's lock).
class DtmfReceiver {
 public:
  static constexpr int64_t kLostEndNs = 250 * 1000000LL;

  struct Digit {
    char digit = 0;
    int duration_ms = 0;
    bool end_lost = false;
  };

  // A telephone-event packet with RTP timestamp `timestamp`.
  void OnPacket(const TelephoneEvent& event, uint32_t timestamp, int64_t now_ns,
                std::vector<Digit>* out);

  // Reports a digit whose end packets were lost, once they are overdue.
  void OnTick(int64_t now_ns, std::vector<Digit>* out);

  uint64_t ignored() const { return ignored_; }

 private:
  void Report(bool end_lost, std::vector<Digit>* out);

  bool active_ = false;      // an event is in progress, not yet reported
  bool any_ = false;         // an event was seen (timestamp_ is valid)
  uint32_t timestamp_ = 0;   // of the current (or last) event
  uint8_t event_ = 0;
  uint16_t duration_ = 0;    // the largest seen
  int64_t last_packet_ns_ = 0;
  uint64_t ignored_ = 0;
};

}  // namespace telestra::backend
