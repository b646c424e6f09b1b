#pragma once

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace telestra::backend {

// The text pieces of call transfer (RFC 3515 REFER, RFC 3891 Replaces,
// RFC 3420 message/sipfrag), pure: no sofia objects.

inline constexpr char kSipfragType[] = "message/sipfrag;version=2.0";

// The status line of a message/sipfrag body ("SIP/2.0 180 Ringing\r\n...")
// as (code, reason); nullopt when the body does not start with one (a
// request line, garbage, a code outside 100..699).
std::optional<std::pair<int, std::string>> ParseSipfragStatus(absl::string_view body);

// The sipfrag body we send in a NOTIFY: "SIP/2.0 <code> <reason>\r\n".
std::string SipfragBody(int code, absl::string_view reason);

// A Refer-To value for an attended transfer: `<target?Replaces=...>`, the
// Replaces value (call-id;from-tag=..;to-tag=..) percent-encoded as a URI
// header value. `target` is a sip: URI without headers.
std::string ReferToWithReplaces(absl::string_view target, absl::string_view replaces);

// The Replaces value in the headers part of a Refer-To URI
// ("Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2&X=y"), decoded; "" when it
// has none. Other headers are ignored (they are never copied into our
// INVITE).
std::string ReplacesOfUriHeaders(absl::string_view headers);

}  // namespace telestra::backend
