#include "bench/sofia_common.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/url.h>

#include "absl/strings/str_cat.h"

namespace telestra::bench {

std::string BenchSdp(int port) {
  return absl::StrCat(
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ", port,
      " RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
      "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n");
}

std::string DigestCredentials(const msg_auth_t* challenge, const std::string& user,
                              const std::string& password) {
  const char* realm = msg_params_find(challenge->au_params, "realm=");
  std::string quoted = realm == nullptr  ? "\"\""
                       : realm[0] == '"' ? std::string(realm)
                                         : absl::StrCat("\"", realm, "\"");
  return absl::StrCat(challenge->au_scheme, ":", quoted, ":", user, ":", password);
}

void RememberChallenge(auth_client_t** clients, su_home_t* home, const msg_auth_t* challenge,
                       msg_hclass_t* credential_class, const std::string& credentials) {
  if (auc_challenge(clients, home, challenge, credential_class) < 0 ||
      auc_credentials(clients, home, credentials.c_str()) < 0) {
    *clients = nullptr;
  }
}

msg_header_t* PreemptiveCredentials(auth_client_t** clients, su_home_t* scratch,
                                    const std::string& target) {
  if (*clients == nullptr || auc_has_authorization(clients) != 1) return nullptr;
  url_t* url = url_make(scratch, target.c_str());
  msg_header_t* headers = nullptr;
  if (url == nullptr ||
      auc_authorization_headers(clients, scratch, "INVITE", url, nullptr, &headers) != 1) {
    return nullptr;
  }
  return headers;
}

}  // namespace telestra::bench
