// Free loopback ports for test servers.
#pragma once

#include <sys/socket.h>

#include <vector>

#include "absl/time/time.h"

namespace telestra::testing {

// A port on 127.0.0.1 that was free for `type` (SOCK_STREAM or SOCK_DGRAM)
// a moment ago: binds 127.0.0.1:0, reads the port, closes. Returns 0 on
// failure. Another process may take the port before you bind it.
int PickFreePort(int type);

// A port on 127.0.0.1 that was free for both TCP and UDP (SIP listens on
// both). Returns 0 if none was found after a few attempts.
int PickFreeUdpTcpPort();

// `count` distinct TCP ports on 127.0.0.1, none of them in `exclude`, that
// were free a moment ago: the sockets are all held until every port is
// known, so the kernel cannot hand the same port out twice (separate
// PickFreePort calls can). Empty on failure.
std::vector<int> PickFreeTcpPorts(int count, const std::vector<int>& exclude = {});

// The first of `count` consecutive UDP ports on 127.0.0.1, even, that were
// all free a moment ago, picked at random in 21000..32000: below Linux's
// ephemeral ports (32768+), which every outgoing connection of every test
// running at the same time takes from, and above the gateway's default RTP
// range (20000-20999). 0 if none was found after a few attempts.
int PickFreeUdpRun(int count);

// True once a TCP connect to 127.0.0.1:port succeeds; false if none did
// within `timeout`. Tries at least once, polling every few milliseconds.
bool WaitForTcpPort(int port, absl::Duration timeout);

}  // namespace telestra::testing
