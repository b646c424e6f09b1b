#pragma once

#include <string>
#include <vector>

namespace telestra::backend {

// One SIP account of the plan, as the backend sees it.
struct AccountConfig {
  std::string name;  // the section name; the API's "account"
  std::string user;
  std::string password;  // never logged
  std::string server;    // host[:port] of the registrar/proxy
  std::string display_name;
  bool register_on_start = true;
  // What the account sends on its calls: "silence" | "tone:<hz>" |
  // "file:<path.wav>" (see media_engine.h ParseAudioSource).
  std::string audio = "silence";
  std::string record_dir;  // "" = no recording
  // Plan key `dtmf`: false (rfc4733) sends DTMF as RFC 4733 telephone-events
  // when the far end negotiated them, else as SIP INFO; true (info) always
  // as SIP INFO.
  bool dtmf_info = false;
  // Plan key `accept-refer`: a REFER from the far end of one of the
  // account's calls makes the account call the Refer-To target; false: the
  // REFER is declined (603).
  bool accept_refer = true;
};

// Every field (a plan reload compares an account's sections with it).
inline bool operator==(const AccountConfig& a, const AccountConfig& b) {
  return a.name == b.name && a.user == b.user && a.password == b.password &&
         a.server == b.server && a.display_name == b.display_name &&
         a.register_on_start == b.register_on_start && a.audio == b.audio &&
         a.record_dir == b.record_dir && a.dtmf_info == b.dtmf_info &&
         a.accept_refer == b.accept_refer;
}
inline bool operator!=(const AccountConfig& a, const AccountConfig& b) { return !(a == b); }

// The service's own SIP user agent.
struct SipConfig {
  std::string bind = "127.0.0.1";
  int port = 5070;                // 0: any free port
  std::string transport = "udp";  // "udp" or "tcp"
  int register_expires = 300;     // seconds
  // Re-registration after a transient failure (408, 5xx, no answer): the
  // first retry after register_retry_min seconds, doubling up to
  // register_retry_max, each with +-20% jitter.
  int register_retry_min = 2;
  int register_retry_max = 120;
  // Requests that start dialogs (INVITE) are accepted only from the IP
  // addresses of the called account's registrar/proxy and from these
  // networks (canonical CIDR, "10.0.0.0/8", "::1/128"); others get 403.
  std::vector<std::string> trusted;
  // An incoming call not answered within this many seconds is answered 480
  // and ends with reason "Ring timeout" (0: never).
  int ring_timeout = 120;
  // An outgoing call without a final answer within this many seconds is
  // cancelled and ends with 408 "No answer" (0: never).
  int invite_timeout = 180;
  // Unanswered incoming calls per account; more get 486 Busy Here.
  int max_ringing = 16;
  // The SIP thread's nice value; 0: the process's priority.
  int thread_nice = 0;
  // RFC 4028 session timers: the Session-Expires we ask for and offer
  // (seconds; 0: off, no timers on our calls), and the smallest one we take
  // from a peer (422 below it; RFC 4028's 90, lowered by tests only).
  int session_expires = 1800;
  int session_min_se = 90;
};

// RTP port range and codecs (used by calls).
struct RtpConfig {
  int port_min = 20000;
  int port_max = 20999;
  std::vector<std::string> codecs = {"PCMU", "PCMA"};
  // A call that receives no RTP for this long (while it expects some) is
  // ended (BYE, call-ended reason "RTP timeout"). 0 = never.
  int rtp_timeout = 30;
  // Receive jitter buffer depth, milliseconds.
  int jitter_buffer_ms = 60;
  // false: RTP/RTCP is accepted only from the IP address of the far end's
  // SDP. true (far ends behind NAT): from the first source (address and
  // port) seen after the answer, and then only from it; media is sent back
  // to it.
  bool latch = false;
  // Applications' audio streams (CallAudio, /ws/audio) one call may have.
  int max_streams_per_call = 4;
  // Seconds between two call-quality events of an established call; 0: none.
  int quality_interval = 5;
};

}  // namespace telestra::backend
