#include "backend/dtmf.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace telestra::backend {

const char* DtmfMethodName(DtmfMethod method) {
  return method == DtmfMethod::kInfo ? "info" : "rfc4733";
}

int DtmfEventCode(char digit) {
  if (digit >= '0' && digit <= '9') return digit - '0';
  if (digit == '*') return 10;
  if (digit == '#') return 11;
  if (digit >= 'A' && digit <= 'D') return 12 + (digit - 'A');
  if (digit >= 'a' && digit <= 'd') return 12 + (digit - 'a');
  return -1;
}

char DtmfDigitOfEvent(int event) {
  static constexpr char kDigits[] = "0123456789*#ABCD";
  return event >= 0 && event < 16 ? kDigits[event] : '\0';
}

absl::StatusOr<std::string> NormalizeDtmfDigits(absl::string_view digits) {
  if (digits.empty()) return absl::InvalidArgumentError("Field digits must not be empty");
  if (digits.size() > kMaxDtmfDigits) {
    return absl::InvalidArgumentError(absl::StrCat("Too many DTMF digits: ", digits.size(),
                                                   " (at most ", kMaxDtmfDigits, ")"));
  }
  std::string out;
  out.reserve(digits.size());
  for (char c : digits) {
    int event = DtmfEventCode(c);
    if (event < 0) {
      const auto byte = static_cast<unsigned char>(c);
      std::string shown = byte >= 0x20 && byte < 0x7f ? std::string(1, c)
                                                      : absl::StrFormat("\\x%02X", byte);
      return absl::InvalidArgumentError(absl::StrCat("Invalid DTMF digit: '", shown, "'"));
    }
    out.push_back(DtmfDigitOfEvent(event));
  }
  return out;
}

absl::StatusOr<int> CheckDtmfDuration(int duration_ms) {
  if (duration_ms == 0) return kDefaultDtmfDurationMs;
  if (duration_ms < kMinDtmfDurationMs || duration_ms > kMaxDtmfDurationMs) {
    return absl::InvalidArgumentError(absl::StrCat("Field duration_ms out of range: ",
                                                   duration_ms, " (", kMinDtmfDurationMs, "..",
                                                   kMaxDtmfDurationMs, ")"));
  }
  return duration_ms;
}

}  // namespace telestra::backend
