#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace telestra::backend {

// DTMF as every layer names it: the digits 0-9 * # A-D, their RFC 4733
// event codes, and the checks of a send-dtmf request.

// How a digit travelled.
enum class DtmfMethod { kRfc4733, kInfo };

// "rfc4733" / "info", as events name the method.
const char* DtmfMethodName(DtmfMethod method);

// Digits and durations a send-dtmf may ask for.
inline constexpr int kMaxDtmfDigits = 64;
inline constexpr int kMinDtmfDurationMs = 40;
inline constexpr int kMaxDtmfDurationMs = 2000;
inline constexpr int kDefaultDtmfDurationMs = 100;

// The RFC 4733 event code of a DTMF digit (0-9 -> 0-9, * -> 10, # -> 11,
// A-D -> 12-15; a-d too), or -1 for anything else.
int DtmfEventCode(char digit);

// The digit of an RFC 4733 event code 0..15, or '\0' for any other code.
char DtmfDigitOfEvent(int event);

// The digits of a send-dtmf, checked and with a-d made A-D:
// InvalidArgument "Field digits must not be empty", "Too many DTMF digits:
// N (at most 64)" or "Invalid DTMF digit: 'x'" (a byte that is not
// printable ASCII is shown as \xNN).
absl::StatusOr<std::string> NormalizeDtmfDigits(absl::string_view digits);

// The duration of each digit: 0 means the default (100 ms); otherwise
// 40..2000 ms, else InvalidArgument "Field duration_ms out of range: N
// (40..2000)".
absl::StatusOr<int> CheckDtmfDuration(int duration_ms);

}  // namespace telestra::backend
