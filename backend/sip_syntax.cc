#include "backend/sip_syntax.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace telestra::backend {
namespace {

constexpr size_t kMaxUser = 64;
constexpr size_t kMaxServer = 255;

bool IsUserChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("-_.!~*'()+$").find(c) != absl::string_view::npos;
}

bool IsHostChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
}

bool IsIpv6Char(char c) {
  return absl::ascii_isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
}

absl::Status ServerError(absl::string_view what, absl::string_view server) {
  return absl::InvalidArgumentError(absl::StrCat(what, ", got '", Printable(server), "'"));
}

}  // namespace

std::string Printable(absl::string_view text, size_t max) {
  std::string shown = absl::CHexEscape(text.substr(0, max));
  if (text.size() > max) shown += "...";
  return shown;
}

absl::Status ValidateSipUser(absl::string_view user) {
  if (user.empty()) return absl::InvalidArgumentError("user must not be empty");
  if (user.size() > kMaxUser) {
    return absl::InvalidArgumentError(
        absl::StrFormat("user must be at most %d characters, got %d", kMaxUser, user.size()));
  }
  for (char c : user) {
    if (!IsUserChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("user may only contain letters, digits and - _ . ! ~ * ' ( ) + $, got '",
                       Printable(user), "'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerAddress> ParseSipServer(absl::string_view v) {
  if (v.size() > kMaxServer) {
    return absl::InvalidArgumentError(
        absl::StrFormat("server must be at most %d characters, got %d", kMaxServer, v.size()));
  }
  ServerAddress address;
  absl::string_view host = v;
  absl::string_view port;
  bool has_port = false;
  bool ipv6 = false;
  if (!v.empty() && v.front() == '[') {  // [IPv6]:port
    const size_t close = v.find(']');
    if (close == absl::string_view::npos) {
      return ServerError("server has an unterminated '['", v);
    }
    ipv6 = true;
    host = v.substr(1, close - 1);
    absl::string_view rest = v.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return ServerError("server must be host[:port]", v);
      port = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = v.rfind(':');
    if (colon != absl::string_view::npos) {
      if (v.find(':') != colon) {
        return ServerError(
            "server must be host[:port] (write IPv6 addresses in brackets, e.g. [::1]:5060)", v);
      }
      host = v.substr(0, colon);
      port = v.substr(colon + 1);
      has_port = true;
    }
  }
  if (host.empty()) return ServerError("server must be host[:port]", v);
  for (char c : host) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return ServerError("server host must not contain whitespace", v);
    }
    if (ipv6 ? !IsIpv6Char(c) : !IsHostChar(c)) {
      return ServerError(ipv6 ? "server's IPv6 address may only contain hex digits, ':' and '.'"
                              : "server host may only contain letters, digits, '-' and '.'",
                         v);
    }
  }
  if (!ipv6 && (host.front() == '.' || host.front() == '-')) {
    return ServerError("server host must start with a letter or digit", v);
  }
  address.host = std::string(host);
  if (has_port) {
    int64_t number = 0;
    if (!absl::SimpleAtoi(port, &number) || port.empty() ||
        !absl::ascii_isdigit(static_cast<unsigned char>(port.front()))) {
      return absl::InvalidArgumentError(
          absl::StrCat("server port must be an integer, got '", Printable(port), "'"));
    }
    if (number < 1 || number > 65535) {
      return absl::InvalidArgumentError(
          absl::StrFormat("server port must be 1..65535, got %d", number));
    }
    address.port = static_cast<int>(number);
  }
  return address;
}

}  // namespace telestra::backend
