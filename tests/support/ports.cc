#include "tests/support/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include "absl/time/clock.h"

namespace telestra::testing {
namespace {

constexpr int kUdpTcpAttempts = 50;
constexpr absl::Duration kConnectPoll = absl::Milliseconds(5);

sockaddr_in Loopback(int port) {
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

// Binds 127.0.0.1:port (0 = any) with a socket of `type`; returns the bound
// port, or 0 if the bind failed.
int BindLoopback(int type, int port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr = Loopback(port);
  int bound = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      bound = ntohs(addr.sin_port);
    }
  }
  close(fd);
  return bound;
}

bool TcpConnects(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr = Loopback(port);
  // Loopback connects complete (or are refused) immediately.
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

int PickFreeUdpRun(int count) {
  constexpr int kLow = 21000;
  constexpr int kHigh = 32000;
  constexpr int kAttempts = 50;
  if (count < 1 || count > kHigh - kLow) return 0;
  static std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> half_base(kLow / 2, (kHigh - count) / 2);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    int first = half_base(random) * 2;
    bool free = true;
    for (int port = first; port < first + count && free; ++port) {
      free = BindLoopback(SOCK_DGRAM, port) == port;
    }
    if (free) return first;
  }
  return 0;
}

int PickFreePort(int type) {
  if (type != SOCK_STREAM && type != SOCK_DGRAM) return 0;
  return BindLoopback(type, 0);
}

std::vector<int> PickFreeTcpPorts(int count, const std::vector<int>& exclude) {
  std::vector<int> held;  // descriptors, closed at the end
  std::vector<int> ports;
  for (int attempt = 0; attempt < count + kUdpTcpAttempts && static_cast<int>(ports.size()) < count;
       ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    held.push_back(fd);
    sockaddr_in addr = Loopback(0);
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      continue;
    }
    int port = ntohs(addr.sin_port);
    // An excluded port stays held, so the kernel moves on to another.
    if (std::find(exclude.begin(), exclude.end(), port) == exclude.end()) ports.push_back(port);
  }
  for (int fd : held) close(fd);
  if (static_cast<int>(ports.size()) < count) ports.clear();
  return ports;
}

int PickFreeUdpTcpPort() {
  for (int attempt = 0; attempt < kUdpTcpAttempts; ++attempt) {
    int port = PickFreePort(SOCK_STREAM);
    if (port != 0 && BindLoopback(SOCK_DGRAM, port) == port) return port;
  }
  return 0;
}

bool WaitForTcpPort(int port, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (TcpConnects(port)) return true;
    absl::Time now = absl::Now();
    if (now >= deadline) return false;
    absl::SleepFor(std::min(kConnectPoll, deadline - now));
  }
}

}  // namespace telestra::testing
