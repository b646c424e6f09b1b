#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace telestra::backend {

// Where a make-call's `num` leads: the Request-URI (and To) of the call's
// INVITE, and whether that is the account's own server.
struct DialTarget {
  std::string uri;
  // The URI's host and port are the account's server (or a tel: URI, which
  // only the account's proxy can route). Only then does the first INVITE
  // carry the account's cached credentials.
  bool in_domain = false;
};

// `num` is either
//  - a dial string: 1-64 characters from A-Z a-z 0-9 + * # . _ ~ ! ' ( ) -,
//    called at the account's server: sip:<num>@<server> ('#' sent as %23);
//  - or a whole sip:, sips: or tel: URI (scheme in any case), parsed with
//    sofia's URL parser: at most 256 characters, no whitespace, control
//    character, '<', '>', '"', '\', no password, no headers ('?'); a sip(s)
//    URI needs a host of the plan's server syntax.
// Anything else is InvalidArgument "Invalid number: <num>" (control
// characters escaped). `server` is the account's host[:port].
// Thread: any.
absl::StatusOr<DialTarget> ParseDialTarget(absl::string_view num, absl::string_view server);

}  // namespace telestra::backend
