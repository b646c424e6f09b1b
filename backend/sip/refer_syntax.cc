#include "backend/sip/refer_syntax.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace telestra::backend {
namespace {

// RFC 3261 25.1 unreserved: sent as they are in a URI header value.
bool Unreserved(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::StrContains("-_.!~*'()", c);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::pair<int, std::string>> ParseSipfragStatus(absl::string_view body) {
  absl::string_view line = body.substr(0, body.find_first_of("\r\n"));
  if (!absl::ConsumePrefix(&line, "SIP/2.0 ")) return std::nullopt;
  absl::string_view code_text = line.substr(0, 3);
  int code = 0;
  if (code_text.size() != 3 || !absl::SimpleAtoi(code_text, &code) || code < 100 || code > 699) {
    return std::nullopt;
  }
  line.remove_prefix(3);
  if (!line.empty() && line.front() != ' ') return std::nullopt;
  return std::make_pair(code, std::string(absl::StripAsciiWhitespace(line)));
}

std::string SipfragBody(int code, absl::string_view reason) {
  return absl::StrCat("SIP/2.0 ", code, " ", reason, "\r\n");
}

std::string ReferToWithReplaces(absl::string_view target, absl::string_view replaces) {
  std::string out = absl::StrCat("<", target, "?Replaces=");
  for (char c : replaces) {
    if (Unreserved(c)) {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, absl::StrFormat("%%%02X", static_cast<unsigned char>(c)));
    }
  }
  out.push_back('>');
  return out;
}

std::string ReplacesOfUriHeaders(absl::string_view headers) {
  for (absl::string_view header : absl::StrSplit(headers, '&')) {
    const size_t eq = header.find('=');
    if (eq == absl::string_view::npos || !absl::EqualsIgnoreCase(header.substr(0, eq), "Replaces")) {
      continue;
    }
    absl::string_view value = header.substr(eq + 1);
    std::string decoded;
    for (size_t i = 0; i < value.size(); ++i) {
      if (value[i] == '%' && i + 2 < value.size() && HexValue(value[i + 1]) >= 0 &&
          HexValue(value[i + 2]) >= 0) {
        decoded.push_back(static_cast<char>(HexValue(value[i + 1]) * 16 + HexValue(value[i + 2])));
        i += 2;
      } else {
        decoded.push_back(value[i]);
      }
    }
    return decoded;
  }
  return "";
}

}  // namespace telestra::backend
