#include "backend/network_list.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace telestra::backend {

namespace asio = boost::asio;

absl::StatusOr<NetworkList> NetworkList::Parse(const std::vector<std::string>& cidrs) {
  NetworkList list;
  for (const std::string& cidr : cidrs) {
    const bool v6 = absl::StrContains(cidr, ':');
    std::string text = cidr;
    if (!absl::StrContains(text, '/')) absl::StrAppend(&text, v6 ? "/128" : "/32");
    boost::system::error_code ec;
    if (v6) {
      list.v6_.push_back(asio::ip::make_network_v6(text, ec));
    } else {
      list.v4_.push_back(asio::ip::make_network_v4(text, ec));
    }
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", cidr, "' is not an IPv4 or IPv6 network"));
    }
  }
  return list;
}

bool NetworkList::Contains(const asio::ip::address& address) const {
  asio::ip::address peer = address;
  if (peer.is_v6() && peer.to_v6().is_v4_mapped()) {
    peer = asio::ip::make_address_v4(asio::ip::v4_mapped, peer.to_v6());
  }
  if (peer.is_v4()) {
    const uint32_t value = peer.to_v4().to_uint();
    for (const asio::ip::network_v4& network : v4_) {
      if ((value & network.netmask().to_uint()) == network.network().to_uint()) return true;
    }
    return false;
  }
  const asio::ip::address_v6::bytes_type bytes = peer.to_v6().to_bytes();
  for (const asio::ip::network_v6& network : v6_) {
    const asio::ip::address_v6::bytes_type prefix = network.network().to_bytes();
    int bits = network.prefix_length();
    bool match = true;
    for (size_t i = 0; i < bytes.size() && bits > 0 && match; ++i, bits -= 8) {
      const unsigned mask = bits >= 8 ? 0xFFu : (0xFFu << (8 - bits)) & 0xFFu;
      match = (bytes[i] & mask) == (prefix[i] & mask);
    }
    if (match) return true;
  }
  return false;
}

asio::ip::address NetworkList::AddressOf(const sockaddr* address) {
  if (address == nullptr) return asio::ip::address();
  if (address->sa_family == AF_INET) {
    sockaddr_in in;
    std::memcpy(&in, address, sizeof(in));
    return asio::ip::address_v4(ntohl(in.sin_addr.s_addr));
  }
  if (address->sa_family == AF_INET6) {
    sockaddr_in6 in6;
    std::memcpy(&in6, address, sizeof(in6));
    asio::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), &in6.sin6_addr, bytes.size());
    asio::ip::address_v6 v6(bytes);
    if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6);
    return v6;
  }
  return asio::ip::address();
}

bool NetworkList::Contains(const sockaddr* address) const {
  if (address == nullptr ||
      (address->sa_family != AF_INET && address->sa_family != AF_INET6)) {
    return false;
  }
  return Contains(AddressOf(address));
}

}  // namespace telestra::backend
