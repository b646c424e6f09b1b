#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace telestra::backend {

// DTMF in SIP INFO bodies (pure text, no sofia): the de-facto formats
// Cisco, Asterisk, FreeSWITCH and baresip use.
//   application/dtmf-relay:  "Signal=5\r\nDuration=160\r\n" (ms)
//   application/dtmf:        "5" (some send the event code, "11" for #)

inline constexpr char kDtmfRelayType[] = "application/dtmf-relay";
inline constexpr char kDtmfType[] = "application/dtmf";

// Whether an INFO of this content type (type/subtype, any parameters,
// any case) carries DTMF.
bool IsDtmfInfoType(absl::string_view content_type);

struct InfoDigit {
  char digit = 0;       // 0-9 * # A-D
  int duration_ms = 0;  // 0: the body gave none
};

// The digit of a DTMF INFO body of `content_type`. InvalidArgument naming
// the problem for a body that is not one ("no Signal", "Invalid DTMF
// digit ..."). Lines may end in CRLF or LF, keys are matched in any case
// with blanks around '='; a Duration that is not a number 0..60000 is
// ignored (0).
absl::StatusOr<InfoDigit> ParseDtmfInfo(absl::string_view content_type, absl::string_view body);

// The application/dtmf-relay body for `digit` (valid DTMF) lasting
// `duration_ms`.
std::string DtmfRelayBody(char digit, int duration_ms);

}  // namespace telestra::backend
