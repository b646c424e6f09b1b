// Pieces the bare sofia-sip benchmarks (bench/bare_sofia.h, bench/bare_nta.h)
// share: the gateway's SDP and digest credentials reused pre-emptively (as
// backend/sip/sofia_sip_stack.cc does for the gateway's INVITEs).
#pragma once

#include <sofia-sip/auth_client.h>
#include <sofia-sip/msg_types.h>
#include <sofia-sip/su_alloc.h>

#include <string>

namespace telestra::bench {

// The gateway's SDP shape (PCMU, PCMA, telephone-event, 20 ms) on 127.0.0.1
// with audio port `port` (0: the template that soa is given a port for).
std::string BenchSdp(int port);

// "Digest:\"realm\":user:password" for a challenge (nua_authenticate,
// auc_credentials).
std::string DigestCredentials(const msg_auth_t* challenge, const std::string& user,
                              const std::string& password);

// Remembers `challenge` and the credentials that answer it in `clients`
// (allocated in `home`); on failure `clients` is left empty.
void RememberChallenge(auth_client_t** clients, su_home_t* home, const msg_auth_t* challenge,
                       msg_hclass_t* credential_class, const std::string& credentials);

// The Authorization/Proxy-Authorization header for an INVITE to `target`
// from the remembered challenge (nonce count advanced), allocated in
// `scratch`; null when there is none.
msg_header_t* PreemptiveCredentials(auth_client_t** clients, su_home_t* scratch,
                                    const std::string& target);

}  // namespace telestra::bench
