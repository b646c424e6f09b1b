// Helpers of the hardening tests (tests/hardening/, docs/reliability.md):
// raw sockets with a chosen source address or receive buffer, a look at the
// gateway process through /proc, UDP garbage. The gateway, its clients and
// the metrics endpoint: tests/integration/gateway_fixture.h.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"

namespace telestra::testing {

// Whether this build runs under AddressSanitizer or ThreadSanitizer (slower:
// some limits and timings are relaxed then).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// A blocking TCP connection to 127.0.0.1:port for clients the NativeClient
// cannot play: bound to `source` (e.g. "127.0.0.2", a second loopback
// source), with a small receive buffer (0 = the system's default), never
// reading, or closing with a reset.
// Thread: one thread.
class RawConnection {
 public:
  struct Options {
    std::string source;      // "" = any
    int receive_buffer = 0;  // SO_RCVBUF before connect; 0 = default
  };
  static absl::StatusOr<std::unique_ptr<RawConnection>> Connect(int port, const Options& options);
  static absl::StatusOr<std::unique_ptr<RawConnection>> Connect(int port) {
    return Connect(port, Options());
  }
  ~RawConnection();

  // Sends everything; false when the peer has gone.
  bool Send(const std::string& bytes);
  // Sends what the socket takes without blocking; the count (0 when full),
  // or -1 when the peer has gone.
  ssize_t SendSome(const std::string& bytes);
  // Reads until the peer closes or `timeout` passes; returns what arrived.
  // *closed tells whether the peer closed.
  std::string ReadUntilClosed(absl::Duration timeout, bool* closed);
  // Closes with RST (SO_LINGER 0) instead of FIN.
  void Reset();
  int fd() const { return fd_; }

 private:
  explicit RawConnection(int fd) : fd_(fd) {}
  int fd_;
};

// Splits NUL-terminated events.
std::vector<std::string> SplitEvents(const std::string& bytes);

// Open descriptors of a process (entries of /proc/<pid>/fd), -1 on error.
int CountOpenFds(pid_t pid);
// Resident set size of a process in KiB (VmRSS of /proc/<pid>/status).
int64_t ResidentKib(pid_t pid);
// User + system CPU time a process has used (from /proc/<pid>/stat).
absl::Duration CpuTime(pid_t pid);

// Sends one UDP datagram to 127.0.0.1:port from an ephemeral port.
bool SendUdp(int port, const std::string& payload);

// Deterministic pseudo-random bytes (xorshift), for reproducible garbage.
std::string PseudoRandomBytes(size_t size, uint64_t seed);

// A unique string for this run (secrets, tokens): prefix + pid + time.
std::string UniqueString(const std::string& prefix);

// Percentile (0..100) of `samples`, which it sorts.
absl::Duration Percentile(std::vector<absl::Duration>& samples, double percentile);

// account-1 calls 3002 (account-2 of the same gateway) through the registrar
// and account-2 answers, as the vendor document's example; returns once
// `client` has seen call-answered for both legs. The ids of the two legs go
// to *caller_id and *callee_id.
absl::Status EstablishCall(NativeClient& client, int64_t* caller_id, int64_t* callee_id);

// Prints the last 8,000 bytes of the gateway's log to stderr (for a test
// that failed).
void PrintLogTail(GatewayProcess& gateway);

// One reply a bad-input case must get (the native port and the WebSocket
// carry the same JSON events).
struct ExpectedReply {
  std::string event;  // "fail", "status"
  std::string error;  // for fail: the exact text, or its start when `prefix`
  bool prefix = false;
  std::optional<std::string> account;  // checked when set
  std::optional<std::string> token;    // checked when set
};

// `got` is exactly `expect`, in order (gtest failures otherwise); with
// `want_seq` every reply must carry "seq".
void ExpectReplies(const std::vector<NativeEvent>& got, const std::vector<ExpectedReply>& expect,
                   bool want_seq);

}  // namespace telestra::testing
