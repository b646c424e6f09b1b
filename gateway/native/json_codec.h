#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/telestra.pb.h"

namespace telestra::gateway {

// The result of decoding one native message. `account` and `token` are filled
// in as far as the message allows even when decoding fails, so that the
// `fail` reply can name the account and echo the token.
struct DecodedCommand {
  absl::StatusOr<telestra::v1::Command> command;
  std::string account;
  std::string token;
};

// Translates native-port JSON to and from the proto model
// (docs/native-api.md). Parsing uses simdjson On-Demand without exceptions;
// output is compact JSON rendered with simdjson's formatter.
//
// Error texts (Status messages, InvalidArgument unless noted):
//   "Malformed JSON: <parser message>", "Missing field: <name>",
//   "Field <name> must be a string" / "... must be an integer" /
//   "... must be a boolean", "Field call_id is out of range",
//   "Unknown command: <cmd>".
//
// Thread: not thread-safe (it owns a parser); one codec per connection.
class JsonCodec {
 public:
  JsonCodec();
  ~JsonCodec();

  DecodedCommand Decode(absl::string_view message);

  // Renders an event as compact JSON (without the NUL terminator).
  // `extended` adds the fields beyond the seed: "seq" on every event and
  // "code"/"reason" on call-ended. Extended-only events (call-ringing,
  // call-held, call-resumed, account-status) are rendered regardless; the
  // session decides whether to send them (IsExtendedOnly).
  static std::string Encode(const telestra::v1::Event& event, bool extended);

  // True for the events a legacy client only gets after opting in.
  static bool IsExtendedOnly(const telestra::v1::Event& event);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace telestra::gateway
