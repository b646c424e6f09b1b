// libFuzzer target: the untrusted-input helpers of the WebSocket upgrade
// path (gateway/web/http_util.h): request target and query parsing, percent
// decoding, bearer tokens, cookies, origins, the resume sequence number and
// the token comparison. Messages on an open WebSocket go through JsonCodec::Decode, which the
// json_codec target covers.
//
// Input: byte 0 picks where to split the rest into two strings A and B.
// Properties checked:
//  - nothing crashes;
//  - a parsed target has a path starting with '/', and no NUL anywhere;
//  - percent-decoding never lengthens the text and never yields NUL;
//  - BearerToken/CookieValue results are non-empty / NUL-free substrings' decodings;
//  - ParseUint64 accepts exactly the decimal strings of at most 20 digits
//    that fit, and gives their value;
//  - TokenEquals(a, b) is a == b for non-empty a, false for empty a;
//  - SameOrigin is symmetric in letter case.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "gateway/web/http_util.h"

namespace {

namespace gw = telestra::gateway;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "web_http_util_fuzzer: property violated: %s\n", what);
    std::abort();
  }
}

bool HasNul(absl::string_view s) { return s.find('\0') != absl::string_view::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = rest.empty() ? 0 : data[0] % (rest.size() + 1);
  const absl::string_view a = rest.substr(0, split);
  const absl::string_view b = rest.substr(split);

  if (auto target = gw::ParseRequestTarget(rest); target.ok()) {
    Check(!target->path.empty() && target->path.front() == '/', "path starts with /");
    Check(!HasNul(target->path), "no NUL in the path");
    for (const auto& [key, value] : target->query) {
      Check(!HasNul(key) && !HasNul(value), "no NUL in the query");
      Check(target->Param(key).has_value(), "Param finds every key");
    }
  }
  for (bool plus : {false, true}) {
    if (auto decoded = gw::PercentDecode(rest, plus); decoded.ok()) {
      Check(decoded->size() <= rest.size(), "decoding never lengthens");
      Check(!HasNul(*decoded), "no NUL after decoding");
    }
  }
  if (auto token = gw::BearerToken(rest)) {
    Check(!token->empty(), "bearer token not empty");
    Check(rest.find(*token) != absl::string_view::npos, "bearer token is part of the header");
  }
  if (auto cookie = gw::CookieValue(a, b)) Check(!HasNul(*cookie), "no NUL in a cookie");

  std::optional<uint64_t> number = gw::ParseUint64(rest);
  bool decimal = !rest.empty() && rest.size() <= 20;
  for (char c : rest) decimal = decimal && c >= '0' && c <= '9';
  if (number) {
    Check(decimal, "only decimal digits parse");
    uint64_t value = 0;
    for (char c : rest) value = value * 10 + static_cast<uint64_t>(c - '0');
    Check(value == *number, "the value is right");
  } else if (decimal && rest.size() < 20) {
    Check(false, "every decimal of up to 19 digits parses");
  }

  Check(gw::TokenEquals(a, b) == (!a.empty() && a == b), "TokenEquals is equality");
  Check(gw::SameOrigin(a, b) == gw::SameOrigin(absl::AsciiStrToUpper(a), absl::AsciiStrToLower(b)),
        "SameOrigin ignores letter case");
  return 0;
}
