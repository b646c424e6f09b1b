// Blocking TCP on 127.0.0.1 for the test clients (the native client, raw
// connections of the hardening tests, baresip's ctrl_tcp): connect, send all,
// read what arrives before a deadline.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace telestra::testing {

struct LoopbackOptions {
  std::string source;      // local address to bind, e.g. "127.0.0.2"; "" = any
  int receive_buffer = 0;  // SO_RCVBUF before connect; 0 = the system's default
};

// A socket connected to 127.0.0.1:port, with TCP_NODELAY; the caller closes it.
absl::StatusOr<int> ConnectLoopback(int port, const LoopbackOptions& options = {});

// Sends all of `bytes` (no SIGPIPE); false when the peer has gone.
bool SendAll(int fd, std::string_view bytes);

enum class ReadResult { kData, kClosed, kTimedOut };

// Waits until `deadline` for `fd` to be readable and appends what one recv
// returns to *out: kData, kClosed (the peer closed or the read failed) or
// kTimedOut (nothing before the deadline).
ReadResult ReadSome(int fd, absl::Time deadline, std::string* out);

}  // namespace telestra::testing
