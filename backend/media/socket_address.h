#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace telestra::backend {

// An IPv4 or IPv6 address and port, ready for bind()/sendto().
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int port() const;
  bool is_unspecified() const;  // 0.0.0.0 or ::
  SocketAddress WithPort(int port) const;
  std::string ToString() const;  // "1.2.3.4:5" / "[::1]:5"
  // The same family and IP address (any port).
  bool SameHost(const SocketAddress& other) const;
  // The same family, IP address and port.
  bool operator==(const SocketAddress& other) const {
    return SameHost(other) && port() == other.port();
  }
  bool operator!=(const SocketAddress& other) const { return !(*this == other); }
};

// Parses an IP literal (no host names: nothing here may block on DNS).
// nullopt if `ip` is not one or `port` is outside 0..65535.
// Thread: any.
std::optional<SocketAddress> ParseSocketAddress(absl::string_view ip, int port);

}  // namespace telestra::backend
