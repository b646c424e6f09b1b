#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/asio/ip/address.hpp"
#include "boost/asio/ip/network_v4.hpp"
#include "boost/asio/ip/network_v6.hpp"

struct sockaddr;

namespace telestra::backend {

// A set of IPv4/IPv6 networks (CIDR) that an address is checked against:
// the native port's `allow`, the SIP layer's `trusted`. IPv4-mapped IPv6
// addresses (::ffff:a.b.c.d) count as their IPv4 address.
// Thread: any (immutable once made).
class NetworkList {
 public:
  NetworkList() = default;

  // From canonical or plain CIDR strings ("10.0.0.0/8", "::1/128"; a bare
  // address is one host). InvalidArgument names the bad entry.
  static absl::StatusOr<NetworkList> Parse(const std::vector<std::string>& cidrs);

  bool empty() const { return v4_.empty() && v6_.empty(); }
  bool Contains(const boost::asio::ip::address& address) const;
  // A socket address (sockaddr_in / sockaddr_in6); false for other families.
  bool Contains(const sockaddr* address) const;

  // The address of a sockaddr_in / sockaddr_in6, IPv4-mapped ones as IPv4;
  // the unspecified address for other families.
  static boost::asio::ip::address AddressOf(const sockaddr* address);

 private:
  std::vector<boost::asio::ip::network_v4> v4_;
  std::vector<boost::asio::ip::network_v6> v6_;
};

}  // namespace telestra::backend
