#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gateway/native/json_codec.h"

// The native port's JSON out: each event as the vendor document (and,
// for extended clients, the extension) writes it. The way in is
// json_codec.cc.

namespace telestra::gateway {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Returns `s` if it is valid UTF-8, otherwise a copy in *scratch with every
// maximal invalid subsequence replaced by U+FFFD.
std::string_view ValidUtf8(std::string_view s, std::string* scratch) {
  if (simdjson::validate_utf8(s.data(), s.size())) return s;
  scratch->clear();
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      scratch->push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      length = 2;
    } else if (b == 0xE0) {
      length = 3;
      low = 0xA0;
    } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
      length = 3;
    } else if (b == 0xED) {
      length = 3;
      high = 0x9F;
    } else if (b == 0xF0) {
      length = 4;
      low = 0x90;
    } else if (b >= 0xF1 && b <= 0xF3) {
      length = 4;
    } else if (b == 0xF4) {
      length = 4;
      high = 0x8F;
    } else {
      scratch->append(kReplacement, 3);
      ++i;
      continue;
    }
    size_t j = i + 1;
    if (j < n && p[j] >= low && p[j] <= high) {
      ++j;
      while (j < i + length && j < n && (p[j] & 0xC0) == 0x80) ++j;
    }
    if (j - i == length) {
      scratch->append(s.data() + i, length);
    } else {
      scratch->append(kReplacement, 3);
    }
    i = j;
  }
  return *scratch;
}


// Thin helper over simdjson's formatter: every value after the first member
// of an object is preceded by a comma.
class Writer {
 public:
  Writer(simdjson::internal::mini_formatter* f, std::string* scratch)
      : f_(*f), scratch_(*scratch) {}

  void Begin(const char* event) {
    f_.start_object();
    f_.key("event");
    f_.string(event);
  }
  void String(const char* key, std::string_view value) {
    Key(key);
    f_.string(ValidUtf8(value, &scratch_));
  }
  void Int(const char* key, int64_t value) {
    Key(key);
    f_.number(value);
  }
  void Uint(const char* key, uint64_t value) {
    Key(key);
    f_.number(value);
  }
  void Double(const char* key, double value) {
    Key(key);
    f_.number(value);
  }
  // A Timestamp as RFC 3339 in UTC with milliseconds.
  void Time(const char* key, const google::protobuf::Timestamp& time) {
    const absl::Time t = absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
    String(key, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()));
  }
  void Bool(const char* key, bool value) {
    Key(key);
    if (value) {
      f_.true_atom();
    } else {
      f_.false_atom();
    }
  }
  void Key(const char* key) {
    f_.comma();
    f_.key(key);
  }
  simdjson::internal::mini_formatter& formatter() { return f_; }

 private:
  simdjson::internal::mini_formatter& f_;
  std::string& scratch_;
};

void WriteAccountCall(Writer& w, const std::string& account, int64_t call_id) {
  w.String("account", account);
  w.Int("call_id", call_id);
}

// What a call object of `status` says beyond the vendor's fields (extended
// clients only): times, SIP identity, codec and quality.
void WriteCallDetails(Writer& w, const telestra::v1::CallInfo& call) {
  if (call.has_start_time()) w.Time("start_time", call.start_time());
  if (call.has_answer_time()) w.Time("answer_time", call.answer_time());
  w.String("codec", call.codec());
  w.String("sip_call_id", call.sip_call_id());
  w.String("remote_uri", call.remote_uri());
  w.Uint("packets_received", call.packets_received());
  w.Uint("packets_lost", call.packets_lost());
  w.Double("jitter_ms", call.jitter_ms());
  if (call.has_rtt_ms()) w.Double("rtt_ms", call.rtt_ms());
  if (call.has_mos()) w.Double("mos", call.mos());
}

// What follows "event":"status": the account, its registration and its
// calls (extended: the SIP identity, times and quality too).
void WriteStatusFields(Writer& w, const telestra::v1::Status& e, bool extended) {
  simdjson::internal::mini_formatter& formatter = w.formatter();
  w.String("account", e.account());
  w.Int("account_status", e.account_status());
  if (extended) {
    w.String("user", e.user());
    w.String("server", e.server());
    if (e.has_registration_expires()) {
      w.Time("registration_expires", e.registration_expires());
    }
  }
  w.Key("calls");
  formatter.start_array();
  bool first = true;
  for (const auto& call : e.calls()) {
    if (!first) formatter.comma();
    first = false;
    formatter.start_object();
    formatter.key("call_id");
    formatter.number(static_cast<int64_t>(call.call_id()));
    w.String("state", CallStateName(call.state()));
    w.String("direction", CallDirectionName(call.direction()));
    w.String("peer", call.peer());
    w.String("peer_name", call.peer_name());
    if (extended) WriteCallDetails(w, call);
    formatter.end_object();
  }
  formatter.end_array();
}

}  // namespace

const char* CallStateName(telestra::v1::CallState state) {
  switch (state) {
    case telestra::v1::CALL_STATE_DIALING:
      return "dialing";
    case telestra::v1::CALL_STATE_RINGING:
      return "ringing";
    case telestra::v1::CALL_STATE_INCOMING:
      return "incoming";
    case telestra::v1::CALL_STATE_ACTIVE:
      return "active";
    case telestra::v1::CALL_STATE_HELD:
      return "held";
    case telestra::v1::CALL_STATE_REMOTE_HELD:
      return "remote-held";
    default:
      return "unknown";
  }
}

const char* CallDirectionName(telestra::v1::CallDirection direction) {
  switch (direction) {
    case telestra::v1::CALL_DIRECTION_OUTGOING:
      return "outgoing";
    case telestra::v1::CALL_DIRECTION_INCOMING:
      return "incoming";
    default:
      return "unknown";
  }
}

std::string JsonCodec::Encode(const telestra::v1::Event& event, bool extended) {
  // Reused per thread so that rendering allocates only the returned string.
  thread_local simdjson::internal::mini_formatter formatter;
  thread_local std::string scratch;
  formatter.clear();
  Writer w(&formatter, &scratch);

  using E = telestra::v1::Event;
  switch (event.kind_case()) {
    case E::kCallReturn: {
      const auto& e = event.call_return();
      w.Begin("call-return");
      WriteAccountCall(w, e.account(), e.call_id());
      break;
    }
    case E::kCallIncoming: {
      const auto& e = event.call_incoming();
      w.Begin("call-incoming");
      WriteAccountCall(w, e.account(), e.call_id());
      w.String("caller", e.caller());
      w.String("caller_name", e.caller_name());
      break;
    }
    case E::kCallAnswered: {
      const auto& e = event.call_answered();
      w.Begin("call-answered");
      WriteAccountCall(w, e.account(), e.call_id());
      break;
    }
    case E::kCallEnded: {
      const auto& e = event.call_ended();
      w.Begin("call-ended");
      WriteAccountCall(w, e.account(), e.call_id());
      if (extended) {
        w.Int("code", e.code());
        w.String("reason", e.reason());
      }
      break;
    }
    case E::kStatus:
      w.Begin("status");
      WriteStatusFields(w, event.status(), extended);
      break;
    case E::kFail: {
      const auto& e = event.fail();
      w.Begin("fail");
      w.String("account", e.account());
      w.String("error", e.error());
      break;
    }
    case E::kCallRinging: {
      const auto& e = event.call_ringing();
      w.Begin("call-ringing");
      WriteAccountCall(w, e.account(), e.call_id());
      w.Int("code", e.code());
      break;
    }
    case E::kCallHeld: {
      const auto& e = event.call_held();
      w.Begin("call-held");
      WriteAccountCall(w, e.account(), e.call_id());
      break;
    }
    case E::kCallResumed: {
      const auto& e = event.call_resumed();
      w.Begin("call-resumed");
      WriteAccountCall(w, e.account(), e.call_id());
      break;
    }
    case E::kAccountStatus: {
      const auto& e = event.account_status();
      w.Begin("account-status");
      w.String("account", e.account());
      w.Int("account_status", e.account_status());
      w.String("reason", e.reason());
      break;
    }
    case E::kCallProgress: {
      const auto& e = event.call_progress();
      w.Begin("call-progress");
      WriteAccountCall(w, e.account(), e.call_id());
      w.Int("code", e.code());
      w.Bool("early_media", e.early_media());
      break;
    }
    case E::kTransferProgress: {
      const auto& e = event.transfer_progress();
      w.Begin("transfer-progress");
      WriteAccountCall(w, e.account(), e.call_id());
      w.Int("code", e.code());
      break;
    }
    case E::kCallStarted: {
      const auto& e = event.call_started();
      w.Begin("call-started");
      WriteAccountCall(w, e.account(), e.call_id());
      w.String("num", e.num());
      w.Int("transferred_from", e.transferred_from());
      break;
    }
    case E::kDtmf: {
      const auto& e = event.dtmf();
      w.Begin("dtmf");
      WriteAccountCall(w, e.account(), e.call_id());
      w.String("digit", e.digit());
      w.Int("duration_ms", e.duration_ms());
      w.String("method", e.method());
      break;
    }
    case E::kDtmfSent: {
      const auto& e = event.dtmf_sent();
      w.Begin("dtmf-sent");
      WriteAccountCall(w, e.account(), e.call_id());
      w.String("digits", e.digits());
      break;
    }
    case E::kCallQuality: {
      const auto& e = event.call_quality();
      w.Begin("call-quality");
      WriteAccountCall(w, e.account(), e.call_id());
      w.String("codec", e.codec());
      w.Uint("packets_received", e.packets_received());
      w.Uint("packets_lost", e.packets_lost());
      w.Double("jitter_ms", e.jitter_ms());
      if (e.has_rtt_ms()) w.Double("rtt_ms", e.rtt_ms());
      if (e.has_mos()) w.Double("mos", e.mos());
      break;
    }
    case E::kSubscribed:
      w.Begin("subscribed");
      w.String("instance", event.subscribed().instance());
      break;
    case E::kAccounts: {
      // Each account as the status event get-status answers (in the same
      // form: extended or not), with this reply's seq.
      w.Begin("accounts");
      w.Key("accounts");
      formatter.start_array();
      bool first = true;
      for (const auto& status : event.accounts().accounts()) {
        if (!first) formatter.comma();
        first = false;
        formatter.start_object();
        formatter.key("event");
        formatter.string("status");
        WriteStatusFields(w, status, extended);
        if (extended) w.Uint("seq", event.seq());
        formatter.end_object();
      }
      formatter.end_array();
      break;
    }
    case E::KIND_NOT_SET:
      // Nothing to report; still a well-formed object.
      w.Begin("unknown");
      break;
  }
  if (!event.token().empty()) w.String("token", event.token());
  // `subscribed` exists to tell the seq: it always carries it.
  if (extended || event.has_subscribed()) w.Uint("seq", event.seq());
  formatter.end_object();

  const std::string_view text = formatter.str();
  return std::string(text.data(), text.size());
}

std::string JsonCodec::EncodeAuthenticated(absl::string_view token) {
  simdjson::internal::mini_formatter formatter;
  std::string scratch;
  Writer w(&formatter, &scratch);
  w.Begin("authenticated");
  if (!token.empty()) w.String("token", std::string_view(token.data(), token.size()));
  formatter.end_object();
  const std::string_view text = formatter.str();
  return std::string(text.data(), text.size());
}

bool JsonCodec::IsExtendedOnly(const telestra::v1::Event& event) {
  switch (event.kind_case()) {
    case telestra::v1::Event::kCallRinging:
    case telestra::v1::Event::kCallHeld:
    case telestra::v1::Event::kCallResumed:
    case telestra::v1::Event::kAccountStatus:
    case telestra::v1::Event::kDtmf:
    case telestra::v1::Event::kDtmfSent:
    case telestra::v1::Event::kCallProgress:
    case telestra::v1::Event::kTransferProgress:
    case telestra::v1::Event::kCallStarted:
    case telestra::v1::Event::kCallQuality:
      return true;
    default:
      return false;
  }
}

}  // namespace telestra::gateway
