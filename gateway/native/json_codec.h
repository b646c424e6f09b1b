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
  // {"cmd":"auth","secret":"..."}: the native port's handshake
  // (docs/native-api.md, "Authentication"), which is not a command of the
  // model: `command` holds "Unknown command: auth" (what the front ends
  // without that handshake answer), `auth` is true and `secret` holds the
  // secret, or "Missing field: secret" / "Field secret must be a string".
  bool auth = false;
  absl::StatusOr<std::string> secret;
};

// Translates native-port JSON to and from the proto model
// (docs/native-api.md). Parsing uses simdjson On-Demand without exceptions;
// output is compact JSON rendered with simdjson's formatter.
//
// Error texts (Status messages, InvalidArgument unless noted):
//   "Malformed JSON: <parser message>", "Missing field: <name>",
//   "Field <name> must be a string" / "... must be an integer" /
//   "... must be a boolean", "Field call_id is out of range",
//   "Field after_seq must be a non-negative integer", "Field after_seq is
//   out of range", "Field after_seq requires extended to be true",
//   "Unknown command: <cmd>".
//
// Thread: not thread-safe (it owns a parser); one codec per connection.
class JsonCodec {
 public:
  // Messages up to this size leave the parser's buffers allocated for the
  // next one; a larger message's buffers are freed once it is decoded.
  static constexpr size_t kRetainedMessageBytes = 4096;

  JsonCodec();
  ~JsonCodec();

  DecodedCommand Decode(absl::string_view message);

  // Bytes of messages the codec's buffers are sized for now (0 when none
  // is allocated).
  size_t buffer_capacity() const;

  // Renders an event as compact JSON (without the NUL terminator).
  // `extended` adds the fields beyond the seed: "seq" on every event,
  // "code"/"reason" on call-ended, and on status the account's user, server
  // and registration expiry and each call's times, codec, SIP identity and
  // quality (Timestamps as RFC 3339 strings). Extended-only events
  // (call-ringing, call-held, call-quality, ...) are rendered regardless;
  // the session decides whether to send them (IsExtendedOnly).
  // `subscribed` always carries its "seq"; each account of `accounts` is
  // rendered as the `status` event get-status answers.
  static std::string Encode(const telestra::v1::Event& event, bool extended);

  // True for the events a legacy client only gets after opting in.
  static bool IsExtendedOnly(const telestra::v1::Event& event);

  // The native port's reply to a successful `auth`:
  // {"event":"authenticated"} plus "token" when `token` is not empty.
  static std::string EncodeAuthenticated(absl::string_view token);

 private:
  struct Impl;
  DecodedCommand DecodeMessage(absl::string_view message);
  std::unique_ptr<Impl> impl_;
};

// The native protocol's names of a call's state ("dialing", "ringing",
// "incoming", "active", "held", "remote-held") and direction ("outgoing",
// "incoming"); "unknown" for anything else.
const char* CallStateName(telestra::v1::CallState state);
const char* CallDirectionName(telestra::v1::CallDirection direction);

}  // namespace telestra::gateway
