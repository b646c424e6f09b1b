#pragma once

#include <optional>
#include <map>
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
  // How many broadcast events are kept for clients that resume (native
  // `subscribe` with after_seq, gRPC Subscribe, WebSocket after_seq): the
  // one history all front ends share.
  int history_events = 4096;
};

// [grpc-settings]
struct GrpcSettings {
  std::string bind = "127.0.0.1";
  int port = 3551;
  std::string token;  // resolved from token or token-env; "" = none
  std::string cert;   // TLS certificate file ("" = plaintext)
  std::string key;
  // Subscribe + Session + CallAudio streams open at once (the whole server); one more
  // ends RESOURCE_EXHAUSTED.
  int max_streams = 1024;
  // Events queued for one stream before it is ended as too slow
  // (--grpc_max_queued_events; no plan key).
  int max_queued_events = 8192;
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
  // Set only on the command line (--web_*; docs/websocket-api.md, "Limits").
  int max_sessions = 256;
  int max_message_bytes = 65536;
  int max_queued_bytes = 4 << 20;
  int idle_timeout_seconds = 60;
  int header_timeout_seconds = 10;
  int max_connections_per_address = 32;
};

// [metrics-settings]: Prometheus text exposition at http://bind:port/metrics.
struct MetricsSettings {
  std::string bind = "127.0.0.1";
  int port = 3553;  // 0: no metrics endpoint
};

// [state-settings]: what survives a restart (docs/restart.md).
struct StateSettings {
  // The journal's directory (calls, event history, instance); "" = off.
  std::string dir;
  // SIGTERM leaves the calls and registrations in place for the next start
  // to restore (an upgrade); false: they are ended as without a journal.
  bool keep_calls_on_stop = false;
};

// The process itself; set only on the command line.
struct ProcessSettings {
  int io_threads = 1;  // threads serving the API ports
  // How long shutdown (unregister, end calls, write out the clients' queued
  // events) may take.
  int shutdown_seconds = 3;
};

// A parsed SIP plan (docs/configuration.md). Accounts keep file order.
struct Plan {
  TcpSettings tcp;
  GrpcSettings grpc;
  WebSettings web;
  MetricsSettings metrics;
  StateSettings state;
  ProcessSettings process;
  backend::SipConfig sip;
  backend::RtpConfig rtp;
  std::vector<backend::AccountConfig> accounts;
  // Each [*-settings] section as written (its entries "key = value", one a
  // line, sorted), for telling which settings a reload would change.
  std::map<std::string, std::string> settings_text;
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

// The [*-settings] sections that differ between two plans (added, removed or
// changed), in name order: what a reload cannot apply without a restart.
std::vector<std::string> ChangedSettingsSections(const Plan& before, const Plan& after);

// Reads and parses a plan file.
absl::StatusOr<Plan> LoadPlanFile(const std::string& path);

// The command line's settings (flags defined in main.cc); an unset one
// leaves the plan's value (or the default) as it is.
struct CommandLineOverrides {
  std::optional<int> native_port;  // [tcp-settings] port; 0 = any free port
  std::optional<std::string> native_bind;
  std::optional<int> sip_port;
  std::optional<int> sip_thread_nice;  // [sip-settings] thread-nice
  std::optional<int> grpc_port;
  std::optional<int> web_port;
  std::optional<int> metrics_port;  // 0 = no metrics endpoint
  std::optional<int> io_threads;
  std::optional<int> shutdown_seconds;
  std::optional<int> grpc_max_queued_events;
  std::optional<int> web_max_sessions;
  std::optional<int> web_max_message_bytes;
  std::optional<int> web_max_queued_bytes;
  std::optional<int> web_idle_timeout_seconds;
  std::optional<int> web_header_timeout_seconds;
  std::optional<int> web_max_connections_per_address;
};

// Applies the set overrides to `plan`, each checked against its range
// first, with the plan keys' messages naming the flag:
// "--web_max_sessions must be at least 1, got 0". `plan` is unchanged when
// one is out of range. Thread: any.
absl::Status ApplyCommandLine(const CommandLineOverrides& overrides, Plan* plan);

}  // namespace telestra::gateway
