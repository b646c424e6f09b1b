#include "backend/sip/inbound_policy.h"

#include <algorithm>
#include <utility>

#include "backend/sip_syntax.h"

namespace telestra::backend {

InboundPolicy::InboundPolicy(NetworkList trusted, int max_ringing)
    : trusted_(std::move(trusted)), max_ringing_(max_ringing) {}

void InboundPolicy::SetRegistrar(const std::string& account, const std::string& server) {
  Registrar& registrar = registrars_[account];
  if (registrar.server != server) registrar.addresses.clear();
  registrar.server = server;
  absl::StatusOr<ServerAddress> parsed = ParseSipServer(server);
  if (!parsed.ok()) return;
  boost::system::error_code ec;
  boost::asio::ip::address numeric = boost::asio::ip::make_address(parsed->host, ec);
  if (!ec) LearnRegistrar(account, numeric);
}

void InboundPolicy::LearnRegistrar(const std::string& account,
                                   const boost::asio::ip::address& address) {
  if (address.is_unspecified()) return;
  std::vector<boost::asio::ip::address>& addresses = registrars_[account].addresses;
  if (std::find(addresses.begin(), addresses.end(), address) != addresses.end()) return;
  if (addresses.size() >= kMaxAddresses) addresses.erase(addresses.begin());
  addresses.push_back(address);
}

void InboundPolicy::ForgetAccount(const std::string& account) { registrars_.erase(account); }

bool InboundPolicy::IsRegistrar(const Registrar& registrar,
                                const boost::asio::ip::address& source) const {
  return std::find(registrar.addresses.begin(), registrar.addresses.end(), source) !=
         registrar.addresses.end();
}

bool InboundPolicy::MayStartDialog(const boost::asio::ip::address& source,
                                   const std::string* account) const {
  if (source.is_unspecified()) return false;
  if (trusted_.Contains(source)) return true;
  if (account != nullptr) {
    auto it = registrars_.find(*account);
    return it != registrars_.end() && IsRegistrar(it->second, source);
  }
  return std::any_of(registrars_.begin(), registrars_.end(),
                     [&](const auto& entry) { return IsRegistrar(entry.second, source); });
}

bool InboundPolicy::MayRing(const std::string& account) const {
  auto it = ringing_.find(account);
  return it == ringing_.end() || it->second < max_ringing_;
}

void InboundPolicy::StartRinging(const std::string& account) { ++ringing_[account]; }

void InboundPolicy::StopRinging(const std::string& account) {
  auto it = ringing_.find(account);
  if (it != ringing_.end() && --it->second <= 0) ringing_.erase(it);
}

}  // namespace telestra::backend
