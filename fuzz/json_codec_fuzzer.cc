// libFuzzer target: the native port's JSON codec (gateway/native/json_codec.h).
//
// Every input is one native message. Properties checked:
//  - Decode never crashes; a rejected message gets InvalidArgument with one of
//    the documented error texts (docs/native-api.md, "Errors");
//  - a decoded command, written back as JSON, decodes to the same command
//    (and the same account and token);
//  - Encode of events carrying the decoded strings (and the raw input bytes,
//    which may be invalid UTF-8) is one valid JSON object with "event" first,
//    holds no raw NUL (it would end the frame early), and gives the decoded
//    strings back exactly (subscribed's instance, accounts' statuses too).
// Built by scripts/fuzz.sh and replayed over fuzz/corpus/json_codec by
// //tests/hardening:fuzz_corpus_test.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gateway/native/json_codec.h"
#include "proto/telestra.pb.h"

namespace {

using telestra::gateway::DecodedCommand;
using telestra::gateway::JsonCodec;
using telestra::v1::Command;
using telestra::v1::Event;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "json_codec_fuzzer: property violated: %s\n", what);
    std::abort();
  }
}

// A JSON string literal (the fuzzer's own writer, independent of Encode).
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", c);
      out += escape;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

// The command back as a native message. `account`: the message's account
// field as the codec reported it (for the fail it would answer), written
// for the commands whose model has none (subscribe, list-accounts): a
// message may carry one anyway.
std::string ToJson(const Command& c, const std::string& account) {
  std::string json = "{";
  auto field = [&json](const char* key, const std::string& value) {
    if (json.size() > 1) json += ",";
    absl::StrAppend(&json, "\"", key, "\":", value);
  };
  switch (c.kind_case()) {
    case Command::kLogin:
      field("cmd", "\"login\"");
      field("account", Quote(c.login().account()));
      field("user", Quote(c.login().user()));
      field("pass", Quote(c.login().pass()));
      field("server", Quote(c.login().server()));
      break;
    case Command::kLogout:
      field("cmd", "\"logout\"");
      field("account", Quote(c.logout().account()));
      break;
    case Command::kMakeCall:
      field("cmd", "\"make-call\"");
      field("account", Quote(c.make_call().account()));
      field("num", Quote(c.make_call().num()));
      break;
    case Command::kAnswerCall:
      field("cmd", "\"answer-call\"");
      field("account", Quote(c.answer_call().account()));
      field("call_id", absl::StrCat(c.answer_call().call_id()));
      break;
    case Command::kSwitchCall:
      field("cmd", "\"switch-call\"");
      field("account", Quote(c.switch_call().account()));
      field("call_id", absl::StrCat(c.switch_call().call_id()));
      break;
    case Command::kHangupCall:
      field("cmd", "\"hangup-call\"");
      field("account", Quote(c.hangup_call().account()));
      field("call_id", absl::StrCat(c.hangup_call().call_id()));
      break;
    case Command::kGetStatus:
      field("cmd", "\"get-status\"");
      field("account", Quote(c.get_status().account()));
      break;
    case Command::kSubscribe:
      field("cmd", "\"subscribe\"");
      field("extended", c.subscribe().extended() ? "true" : "false");
      if (c.subscribe().has_after_seq()) {
        field("after_seq", absl::StrCat(c.subscribe().after_seq()));
      }
      // "" is what an absent instance decodes to.
      if (!c.subscribe().instance().empty()) field("instance", Quote(c.subscribe().instance()));
      if (!account.empty()) field("account", Quote(account));
      break;
    case Command::kListAccounts:
      field("cmd", "\"list-accounts\"");
      if (!account.empty()) field("account", Quote(account));
      break;
    case Command::kSendDtmf:
      field("cmd", "\"send-dtmf\"");
      field("account", Quote(c.send_dtmf().account()));
      field("call_id", absl::StrCat(c.send_dtmf().call_id()));
      field("digits", Quote(c.send_dtmf().digits()));
      // 0 is the default: absent on the wire (an explicit 0 is refused).
      if (c.send_dtmf().duration_ms() != 0) {
        field("duration_ms", absl::StrCat(c.send_dtmf().duration_ms()));
      }
      break;
    case Command::kTransferCall:
      field("cmd", "\"transfer-call\"");
      field("account", Quote(c.transfer_call().account()));
      field("call_id", absl::StrCat(c.transfer_call().call_id()));
      field("num", Quote(c.transfer_call().num()));
      if (c.transfer_call().has_to_call_id()) {
        field("to_call_id", absl::StrCat(c.transfer_call().to_call_id()));
      }
      break;
    case Command::KIND_NOT_SET:
      Check(false, "a decoded command has a kind");
  }
  if (!c.token().empty()) field("token", Quote(c.token()));
  return json + "}";
}

bool IsDocumentedError(absl::string_view error) {
  for (absl::string_view prefix : {"Malformed JSON: ", "Missing field: ", "Unknown command: ",
                                   "Field duration_ms out of range"}) {
    if (absl::StartsWith(error, prefix)) return true;
  }
  for (absl::string_view text :
       {"Field cmd must be a string", "Field account must be a string",
        "Field user must be a string", "Field pass must be a string",
        "Field server must be a string", "Field num must be a string",
        "Field token must be a string", "Field call_id must be an integer",
        "Field call_id is out of range", "Field extended must be a boolean",
        "Field digits must be a string", "Field duration_ms must be an integer",
        "Field to_call_id must be an integer", "Field to_call_id is out of range",
        "Field after_seq must be a non-negative integer", "Field after_seq is out of range",
        "Field after_seq requires extended to be true", "Field instance must be a string"}) {
    if (error == text) return true;
  }
  return false;
}

// Encodes `event` legacy and extended and checks the output; its string
// `field` must be `want` when `exact`.
void CheckEncoded(const Event& event, const char* field, std::string_view want, bool exact) {
  static simdjson::dom::parser parser;
  for (bool extended : {false, true}) {
    const std::string json = JsonCodec::Encode(event, extended);
    Check(json.find('\0') == std::string::npos, "no raw NUL in an encoded event");
    simdjson::dom::element doc;
    Check(parser.parse(json).get(doc) == simdjson::SUCCESS, "encoded event is valid JSON");
    simdjson::dom::object object;
    Check(doc.get(object) == simdjson::SUCCESS, "encoded event is an object");
    Check(object.begin() != object.end() && (*object.begin()).key == "event",
          "\"event\" comes first");
    std::string_view got;
    Check(object[field].get(got) == simdjson::SUCCESS, "field present");
    if (exact) Check(got == want, "string field round-trips");
  }
}

void CheckEncode(std::string_view text, bool exact) {
  Event fail;
  fail.mutable_fail()->set_account(std::string(text));
  fail.mutable_fail()->set_error("x");
  fail.set_token(std::string(text));
  fail.set_seq(7);
  CheckEncoded(fail, "account", text, exact);
  if (!text.empty()) CheckEncoded(fail, "token", text, exact);  // "" is left out

  Event status;
  status.mutable_status()->set_account("a");
  auto* call = status.mutable_status()->add_calls();
  call->set_call_id(3);
  call->set_peer(std::string(text));
  call->set_peer_name(std::string(text));
  CheckEncoded(status, "account", "a", exact);

  Event incoming;
  incoming.mutable_call_incoming()->set_account("a");
  incoming.mutable_call_incoming()->set_caller_name(std::string(text));
  CheckEncoded(incoming, "caller_name", text, exact);

  Event ended;
  ended.mutable_call_ended()->set_account(std::string(text));
  ended.mutable_call_ended()->set_reason(std::string(text));
  CheckEncoded(ended, "account", text, exact);

  Event subscribed;
  subscribed.mutable_subscribed()->set_instance(std::string(text));
  CheckEncoded(subscribed, "instance", text, exact);

  Event accounts;  // statuses nested in an array: still one valid object
  accounts.mutable_accounts()->add_accounts()->set_account(std::string(text));
  accounts.mutable_accounts()->add_accounts()->mutable_calls()->Add()->set_peer(std::string(text));
  CheckEncoded(accounts, "event", "accounts", /*exact=*/true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view message(reinterpret_cast<const char*>(data), size);
  static JsonCodec codec;
  DecodedCommand decoded = codec.Decode(message);

  if (!decoded.command.ok()) {
    Check(decoded.command.status().code() == absl::StatusCode::kInvalidArgument,
          "rejections are InvalidArgument");
    Check(IsDocumentedError(decoded.command.status().message()),
          "rejections use a documented error text");
  } else {
    const Command& command = *decoded.command;
    Check(decoded.token == command.token(), "token reported");
    const std::string again_json = ToJson(command, decoded.account);
    DecodedCommand again = codec.Decode(again_json);
    Check(again.command.ok(), "a re-encoded command decodes");
    Check(again.command->SerializeAsString() == command.SerializeAsString(),
          "a re-encoded command decodes to the same command");
    Check(again.account == decoded.account && again.token == decoded.token,
          "same account and token");
    // Strings that came out of the parser are valid UTF-8: exact round trip.
    CheckEncode(decoded.account, /*exact=*/true);
    CheckEncode(decoded.token, /*exact=*/true);
    if (command.has_login()) CheckEncode(command.login().pass(), /*exact=*/true);
    if (command.has_make_call()) CheckEncode(command.make_call().num(), /*exact=*/true);
    if (command.has_subscribe()) CheckEncode(command.subscribe().instance(), /*exact=*/true);
  }
  // Raw bytes (maybe invalid UTF-8): still one valid JSON object.
  CheckEncode(std::string_view(message.data(), message.size()),
              simdjson::validate_utf8(message.data(), message.size()));
  return 0;
}
