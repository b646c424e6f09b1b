#include "backend/sip/dial_target.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "backend/sip_syntax.h"

// sofia-sip: only ever included in backend/sip/.
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

namespace telestra::backend {
namespace {

constexpr size_t kMaxDialString = 64;
constexpr size_t kMaxUri = 256;

absl::Status Invalid(absl::string_view num) {
  return absl::InvalidArgumentError(absl::StrCat("Invalid number: ", Printable(num)));
}

bool IsDialChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("+*#._~!'()-").find(c) != absl::string_view::npos;
}

// Printable ASCII without the characters that would end or break the URI
// inside a header (<sip:...>) or start URI headers.
bool IsUriChar(char c) {
  return c > 0x20 && c < 0x7f && absl::string_view("<>\"\\?").find(c) == absl::string_view::npos;
}

// host and port of a sip(s) URL, with the scheme's default port.
struct HostPort {
  std::string host;
  int port;
};

bool SameServer(const HostPort& target, const ServerAddress& server) {
  return absl::EqualsIgnoreCase(target.host, server.host) &&
         target.port == (server.port != 0 ? server.port : 5060);
}

}  // namespace

absl::StatusOr<DialTarget> ParseDialTarget(absl::string_view num, absl::string_view server) {
  absl::StatusOr<ServerAddress> home = ParseSipServer(server);
  if (!home.ok()) return home.status();
  const bool is_uri = absl::StartsWithIgnoreCase(num, "sip:") ||
                      absl::StartsWithIgnoreCase(num, "sips:") ||
                      absl::StartsWithIgnoreCase(num, "tel:");
  if (!is_uri) {
    if (num.empty() || num.size() > kMaxDialString) return Invalid(num);
    for (char c : num) {
      if (!IsDialChar(c)) return Invalid(num);
    }
    return DialTarget{
        absl::StrCat("sip:", absl::StrReplaceAll(num, {{"#", "%23"}}), "@", server), true};
  }
  if (num.size() > kMaxUri) return Invalid(num);
  for (char c : num) {
    if (!IsUriChar(c)) return Invalid(num);
  }
  su_home_t home_memory[1] = {SU_HOME_INIT(home_memory)};
  const std::string text(num);
  const url_t* url = url_make(home_memory, text.c_str());
  bool ok = url != nullptr && url->url_password == nullptr && url->url_headers == nullptr;
  DialTarget target{text, false};
  if (ok && url->url_type == url_tel) {
    ok = url->url_user != nullptr && url->url_user[0] != '\0' && url->url_host == nullptr;
    for (const char* c = url->url_user; ok && *c != '\0'; ++c) ok = IsDialChar(*c);
    target.in_domain = true;  // routed by the account's proxy only
  } else if (ok && (url->url_type == url_sip || url->url_type == url_sips)) {
    ok = url->url_host != nullptr && url->url_host[0] != '\0';
    if (ok) {
      std::string host_port = url->url_host;
      if (url->url_port != nullptr) absl::StrAppend(&host_port, ":", url->url_port);
      absl::StatusOr<ServerAddress> parsed = ParseSipServer(host_port);
      ok = parsed.ok();
      if (ok) {
        const int port = parsed->port != 0 ? parsed->port : url->url_type == url_sips ? 5061 : 5060;
        target.in_domain = SameServer(HostPort{parsed->host, port}, *home);
      }
    }
  } else {
    ok = false;
  }
  su_home_deinit(home_memory);
  if (!ok) return Invalid(num);
  return target;
}

}  // namespace telestra::backend
