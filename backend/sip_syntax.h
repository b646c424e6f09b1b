#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace telestra::backend {

// The syntax of what a plan or a network client may name as an account's
// SIP user and server. The plan (gateway/plan) and the login command apply
// the same checks, so a login can never put what the plan would refuse
// into a SIP header. The messages name the field and quote the value with
// control characters escaped; they never carry a file or line.
// Thread: any.

// A SIP user: 1-64 characters from A-Z a-z 0-9 and - _ . ! ~ * ' ( ) + $
// (RFC 3261's unreserved characters plus + and $). No URI metacharacter
// (@ : ; ? / < > " & = , % #), no whitespace or control character.
absl::Status ValidateSipUser(absl::string_view user);

// The parts of a server "host[:port]".
struct ServerAddress {
  std::string host;  // without brackets for IPv6
  int port = 0;      // 0: not given
};

// A server: host[:port], where host is a DNS name or IPv4 address (letters,
// digits, '-' and '.'), or an IPv6 address in brackets ([::1]:5060), and
// port 1..65535. At most 255 characters.
absl::StatusOr<ServerAddress> ParseSipServer(absl::string_view server);
inline absl::Status ValidateSipServer(absl::string_view server) {
  return ParseSipServer(server).status();
}

// `text` for an error message: printable ASCII as is, everything else
// (control characters, NUL, bytes over 0x7e) C-escaped, at most `max`
// characters of the input shown.
std::string Printable(absl::string_view text, size_t max = 128);

}  // namespace telestra::backend
