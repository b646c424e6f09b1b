#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/account_config.h"

namespace telestra::gateway {

// [tcp-settings]: the native null-terminated JSON port.
struct TcpSettings {
  std::string bind = "127.0.0.1";
  int port = 3550;
  bool extended_events = false;
  int max_clients = 1024;
  int max_message_bytes = 65536;
  // `allow`: the networks (canonical CIDR, "10.0.0.0/8", "::1/128") whose
  // clients may connect; empty = every address.
  std::vector<std::string> allow;
  // Shared secret a connection must send first ({"cmd":"auth"}), resolved
  // from token or token-env; "" = none.
  std::string token;
  std::string cert;  // TLS certificate file ("" = plaintext)
  std::string key;
  // Seconds without a complete message before a connection is closed; 0 = never.
  int idle_timeout = 0;
};

// [grpc-settings]
struct GrpcSettings {
  std::string bind = "127.0.0.1";
  int port = 3551;
  std::string token;  // resolved from token or token-env; "" = none
  std::string cert;  // TLS certificate file ("" = plaintext)
  std::string key;
  // Subscribe + Session streams open at once (the whole server); one more
  // ends RESOURCE_EXHAUSTED.
  int max_streams = 1024;
};

// [web-settings]: dashboard + WebSocket.
struct WebSettings {
  std::string bind = "127.0.0.1";
  int port = 3552;
  std::string token;
  std::string cert;
  std::string key;
  // `hosts`: host names (lower-case, no port) a request's Host may name
  // besides IP addresses and localhost (DNS-rebinding protection).
  std::vector<std::string> hosts;
};

// [metrics-settings]: Prometheus text exposition at http://bind:port/metrics.
struct MetricsSettings {
  std::string bind = "127.0.0.1";
  int port = 3553;  // 0: no metrics endpoint
};

// A parsed SIP plan (docs/configuration.md). Accounts keep file order.
struct Plan {
  TcpSettings tcp;
  GrpcSettings grpc;
  WebSettings web;
  MetricsSettings metrics;
  backend::SipConfig sip;
  backend::RtpConfig rtp;
  std::vector<backend::AccountConfig> accounts;
  // What the parser accepted but the gateway ignores (deprecated keys), one
  // message each, for the caller to log.
  std::vector<std::string> warnings;
};

// The warning for a deprecated tuning knob (a plan key such as
// "[sip-settings] busy-poll-us", or a flag such as "--sip_busy_poll_us"):
// "<knob> is deprecated and ignored: ...".
std::string DeprecatedKnobWarning(absl::string_view knob);

// Parses plan text. `file_name` is only used in error messages, which always
// name file, line and key, e.g. "plan.ini:12: [account-1] unknown key 'usr'".
// Thread: any.
absl::StatusOr<Plan> ParsePlan(absl::string_view text, absl::string_view file_name);

// Reads and parses a plan file.
absl::StatusOr<Plan> LoadPlanFile(const std::string& path);

}  // namespace telestra::gateway
