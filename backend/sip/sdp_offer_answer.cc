#include "backend/sip/sdp_offer_answer.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

// sofia-sip: only ever included in backend/sip/.
#include <sofia-sip/sdp.h>
#include <sofia-sip/su_alloc.h>

namespace telestra::backend {
namespace {

bool IsInaddrAny(absl::string_view address) {
  return address == "0.0.0.0" || address == "::" || address == "0:0:0:0:0:0:0:0";
}

// "0" for PCMU, "8" for PCMA when `rm` is that codec; -1 otherwise
// (dynamic payload types of G.711 are not carried by the media engine).
int G711PayloadType(const sdp_rtpmap_t* rm) {
  if (rm->rm_encoding == nullptr || (rm->rm_rate != 0 && rm->rm_rate != 8000)) return -1;
  if (rm->rm_pt == 0 && absl::EqualsIgnoreCase(rm->rm_encoding, "PCMU")) return 0;
  if (rm->rm_pt == 8 && absl::EqualsIgnoreCase(rm->rm_encoding, "PCMA")) return 8;
  return -1;
}

// The m= line that rejects stream `m` in an answer.
std::string RejectedLine(const sdp_media_t* m) {
  std::string line = absl::StrCat("m=", m->m_type_name != nullptr ? m->m_type_name : "audio", " 0 ",
                                  m->m_proto_name != nullptr ? m->m_proto_name : "RTP/AVP");
  bool any = false;
  for (const sdp_rtpmap_t* rm = m->m_rtpmaps; rm != nullptr; rm = rm->rm_next) {
    absl::StrAppend(&line, " ", rm->rm_pt);
    any = true;
  }
  for (const sdp_list_t* f = m->m_format; f != nullptr && !any; f = f->l_next) {
    absl::StrAppend(&line, " ", f->l_text);
  }
  if (!any && m->m_format == nullptr) absl::StrAppend(&line, " 0");
  return absl::StrCat(line, "\r\n");
}

// RFC 4566's token characters (sofia's TOKEN set).
bool IsSdpToken(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("-!#$%&'*+.^_`{|}~").find(c) != absl::string_view::npos;
}

// Whether `value` (an m= line after "m=") is
//   media SP port ["/" integer] SP proto *("/" token) 1*(SP fmt)
// with every name and format made of token characters, any run of spaces
// or tabs standing for SP. Debian's sofia-sip 1.12.11 loops forever,
// allocating at every turn, on a format of a non-RTP m= line that starts
// with another character (m=image 10000 udptl <t38>): such a body never
// reaches sdp_parse.
bool IsWellFormedMediaLine(absl::string_view value) {
  size_t i = 0;
  auto run = [&](auto accept) {
    const size_t start = i;
    while (i < value.size() && accept(value[i])) ++i;
    return i > start;
  };
  auto token = [&] { return run(IsSdpToken); };
  auto digits = [&] { return run([](char c) { return c >= '0' && c <= '9'; }); };
  auto space = [&] { return run([](char c) { return c == ' ' || c == '\t'; }); };
  if (!token() || !space() || !digits()) return false;
  if (i < value.size() && value[i] == '/' && (++i, !digits())) return false;
  if (!space() || !token()) return false;
  while (i < value.size() && value[i] == '/') {  // RTP/AVP, UDP/TLS/RTP/SAVP
    ++i;
    if (!token()) return false;
  }
  int formats = 0;
  while (space() && i < value.size()) {
    if (!token()) return false;
    ++formats;
  }
  return i == value.size() && formats > 0;
}

// Every m= line of `body` is well formed, and `body` has no NUL (where
// sofia would stop reading).
absl::Status CheckMediaLines(absl::string_view body) {
  if (body.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("bad SDP: NUL in the body");
  }
  for (absl::string_view line : absl::StrSplit(body, absl::ByAnyChar("\r\n"))) {
    line = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::StartsWith(line, "m=")) continue;
    if (!IsWellFormedMediaLine(line.substr(2))) {
      return absl::InvalidArgumentError("bad SDP: malformed m= line");
    }
  }
  return absl::OkStatus();
}

const char* DirectionLine(bool send, bool recv) {
  if (send && recv) return "";  // sendrecv is the default
  if (send) return "a=sendonly\r\n";
  if (recv) return "a=recvonly\r\n";
  return "a=inactive\r\n";
}

}  // namespace

absl::StatusOr<RemoteSdp> ParseRemoteSdp(absl::string_view body) {
  if (absl::Status lines = CheckMediaLines(body); !lines.ok()) return lines;
  su_home_t home[1] = {SU_HOME_INIT(home)};
  sdp_parser_t* parser =
      sdp_parse(home, body.data(), static_cast<issize_t>(body.size()), sdp_f_anynet);
  const sdp_session_t* sdp = sdp_session(parser);
  if (sdp == nullptr) {
    absl::Status error = absl::InvalidArgumentError(
        absl::StrCat("bad SDP: ", parser != nullptr ? sdp_parsing_error(parser) : "no parser"));
    sdp_parser_free(parser);
    su_home_deinit(home);
    return error;
  }
  RemoteSdp remote;
  int index = 0;
  for (const sdp_media_t* m = sdp->sdp_media; m != nullptr; m = m->m_next, ++index) {
    const bool ours = remote.audio_index < 0 && m->m_type == sdp_media_audio && m->m_port != 0 &&
                      m->m_port <= 65535 && m->m_proto == sdp_proto_rtp;
    remote.rejected_lines.push_back(ours ? std::string() : RejectedLine(m));
    if (!ours) continue;
    remote.audio_index = index;
    RemoteAudio& audio = remote.audio;
    const sdp_connection_t* c =
        m->m_connections != nullptr ? m->m_connections : sdp->sdp_connection;
    if (c != nullptr && c->c_address != nullptr) audio.address = c->c_address;
    audio.port = static_cast<int>(m->m_port);
    // A static type the offer maps to something else (a=rtpmap:8
    // telephone-event/8000) is not that codec.
    std::vector<int> remapped;
    for (const sdp_rtpmap_t* rm = m->m_rtpmaps; rm != nullptr; rm = rm->rm_next) {
      if (G711PayloadType(rm) < 0) remapped.push_back(static_cast<int>(rm->rm_pt));
    }
    for (const sdp_rtpmap_t* rm = m->m_rtpmaps; rm != nullptr; rm = rm->rm_next) {
      int pt = G711PayloadType(rm);
      if (pt >= 0) {
        if (std::find(remapped.begin(), remapped.end(), pt) == remapped.end() &&
            std::find(audio.payload_types.begin(), audio.payload_types.end(), pt) ==
                audio.payload_types.end()) {
          audio.payload_types.push_back(pt);
        }
      } else if (audio.telephone_event < 0 && rm->rm_pt >= 96 && rm->rm_pt <= 127 &&
                 rm->rm_encoding != nullptr &&
                 absl::EqualsIgnoreCase(rm->rm_encoding, "telephone-event") &&
                 (rm->rm_rate == 0 || rm->rm_rate == 8000)) {
        audio.telephone_event = static_cast<int>(rm->rm_pt);
        if (rm->rm_fmtp != nullptr) audio.telephone_event_fmtp = rm->rm_fmtp;
      }
    }
    audio.sends = (m->m_mode & sdp_sendonly) != 0;
    audio.receives = (m->m_mode & sdp_recvonly) != 0 && !IsInaddrAny(audio.address);
  }
  sdp_parser_free(parser);
  su_home_deinit(home);
  return remote;
}

SdpWriter::SdpWriter(std::string address, const std::vector<std::string>& codecs)
    : address_(std::move(address)), family_(absl::StrContains(address_, ':') ? "IP6" : "IP4") {
  for (const std::string& codec : codecs) {
    int pt = absl::EqualsIgnoreCase(codec, "PCMA") ? 8 : 0;
    if (std::find(payload_types_.begin(), payload_types_.end(), pt) == payload_types_.end()) {
      payload_types_.push_back(pt);
    }
  }
  if (payload_types_.empty()) payload_types_.push_back(0);
}

std::string SdpWriter::AudioLines(int port, const std::vector<int>& payload_types,
                                  int telephone_event, absl::string_view telephone_event_fmtp,
                                  bool send, bool recv) const {
  std::string formats;
  std::string maps;
  for (int pt : payload_types) {
    absl::StrAppend(&formats, " ", pt);
    absl::StrAppend(&maps, "a=rtpmap:", pt, pt == 8 ? " PCMA/8000\r\n" : " PCMU/8000\r\n");
  }
  if (telephone_event >= 0) {
    absl::StrAppend(&formats, " ", telephone_event);
    absl::StrAppend(&maps, "a=rtpmap:", telephone_event, " telephone-event/8000\r\n");
    if (!telephone_event_fmtp.empty()) {
      absl::StrAppend(&maps, "a=fmtp:", telephone_event, " ", telephone_event_fmtp, "\r\n");
    }
  }
  return absl::StrCat("m=audio ", port, " RTP/AVP", formats, "\r\n", maps, "a=ptime:20\r\n",
                      DirectionLine(send, recv));
}

std::string SdpWriter::OfferBody(int port, bool hold) const {
  return absl::StrCat("s=-\r\nc=IN ", family_, " ", address_, "\r\nt=0 0\r\n",
                      AudioLines(port, payload_types_, 101, "0-15", /*send=*/true, !hold));
}

bool SdpWriter::Ours(int payload_type) const {
  return std::find(payload_types_.begin(), payload_types_.end(), payload_type) !=
         payload_types_.end();
}

absl::Status SdpWriter::CheckOffer(const RemoteSdp& offer) const {
  if (offer.audio_index < 0) {
    return absl::FailedPreconditionError("the offer has no audio stream");
  }
  for (int pt : offer.audio.payload_types) {
    if (Ours(pt)) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("the offer has no codec of ours (", CodecNames(), ")"));
}

std::string SdpWriter::CodecNames() const {
  std::string names;
  for (int pt : payload_types_) {
    absl::StrAppend(&names, names.empty() ? "" : ", ", pt == 8 ? "PCMA" : "PCMU");
  }
  return names;
}

absl::StatusOr<std::string> SdpWriter::AnswerBody(const RemoteSdp& offer, int port, bool hold,
                                                  AudioSession* session) const {
  if (absl::Status usable = CheckOffer(offer); !usable.ok()) return usable;
  const RemoteAudio& audio = offer.audio;
  std::vector<int> common;
  for (int pt : audio.payload_types) {
    if (Ours(pt)) common.push_back(pt);
  }
  session->address = audio.address;
  session->port = audio.port;
  session->payload_type = common.front();
  session->telephone_event = audio.telephone_event;
  session->send = audio.receives;
  session->recv = audio.sends && !hold;
  std::string body = absl::StrCat("s=-\r\nc=IN ", family_, " ", address_, "\r\nt=0 0\r\n");
  for (int i = 0; i < static_cast<int>(offer.rejected_lines.size()); ++i) {
    if (i == offer.audio_index) {
      absl::StrAppend(&body, AudioLines(port, common, audio.telephone_event,
                                        audio.telephone_event_fmtp, session->send, session->recv));
    } else {
      absl::StrAppend(&body, offer.rejected_lines[i]);
    }
  }
  return body;
}

absl::StatusOr<AudioSession> SdpWriter::FromAnswer(const RemoteSdp& answer, bool hold) const {
  if (answer.audio_index < 0) {
    return absl::FailedPreconditionError("the answer rejects the audio stream");
  }
  const RemoteAudio& audio = answer.audio;
  AudioSession session;
  for (int pt : audio.payload_types) {
    if (Ours(pt)) {
      session.payload_type = pt;
      session.port = audio.port;
      break;
    }
  }
  if (session.port == 0) {
    return absl::FailedPreconditionError("the answer accepts no codec of our offer");
  }
  session.address = audio.address;
  session.telephone_event = audio.telephone_event;
  session.send = audio.receives;
  session.recv = audio.sends && !hold;
  return session;
}

std::string SdpWriter::Compose(uint64_t session_id, uint64_t version,
                               absl::string_view body) const {
  return absl::StrCat("v=0\r\no=- ", session_id, " ", version, " IN ", family_, " ", address_,
                      "\r\n", body);
}

}  // namespace telestra::backend
