#include "cli/output.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "gateway/native/json_codec.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace telestra::cli {
namespace {

using telestra::v1::Event;

// Characters on the screen: UTF-8 continuation bytes take no column.
size_t DisplayWidth(const std::string& text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// "3001" or "3001 (Alice)".
std::string PartyText(const std::string& user, const std::string& name) {
  if (name.empty()) return Printable(user);
  return absl::StrCat(Printable(user), " (", Printable(name), ")");
}

// A string field of Status that newer gateways report (`user`, `server`:
// issue 21's call details), read by name so that this client shows it as
// soon as the model has it; "-" while it does not (or it is empty).
std::string ReportedField(const telestra::v1::Status& status, const char* name) {
  const google::protobuf::FieldDescriptor* field = status.GetDescriptor()->FindFieldByName(name);
  if (field == nullptr || field->is_repeated() ||
      field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
    return "-";
  }
  std::string value = status.GetReflection()->GetString(status, field);
  return value.empty() ? "-" : Printable(value);
}

std::string CallsText(int count) {
  if (count == 0) return "no calls";
  return absl::StrCat(count, count == 1 ? " call" : " calls");
}

// "call 3" for an event of a call.
std::string OfCall(const std::string& account, int64_t call_id) {
  return absl::StrCat(Printable(account), " call ", call_id);
}

// An event of a kind this client has no words for (a newer gateway's):
// its native name and its fields as protobuf text.
std::string GenericDetails(const Event& event) {
  const google::protobuf::OneofDescriptor* kind = Event::descriptor()->FindOneofByName("kind");
  const google::protobuf::Reflection* reflection = event.GetReflection();
  const google::protobuf::FieldDescriptor* field =
      kind != nullptr ? reflection->GetOneofFieldDescriptor(event, kind) : nullptr;
  if (field == nullptr || field->message_type() == nullptr) return "unknown event";
  return absl::StrCat(absl::StrReplaceAll(field->name(), {{"_", "-"}}), " ",
                      Printable(reflection->GetMessage(event, field).ShortDebugString()));
}

std::string EventDetails(const Event& event) {
  switch (event.kind_case()) {
    case Event::kCallReturn:
      return absl::StrCat("call-return ",
                          OfCall(event.call_return().account(), event.call_return().call_id()));
    case Event::kCallIncoming: {
      const auto& e = event.call_incoming();
      return absl::StrCat("call-incoming ", OfCall(e.account(), e.call_id()), " from ",
                          PartyText(e.caller(), e.caller_name()));
    }
    case Event::kCallAnswered:
      return absl::StrCat("call-answered ",
                          OfCall(event.call_answered().account(), event.call_answered().call_id()));
    case Event::kCallEnded: {
      const auto& e = event.call_ended();
      std::string text = absl::StrCat("call-ended ", OfCall(e.account(), e.call_id()));
      if (e.code() != 0) absl::StrAppend(&text, " (", e.code(), ")");
      if (!e.reason().empty()) absl::StrAppend(&text, ": ", Printable(e.reason()));
      return text;
    }
    case Event::kStatus: {
      const auto& e = event.status();
      std::string text =
          absl::StrCat("status ", Printable(e.account()), " ", RegistrationText(e.account_status()),
                       ", ", CallsText(e.calls_size()));
      for (const auto& call : e.calls()) {
        absl::StrAppend(&text, "; call ", call.call_id(), " ", gateway::CallStateName(call.state()), " ",
                        gateway::CallDirectionName(call.direction()), " ",
                        PartyText(call.peer(), call.peer_name()));
      }
      return text;
    }
    case Event::kFail: {
      const auto& e = event.fail();
      std::string text = "fail";
      if (!e.account().empty()) absl::StrAppend(&text, " ", Printable(e.account()));
      absl::StrAppend(&text, ": ", Printable(e.error()));
      return text;
    }
    case Event::kCallRinging: {
      const auto& e = event.call_ringing();
      return absl::StrCat("call-ringing ", OfCall(e.account(), e.call_id()), " (", e.code(), ")");
    }
    case Event::kCallProgress: {
      const auto& e = event.call_progress();
      return absl::StrCat("call-progress ", OfCall(e.account(), e.call_id()), " (", e.code(),
                          e.early_media() ? ", early media)" : ")");
    }
    case Event::kCallHeld:
      return absl::StrCat("call-held ",
                          OfCall(event.call_held().account(), event.call_held().call_id()));
    case Event::kCallResumed:
      return absl::StrCat("call-resumed ",
                          OfCall(event.call_resumed().account(), event.call_resumed().call_id()));
    case Event::kAccountStatus: {
      const auto& e = event.account_status();
      std::string text = absl::StrCat("account-status ", Printable(e.account()), " ",
                                      RegistrationText(e.account_status()));
      if (!e.reason().empty()) absl::StrAppend(&text, ": ", Printable(e.reason()));
      return text;
    }
    case Event::kDtmf: {
      const auto& e = event.dtmf();
      return absl::StrCat("dtmf ", OfCall(e.account(), e.call_id()), " digit ",
                          Printable(e.digit()), " (", e.duration_ms(), " ms, ",
                          Printable(e.method()), ")");
    }
    case Event::kDtmfSent: {
      const auto& e = event.dtmf_sent();
      return absl::StrCat("dtmf-sent ", OfCall(e.account(), e.call_id()), " digits ",
                          Printable(e.digits()));
    }
    case Event::kTransferProgress: {
      const auto& e = event.transfer_progress();
      return absl::StrCat("transfer-progress ", OfCall(e.account(), e.call_id()), " (", e.code(),
                          ")");
    }
    case Event::kCallStarted: {
      const auto& e = event.call_started();
      return absl::StrCat("call-started ", OfCall(e.account(), e.call_id()), " to ",
                          Printable(e.num()), " (transferred from call ", e.transferred_from(),
                          ")");
    }
    case Event::KIND_NOT_SET:
      return "unknown event";
    default:  // a kind newer than this client
      break;
  }
  return GenericDetails(event);
}

}  // namespace

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], DisplayWidth(row[i]));
  }
  std::string text;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - DisplayWidth(row[i]) + 2, ' ');
    }
    absl::StrAppend(&text, line, "\n");
  }
  return text;
}

std::string Printable(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const unsigned char byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", byte);
    } else {
      out += c;
    }
  }
  return out;
}

std::string RegistrationText(int32_t account_status) {
  switch (account_status) {
    case 200:
      return "registered (200)";
    case 100:
      return "registering (100)";
    case 0:
      return "logged out (0)";
    default:
      return absl::StrCat("failed (", account_status, ")");
  }
}

std::string AccountsTable(const std::vector<telestra::v1::Status>& accounts) {
  std::vector<std::vector<std::string>> rows = {{"ACCOUNT", "STATUS", "USER", "SERVER", "CALLS"}};
  for (const auto& status : accounts) {
    rows.push_back({Printable(status.account()), RegistrationText(status.account_status()),
                    ReportedField(status, "user"), ReportedField(status, "server"),
                    absl::StrCat(status.calls_size())});
  }
  return FormatTable(rows);
}

std::string StatusText(const telestra::v1::Status& status) {
  std::string text =
      absl::StrCat(Printable(status.account()), ": ", RegistrationText(status.account_status()));
  const std::string user = ReportedField(status, "user");
  const std::string server = ReportedField(status, "server");
  if (user != "-") absl::StrAppend(&text, " as ", user);
  if (server != "-") absl::StrAppend(&text, " at ", server);
  absl::StrAppend(&text, ", ", CallsText(status.calls_size()), "\n");
  if (status.calls_size() == 0) return text;
  std::vector<std::vector<std::string>> rows = {{"CALL", "STATE", "DIRECTION", "PEER"}};
  for (const auto& call : status.calls()) {
    rows.push_back({absl::StrCat(call.call_id()), gateway::CallStateName(call.state()),
                    gateway::CallDirectionName(call.direction()), PartyText(call.peer(), call.peer_name())});
  }
  return text + FormatTable(rows);
}

std::string EventLine(const Event& event, absl::TimeZone zone) {
  std::string when = "--:--:--.---";
  if (event.has_time()) {
    absl::Time time =
        absl::FromUnixSeconds(event.time().seconds()) + absl::Nanoseconds(event.time().nanos());
    when = absl::FormatTime("%H:%M:%E3S", time, zone);
  }
  return absl::StrCat(when, " #", event.seq(), " ", EventDetails(event));
}

std::string EventJson(const Event& event) {
  return telestra::gateway::JsonCodec::Encode(event, /*extended=*/true);
}

Event StatusEvent(const telestra::v1::Status& status) {
  Event event;
  *event.mutable_status() = status;
  return event;
}

Event CallReturnEvent(const telestra::v1::CallReturn& call) {
  Event event;
  *event.mutable_call_return() = call;
  return event;
}

}  // namespace telestra::cli
