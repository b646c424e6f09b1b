#pragma once

#include <map>
#include <string>
#include <vector>

#include "backend/network_list.h"
#include "boost/asio/ip/address.hpp"

namespace telestra::backend {

// Who may start calls with the gateway's accounts, and how many of an
// account's calls may ring at once (issue 17: nobody but the account's
// registrar/proxy, or a [sip-settings] trusted network, can make the
// gateway ring and hold RTP ports).
//
// An account's registrar is known by its numeric `server` address (before
// it answers) and by every address its answers came from (a name that
// resolves, a proxy that answers from another interface); at most
// kMaxAddresses per account, the oldest forgotten first.
// Thread: SIP thread only.
class InboundPolicy {
 public:
  static constexpr size_t kMaxAddresses = 8;

  InboundPolicy(NetworkList trusted, int max_ringing);

  // The account registers (again) at `server`: a new server forgets the
  // addresses of the old one.
  void SetRegistrar(const std::string& account, const std::string& server);
  // An answer of the account's registrar came from `address`.
  void LearnRegistrar(const std::string& account, const boost::asio::ip::address& address);
  // The account is gone (logged out): so are its registrar's addresses.
  void ForgetAccount(const std::string& account);

  // `source` may start a dialog with `account`: a trusted network, or the
  // account's registrar. For no known account (null): any account's
  // registrar (it then gets a 404, not the 403 of strangers).
  bool MayStartDialog(const boost::asio::ip::address& source, const std::string* account) const;

  // Another incoming call of `account` may ring (fewer than max-ringing do).
  bool MayRing(const std::string& account) const;
  void StartRinging(const std::string& account);
  void StopRinging(const std::string& account);

 private:
  struct Registrar {
    std::string server;
    std::vector<boost::asio::ip::address> addresses;
  };
  bool IsRegistrar(const Registrar& registrar, const boost::asio::ip::address& source) const;

  const NetworkList trusted_;
  const int max_ringing_;
  std::map<std::string, Registrar> registrars_;  // by account
  std::map<std::string, int> ringing_;           // unanswered incoming calls by account
};

}  // namespace telestra::backend
