#include "backend/sip/digest_cache.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/url.h>

namespace telestra::backend {
namespace {

// sofia's credential string for `challenge`: scheme:"realm":user:password.
std::string AuthString(const msg_auth_t* challenge, const AccountConfig& account) {
  const char* realm = msg_params_find(challenge->au_params, "realm=");
  std::string quoted = realm == nullptr  ? "\"\""
                       : realm[0] == '"' ? std::string(realm)
                                         : absl::StrCat("\"", realm, "\"");
  return absl::StrCat(challenge->au_scheme, ":", quoted, ":", account.user, ":",
                      account.password);
}

}  // namespace

DigestCache::DigestCache() : home_(static_cast<su_home_t*>(su_home_new(sizeof(su_home_t)))) {}

DigestCache::~DigestCache() { su_home_unref(home_); }

bool DigestCache::MadeFor(const AccountConfig& account) const {
  return user_ == account.user && password_ == account.password && server_ == account.server;
}

bool DigestCache::Remember(const AccountConfig& account, const msg_auth_t* challenge, bool proxy) {
  if (!MadeFor(account)) {
    clients_ = nullptr;  // stale: forget its challenges (freed with the home)
    user_ = account.user;
    password_ = account.password;
    server_ = account.server;
  }
  realm_ = RealmOf(challenge);
  msg_hclass_t* credential_class = proxy ? sip_proxy_authorization_class : sip_authorization_class;
  return auc_challenge(&clients_, home_, challenge, credential_class) >= 0 &&
         auc_credentials(&clients_, home_, AuthString(challenge, account).c_str()) >= 0 &&
         auc_has_authorization(&clients_) == 1;
}

const sip_header_t* DigestCache::Credentials(const AccountConfig& account, const char* method,
                                             const std::string& uri, su_home_t* home) {
  if (!MadeFor(account) || auc_has_authorization(&clients_) != 1) return nullptr;
  url_t* url = url_make(home, uri.c_str());
  if (url == nullptr) return nullptr;
  msg_header_t* headers = nullptr;
  if (auc_authorization_headers(&clients_, home, method, url, nullptr, &headers) != 1) {
    return nullptr;
  }
  return reinterpret_cast<const sip_header_t*>(headers);
}

const msg_auth_t* DigestCache::ChallengeOf(int status, const sip_t* sip) {
  if (sip == nullptr) return nullptr;
  return status == 401 ? sip->sip_www_authenticate : sip->sip_proxy_authenticate;
}

std::string DigestCache::RealmOf(const msg_auth_t* challenge) {
  const char* realm = msg_params_find(challenge->au_params, "realm=");
  if (realm == nullptr) return "";
  absl::string_view text(realm);
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
    text = text.substr(1, text.size() - 2);
  }
  return std::string(text);
}

}  // namespace telestra::backend
