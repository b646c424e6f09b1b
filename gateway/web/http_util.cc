#include "gateway/web/http_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace telestra::gateway {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> RequestTarget::Param(absl::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return value;
  }
  return std::nullopt;
}

absl::StatusOr<std::string> PercentDecode(absl::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return absl::InvalidArgumentError("truncated percent escape");
      }
      int high = HexValue(text[i + 1]);
      int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) return absl::InvalidArgumentError("bad percent escape");
      c = static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return absl::InvalidArgumentError("NUL in request target");
    out.push_back(c);
  }
  return out;
}

absl::StatusOr<RequestTarget> ParseRequestTarget(absl::string_view target) {
  if (target.empty() || target.front() != '/') {
    return absl::InvalidArgumentError("request target must start with '/'");
  }
  RequestTarget out;
  absl::string_view path = target;
  absl::string_view query;
  if (size_t mark = target.find('?'); mark != absl::string_view::npos) {
    path = target.substr(0, mark);
    query = target.substr(mark + 1);
  }
  if (size_t hash = query.find('#'); hash != absl::string_view::npos) {
    query = query.substr(0, hash);
  }
  absl::StatusOr<std::string> decoded_path = PercentDecode(path, /*plus_is_space=*/false);
  if (!decoded_path.ok()) return decoded_path.status();
  out.path = *std::move(decoded_path);
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    absl::StatusOr<std::string> key = PercentDecode(kv.first, /*plus_is_space=*/true);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> value = PercentDecode(kv.second, /*plus_is_space=*/true);
    if (!value.ok()) return value.status();
    out.query.emplace_back(*std::move(key), *std::move(value));
  }
  return out;
}

bool TokenEquals(absl::string_view presented, absl::string_view expected) {
  unsigned char a[SHA256_DIGEST_LENGTH];
  unsigned char b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  const bool digests_equal = CRYPTO_memcmp(a, b, sizeof(a)) == 0;
  return digests_equal && !presented.empty();
}

std::optional<std::string> BearerToken(absl::string_view authorization) {
  authorization = absl::StripAsciiWhitespace(authorization);
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::StartsWithIgnoreCase(authorization, kScheme)) {
    return std::nullopt;
  }
  absl::string_view token = absl::StripAsciiWhitespace(authorization.substr(kScheme.size()));
  if (token.empty()) return std::nullopt;
  return std::string(token);
}

std::optional<std::string> CookieValue(absl::string_view cookie_header, absl::string_view name) {
  for (absl::string_view part : absl::StrSplit(cookie_header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    size_t eq = part.find('=');
    if (eq == absl::string_view::npos) continue;
    if (part.substr(0, eq) != name) continue;
    absl::string_view value = part.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    absl::StatusOr<std::string> decoded = PercentDecode(value, /*plus_is_space=*/false);
    if (!decoded.ok()) return std::nullopt;
    return *std::move(decoded);
  }
  return std::nullopt;
}

bool SameOrigin(absl::string_view origin, absl::string_view host) {
  size_t scheme_end = origin.find("://");
  if (scheme_end == absl::string_view::npos || host.empty()) return false;
  absl::string_view scheme = origin.substr(0, scheme_end);
  if (!absl::EqualsIgnoreCase(scheme, "http") && !absl::EqualsIgnoreCase(scheme, "https")) {
    return false;
  }
  absl::string_view authority = origin.substr(scheme_end + 3);
  if (authority.empty() || authority.find('/') != absl::string_view::npos) return false;
  return absl::EqualsIgnoreCase(authority, absl::StripAsciiWhitespace(host));
}

std::optional<std::string> HostName(absl::string_view host_header) {
  absl::string_view value = absl::StripAsciiWhitespace(host_header);
  absl::string_view host = value;
  absl::string_view port;
  bool has_port = false;
  if (absl::ConsumePrefix(&value, "[")) {  // [IPv6]:port
    const size_t close = value.find(']');
    if (close == absl::string_view::npos) return std::nullopt;
    host = value.substr(0, close);
    absl::string_view rest = value.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      has_port = true;
    }
    in6_addr address;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &address) != 1) return std::nullopt;
  } else {
    const size_t colon = value.find(':');
    if (colon != absl::string_view::npos) {
      if (value.find(':', colon + 1) != absl::string_view::npos) return std::nullopt;
      host = value.substr(0, colon);
      port = value.substr(colon + 1);
      has_port = true;
    }
    absl::ConsumeSuffix(&host, ".");
    for (char c : host) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' &&
          c != '_') {
        return std::nullopt;
      }
    }
  }
  if (host.empty()) return std::nullopt;
  if (has_port) {
    std::optional<uint64_t> number = ParseUint64(port);
    if (!number.has_value() || *number > 65535) return std::nullopt;
  }
  return absl::AsciiStrToLower(host);
}

bool HostAllowed(bool host_present, absl::string_view host_header,
                 const std::vector<std::string>& allowed) {
  if (!host_present) return true;
  std::optional<std::string> host = HostName(host_header);
  if (!host.has_value()) return false;
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, host->c_str(), &v4) == 1 || inet_pton(AF_INET6, host->c_str(), &v6) == 1) {
    return true;
  }
  if (*host == "localhost" || absl::EndsWith(*host, ".localhost")) return true;
  return std::find(allowed.begin(), allowed.end(), *host) != allowed.end();
}

std::optional<uint64_t> ParseUint64(absl::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) return std::nullopt;
  return value;
}

}  // namespace telestra::gateway
