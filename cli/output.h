// What telestra prints: human-readable tables and lines, or the native
// protocol's JSON (gateway/native/json_codec.h, the JSON an extended native
// client gets). Pure functions; the caller writes the text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/telestra.pb.h"

namespace telestra::cli {

// Columns padded to their widest cell, two spaces apart, one row a line
// (the first row is the header). Every line ends with a newline.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

// `text` with control characters (a far end's display name can hold any)
// shown as \n, \t, \xNN, so that nothing printed moves the terminal's cursor.
std::string Printable(const std::string& text);

// "registered (200)", "logged out (0)", "registering (100)", "failed (403)".
std::string RegistrationText(int32_t account_status);

// The table of `telestra accounts`: account, status, user, server, calls.
// User and server show "-" while the gateway does not report them.
std::string AccountsTable(const std::vector<telestra::v1::Status>& accounts);

// `telestra status`: a line for the account, then its calls' table (id,
// state, direction, peer).
std::string StatusText(const telestra::v1::Status& status);

// One event as a line without the newline:
// "12:00:01.234 #7 call-incoming account-2 call 1 from 3001 (account-1)".
// The time is the event's, in `zone`.
std::string EventLine(const telestra::v1::Event& event, absl::TimeZone zone);

// The native JSON of an event, as an extended native client gets it (with
// "seq"; a unary reply is not numbered: its seq is 0).
std::string EventJson(const telestra::v1::Event& event);

// The native event a unary reply is (for EventJson).
telestra::v1::Event StatusEvent(const telestra::v1::Status& status);
telestra::v1::Event CallReturnEvent(const telestra::v1::CallReturn& call);

}  // namespace telestra::cli
