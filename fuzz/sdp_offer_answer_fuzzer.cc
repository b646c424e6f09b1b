// libFuzzer target: the gateway's SDP offer/answer
// (backend/sip/sdp_offer_answer.h): the far end's SDP, read with sofia-sip's
// parser, and the answer the gateway writes from it.
//
// Input: byte 0 picks the gateway's side (bit 0: the call is held; bits
// 1-2: the plan's codecs PCMU / PCMA / PCMU, PCMA / PCMA, PCMU; bit 3: an
// IPv6 media address); the rest is the far end's SDP body. Properties
// checked:
//  - a body that is not SDP is InvalidArgument "bad SDP: ...";
//  - a parsed SDP has one entry per m= line, the audio stream's empty and
//    every other one a single "m=... 0 ..." line (it is copied into the
//    answer, so it must not carry a line break or a NUL); the audio
//    stream has a port, only PCMU/PCMA payload types, each once, and a
//    telephone-event type of 0..127 with a one-line fmtp;
//  - CheckOffer, AnswerBody and FromAnswer agree on whether there is a
//    usable audio stream and a common codec;
//  - the answer, composed into a whole SDP, parses again: as many streams,
//    audio at the same index, on our address and port, exactly the common
//    codecs in the offer's order, the offer's telephone-event, and the
//    direction the session says (send = the offer receives, receive = the
//    offer sends and we do not hold);
//  - our own offer (once per side) parses back to what it says.
// Built by scripts/fuzz.sh and replayed over fuzz/corpus/sdp_offer_answer by
// //tests/hardening:fuzz_corpus_sdp_offer_answer_test.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "backend/sip/sdp_offer_answer.h"

namespace {

namespace be = telestra::backend;

constexpr int kOurPort = 40000;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "sdp_offer_answer_fuzzer: property violated: %s\n", what);
    std::abort();
  }
}

bool OneLine(absl::string_view text) {
  return text.find_first_of(absl::string_view("\r\n\0", 3)) == absl::string_view::npos;
}

std::vector<std::string> Codecs(int choice) {
  switch (choice) {
    case 0:
      return {"PCMU"};
    case 1:
      return {"PCMA"};
    case 2:
      return {"PCMU", "PCMA"};
    default:
      return {"PCMA", "PCMU"};
  }
}

bool Ours(const std::vector<std::string>& codecs, int payload_type) {
  for (const std::string& codec : codecs) {
    if ((codec == "PCMU" && payload_type == 0) || (codec == "PCMA" && payload_type == 8)) {
      return true;
    }
  }
  return false;
}

void CheckParsed(const be::RemoteSdp& sdp) {
  Check(sdp.audio_index >= -1 && sdp.audio_index < static_cast<int>(sdp.rejected_lines.size()),
        "the audio index is one of the streams");
  for (int i = 0; i < static_cast<int>(sdp.rejected_lines.size()); ++i) {
    const std::string& line = sdp.rejected_lines[i];
    if (i == sdp.audio_index) {
      Check(line.empty(), "the audio stream has no rejected line");
      continue;
    }
    Check(absl::StartsWith(line, "m=") && absl::EndsWith(line, "\r\n"),
          "a rejected line is an m= line");
    const absl::string_view body(line.data(), line.size() - 2);
    Check(OneLine(body), "a rejected line is one line without NUL");
    Check(absl::StrContains(body, " 0 "), "a rejected line has port 0");
  }
  if (sdp.audio_index < 0) return;
  const be::RemoteAudio& audio = sdp.audio;
  Check(audio.port > 0 && audio.port <= 65535, "the audio stream has a port");
  for (size_t i = 0; i < audio.payload_types.size(); ++i) {
    const int pt = audio.payload_types[i];
    Check(pt == 0 || pt == 8, "only PCMU and PCMA");
    for (size_t j = 0; j < i; ++j) Check(audio.payload_types[j] != pt, "each payload type once");
  }
  Check(audio.telephone_event >= -1 && audio.telephone_event <= 127, "telephone-event type");
  Check(OneLine(audio.telephone_event_fmtp), "the fmtp is one line");
  Check(OneLine(audio.address), "the address is one line");
}

// Our own offer parses back to what it says (deterministic: once per side).
void CheckOurOffer(const be::SdpWriter& writer, const std::vector<std::string>& codecs,
                   const std::string& address, bool hold) {
  const std::string sdp = writer.Compose(1, 1, writer.OfferBody(kOurPort, hold));
  absl::StatusOr<be::RemoteSdp> parsed = be::ParseRemoteSdp(sdp);
  Check(parsed.ok() && parsed->audio_index == 0, "our offer parses");
  Check(parsed->audio.port == kOurPort && parsed->audio.address == address,
        "our offer's address and port");
  Check(parsed->audio.payload_types.size() == codecs.size(), "our offer's codecs");
  for (int pt : parsed->audio.payload_types) Check(Ours(codecs, pt), "our offer's codecs");
  Check(parsed->audio.telephone_event == 101, "our offer's telephone-event");
  Check(parsed->audio.sends && parsed->audio.receives == !hold, "our offer's direction");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool hold = (data[0] & 1) != 0;
  const int codec_choice = (data[0] >> 1) & 3;
  const bool ipv6 = (data[0] & 8) != 0;
  const std::vector<std::string> codecs = Codecs(codec_choice);
  const std::string address = ipv6 ? "::1" : "127.0.0.1";
  const be::SdpWriter writer(address, codecs);
  static bool offers_checked[2][4][2] = {};
  if (!offers_checked[hold][codec_choice][ipv6]) {
    CheckOurOffer(writer, codecs, address, hold);
    offers_checked[hold][codec_choice][ipv6] = true;
  }

  const absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  absl::StatusOr<be::RemoteSdp> offer = be::ParseRemoteSdp(body);
  if (!offer.ok()) {
    Check(offer.status().code() == absl::StatusCode::kInvalidArgument &&
              absl::StartsWith(offer.status().message(), "bad SDP: "),
          "a bad SDP is InvalidArgument \"bad SDP: ...\"");
    return 0;
  }
  CheckParsed(*offer);

  std::vector<int> common;
  if (offer->audio_index >= 0) {
    for (int pt : offer->audio.payload_types) {
      if (Ours(codecs, pt)) common.push_back(pt);
    }
  }
  const bool usable = !common.empty();
  Check(writer.CheckOffer(*offer).ok() == usable, "CheckOffer: an audio stream with our codec");
  absl::StatusOr<be::AudioSession> from_answer = writer.FromAnswer(*offer, hold);
  Check(from_answer.ok() == usable, "FromAnswer: an audio stream with our codec");
  if (from_answer.ok()) {
    Check(from_answer->payload_type == common.front() && from_answer->port == offer->audio.port &&
              from_answer->address == offer->audio.address,
          "FromAnswer: the first common codec, the far end's address and port");
    Check(from_answer->send == offer->audio.receives &&
              from_answer->recv == (offer->audio.sends && !hold),
          "FromAnswer: the direction");
  }

  be::AudioSession session;
  absl::StatusOr<std::string> answer = writer.AnswerBody(*offer, kOurPort, hold, &session);
  Check(answer.ok() == usable, "AnswerBody: an audio stream with our codec");
  if (!answer.ok()) {
    Check(answer.status().code() == absl::StatusCode::kFailedPrecondition,
          "AnswerBody refuses with FailedPrecondition");
    return 0;
  }
  Check(session.payload_type == common.front(), "the session's codec: the first common one");
  Check(session.send == offer->audio.receives && session.recv == (offer->audio.sends && !hold),
        "the session's direction");

  const std::string sdp = writer.Compose(7, 2, *answer);
  absl::StatusOr<be::RemoteSdp> parsed = be::ParseRemoteSdp(sdp);
  Check(parsed.ok(), "our answer is SDP");
  Check(parsed->rejected_lines.size() == offer->rejected_lines.size(),
        "our answer has as many streams as the offer");
  Check(parsed->audio_index == offer->audio_index, "our answer's audio stream is the offer's");
  Check(parsed->audio.address == address && parsed->audio.port == kOurPort,
        "our answer's address and port");
  Check(parsed->audio.payload_types == common, "our answer: the common codecs in offer order");
  Check(parsed->audio.telephone_event == offer->audio.telephone_event,
        "our answer keeps the offer's telephone-event");
  Check(parsed->audio.telephone_event < 0 ||
            parsed->audio.telephone_event_fmtp == offer->audio.telephone_event_fmtp,
        "our answer keeps the offer's telephone-event fmtp");
  Check(parsed->audio.sends == session.send && parsed->audio.receives == session.recv,
        "our answer's direction is the session's");
  return 0;
}
