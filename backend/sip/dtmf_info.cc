#include "backend/sip/dtmf_info.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "backend/dtmf.h"

namespace telestra::backend {
namespace {

constexpr int kMaxInfoDurationMs = 60000;

absl::string_view MediaType(absl::string_view content_type) {
  return absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';')));
}

// One digit as a body names it: the digit itself, or its event code 0..15.
absl::StatusOr<char> DigitOf(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text.size() == 1 && DtmfEventCode(text[0]) >= 0) {
    return DtmfDigitOfEvent(DtmfEventCode(text[0]));
  }
  int event = -1;
  if (absl::SimpleAtoi(text, &event) && DtmfDigitOfEvent(event) != '\0') {
    return DtmfDigitOfEvent(event);
  }
  std::string shown(text.substr(0, 16));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return absl::InvalidArgumentError(absl::StrCat("Invalid DTMF digit: '", shown, "'"));
}

}  // namespace

bool IsDtmfInfoType(absl::string_view content_type) {
  absl::string_view type = MediaType(content_type);
  return absl::EqualsIgnoreCase(type, kDtmfRelayType) || absl::EqualsIgnoreCase(type, kDtmfType);
}

absl::StatusOr<InfoDigit> ParseDtmfInfo(absl::string_view content_type, absl::string_view body) {
  absl::string_view type = MediaType(content_type);
  InfoDigit out;
  if (absl::EqualsIgnoreCase(type, kDtmfType)) {
    absl::StatusOr<char> digit = DigitOf(body);
    if (!digit.ok()) return digit.status();
    out.digit = *digit;
    return out;
  }
  if (!absl::EqualsIgnoreCase(type, kDtmfRelayType)) {
    return absl::InvalidArgumentError(absl::StrCat("Not a DTMF content type: ", type));
  }
  bool have_signal = false;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, eq));
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (absl::EqualsIgnoreCase(key, "Signal") && !have_signal) {
      absl::StatusOr<char> digit = DigitOf(value);
      if (!digit.ok()) return digit.status();
      out.digit = *digit;
      have_signal = true;
    } else if (absl::EqualsIgnoreCase(key, "Duration")) {
      int duration = 0;
      if (absl::SimpleAtoi(value, &duration) && duration >= 0 && duration <= kMaxInfoDurationMs) {
        out.duration_ms = duration;
      }
    }
  }
  if (!have_signal) return absl::InvalidArgumentError("no Signal in the application/dtmf-relay body");
  return out;
}

std::string DtmfRelayBody(char digit, int duration_ms) {
  return absl::StrCat("Signal=", std::string(1, digit), "\r\nDuration=", duration_ms, "\r\n");
}

}  // namespace telestra::backend
