#pragma once

#include <string>

#include "backend/account_config.h"

// sofia-sip: only ever included in backend/sip/.
#include <sofia-sip/auth_client.h>
#include <sofia-sip/sip.h>

namespace telestra::backend {

// The digest challenge an account's server made, with the credentials that
// answer it, so that the next request carries them at once (RFC 3261 22.3)
// and skips the 401/407 round trip. The credentials it was made with tell
// when a new login makes it stale; its realm tells whose challenge it was.
// Thread: SIP thread only (its owner's).
class DigestCache {
 public:
  DigestCache();
  ~DigestCache();
  DigestCache(const DigestCache&) = delete;
  DigestCache& operator=(const DigestCache&) = delete;

  // Made with `account`'s current user, password and server.
  bool MadeFor(const AccountConfig& account) const;

  // Remembers `challenge` (of a 401 or, `proxy`, a 407) and `account`'s
  // credentials for it, forgetting what was made with other credentials;
  // false if sofia cannot answer it.
  bool Remember(const AccountConfig& account, const msg_auth_t* challenge, bool proxy);

  // An Authorization / Proxy-Authorization header for `method` to `uri`
  // (nonce count advanced), allocated in `home`; null when there is no
  // challenge or it was made for other credentials.
  const sip_header_t* Credentials(const AccountConfig& account, const char* method,
                                  const std::string& uri, su_home_t* home);

  // The realm of the last challenge remembered ("" if none).
  const std::string& realm() const { return realm_; }

  // The challenge of a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate);
  // null if it has none.
  static const msg_auth_t* ChallengeOf(int status, const sip_t* sip);
  // A challenge's realm, unquoted ("" if it has none).
  static std::string RealmOf(const msg_auth_t* challenge);

 private:
  su_home_t* home_;
  auth_client_t* clients_ = nullptr;
  std::string user_, password_, server_;
  std::string realm_;
};

}  // namespace telestra::backend
