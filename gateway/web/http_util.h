// Small, pure helpers for the web front end's HTTP handling: request targets,
// query parameters, tokens, cookies and origins. Boost 1.74 has no URL parser
// (Boost.URL came in 1.81), so the little that is needed lives here, with
// unit tests (tests/gateway/web/http_util_test.cc).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace telestra::gateway {

// A request target ("/ws?after_seq=3&token=x") split and percent-decoded.
struct RequestTarget {
  std::string path;                                        // decoded; always starts with '/'
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order

  // The first value of query parameter `name`, if present.
  std::optional<std::string> Param(absl::string_view name) const;
};

// Parses an origin-form request target. InvalidArgument when the target does
// not start with '/', has a bad percent escape, or decodes to a NUL byte.
absl::StatusOr<RequestTarget> ParseRequestTarget(absl::string_view target);

// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as in query
// strings). InvalidArgument on a malformed escape or a NUL byte.
absl::StatusOr<std::string> PercentDecode(absl::string_view text, bool plus_is_space);

// Compares a presented secret with the expected one in time that does not
// depend on where they differ, nor on the presented length: both are hashed
// (SHA-256) and the digests compared with CRYPTO_memcmp. An empty `presented`
// never matches.
bool TokenEquals(absl::string_view presented, absl::string_view expected);

// "Bearer abc" -> "abc" (scheme case-insensitive); nullopt otherwise.
std::optional<std::string> BearerToken(absl::string_view authorization);

// The value of cookie `name` in a Cookie request header, if present.
std::optional<std::string> CookieValue(absl::string_view cookie_header, absl::string_view name);

// True when an Origin header ("http://127.0.0.1:3552") names the same
// host[:port] as the request's Host header ("127.0.0.1:3552"), ignoring
// letter case. "null" and malformed origins are never the same origin.
bool SameOrigin(absl::string_view origin, absl::string_view host);

// The host of a Host header value, lower-case, without the port, the
// brackets of an IPv6 literal and a trailing dot ("Gateway.Example.:3552" ->
// "gateway.example", "[::1]:3552" -> "::1"); nullopt when it is malformed
// (empty, a bad port, an unbracketed IPv6 address, characters no host name
// has).
std::optional<std::string> HostName(absl::string_view host_header);

// DNS-rebinding protection: may a request whose Host header is
// `host_header` be served? Yes for
//   - IP literals ("127.0.0.1:3552", "[::1]", "10.1.2.3"): a page reached
//     through an address cannot be rebound to another one;
//   - "localhost" and names under ".localhost" (browsers resolve them to
//     loopback themselves, never through DNS);
//   - the names in `allowed` (lower-case host names, [web-settings] hosts).
// Another name, or a malformed value, is refused. `host_present` false (no
// Host header at all) is allowed: browsers always send one.
bool HostAllowed(bool host_present, absl::string_view host_header,
                 const std::vector<std::string>& allowed);

// Parses a decimal uint64 ("0".."18446744073709551615"); nullopt otherwise.
std::optional<uint64_t> ParseUint64(absl::string_view text);

}  // namespace telestra::gateway
