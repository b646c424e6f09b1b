#ifndef TELESTRA_BACKEND_SIP_SDP_OFFER_ANSWER_H_
#define TELESTRA_BACKEND_SIP_SDP_OFFER_ANSWER_H_

// The gateway's own SDP offer/answer (RFC 3264) for its single audio
// stream: the offers and answers it writes, and what it reads from the far
// end's; the SIP stack (sofia_sip_stack.h) carries these bodies itself.
// SDP is parsed with sofia-sip's parser.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace telestra::backend {

// The audio stream of the far end's SDP.
struct RemoteAudio {
  std::string address;  // the media (or session) c= address
  int port = 0;         // 0: the stream is rejected
  // The G.711 payload types it lists (0 = PCMU, 8 = PCMA), in its order.
  std::vector<int> payload_types;
  int telephone_event = -1;          // its telephone-event payload type; -1: none
  std::string telephone_event_fmtp;  // e.g. "0-15"; "" when it gave none
  // Directions from the far end's side: it sends (not a=recvonly or
  // a=inactive), it receives (not a=sendonly, a=inactive or c= 0.0.0.0).
  bool sends = true;
  bool receives = true;
};

// The far end's SDP as an offer or an answer needs it.
struct RemoteSdp {
  // Its first audio stream; audio_index < 0 when it has none.
  RemoteAudio audio;
  int audio_index = -1;
  // One m= line per stream, in order, as our answer rejects it (port 0);
  // the entry at audio_index is empty.
  std::vector<std::string> rejected_lines;
};

// A completed offer/answer, from our side.
struct AudioSession {
  std::string address;
  int port = 0;
  int payload_type = 0;
  int telephone_event = -1;
  bool send = true;  // we send audio
  bool recv = true;  // we receive audio
};

// Parses the far end's SDP. InvalidArgument (naming the problem) when the
// body is not SDP.
absl::StatusOr<RemoteSdp> ParseRemoteSdp(absl::string_view body);

// Writes our SDPs. The session part (everything after the o= line) is what
// a call compares to know whether its o= version must grow (RFC 3264 8).
class SdpWriter {
 public:
  // `address`: our media address (IPv4 or IPv6 literal); `codecs`: "PCMU"
  // and/or "PCMA" in the plan's order of preference.
  SdpWriter(std::string address, const std::vector<std::string>& codecs);

  // Our offer for RTP `port`: every codec of the plan and telephone-event
  // 101; a=sendonly when we hold the call (else no direction: sendrecv).
  std::string OfferBody(int port, bool hold) const;

  // OK when we can answer `offer`; else FailedPrecondition naming why (no
  // audio stream, no codec of ours).
  absl::Status CheckOffer(const RemoteSdp& offer) const;

  // Our answer to `offer` for RTP `port`, and the session it makes.
  // FailedPrecondition (a 488) when the offer has no audio stream or no
  // codec of ours (see CheckOffer). The answer keeps the offer's order of codecs and its
  // telephone-event payload type; its direction mirrors the offer's, with
  // no receiving while we hold (RFC 3264 6.1).
  absl::StatusOr<std::string> AnswerBody(const RemoteSdp& offer, int port, bool hold,
                                         AudioSession* session) const;

  // The session made by the far end's `answer` to our offer (sent with
  // `hold`). FailedPrecondition when it accepts no codec of our offer or
  // rejects the audio stream.
  absl::StatusOr<AudioSession> FromAnswer(const RemoteSdp& answer, bool hold) const;

  // A whole SDP: the v= and o= lines, then `body`.
  std::string Compose(uint64_t session_id, uint64_t version, absl::string_view body) const;

 private:
  bool Ours(int payload_type) const;
  std::string CodecNames() const;
  std::string AudioLines(int port, const std::vector<int>& payload_types, int telephone_event,
                         absl::string_view telephone_event_fmtp, bool send, bool recv) const;

  const std::string address_;
  const char* const family_;  // "IP4" or "IP6"
  std::vector<int> payload_types_;
};

}  // namespace telestra::backend

#endif  // TELESTRA_BACKEND_SIP_SDP_OFFER_ANSWER_H_
