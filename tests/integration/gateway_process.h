#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/subprocess.h"

namespace telestra::testing {

struct TestAccount {
  std::string name;
  std::string user;
  std::string pass;
  std::string server;  // host:port
  bool register_on_start = true;
};

struct GatewayOptions {
  std::vector<TestAccount> accounts;
  // Extra lines for [tcp-settings] (e.g. "max-clients = 2").
  std::vector<std::string> tcp_settings;
  std::vector<std::string> sip_settings;
  // Extra lines for [grpc-settings] / [web-settings] / [rtp-settings].
  std::vector<std::string> grpc_settings;
  std::vector<std::string> web_settings;
  std::vector<std::string> rtp_settings;
  // Lines for [state-settings] (the journal, docs/restart.md); none: no
  // such section. "dir = STATE" names a directory the fixture makes in the
  // gateway's own (kept across Restart).
  std::vector<std::string> state_settings;
  // Extra key lines per account, by account name (e.g. "audio = tone:440").
  std::map<std::string, std::vector<std::string>> account_settings;
  std::vector<std::string> extra_args;
  // Extra environment for the gateway process.
  Subprocess::Environment env;
};

// account-1 (3001/sip3001) and account-2 (3002/sip3002) at `server` (the
// demo users of examples/kamailio.cfg), both logging in at start, with
// `options`' other settings.
GatewayOptions TwoAccounts(const std::string& server, GatewayOptions options = {});

// The real gateway binary (//gateway:telestra_gateway from the runfiles) with
// a plan written for the test, on free loopback ports.
class GatewayProcess {
 public:
  static absl::StatusOr<std::unique_ptr<GatewayProcess>> Start(const GatewayOptions& options);
  ~GatewayProcess();

  int native_port() const { return native_port_; }
  int sip_port() const { return sip_port_; }
  int grpc_port() const { return grpc_port_; }
  int web_port() const { return web_port_; }
  int metrics_port() const { return metrics_port_; }
  const std::string& dir() const { return dir_; }
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;
  Subprocess& process() { return *process_; }
  // The journal's directory ("dir = STATE" in state_settings).
  std::string state_dir() const { return dir_ + "/state"; }

  // Stops the gateway with `signal` (SIGKILL: a crash; SIGTERM: a graceful
  // stop, waited for up to 10 s) and starts it again with the same plan and
  // ports, its log appended to the same file after a marker line. Error
  // when it does not open its native port again within 10 s.
  absl::Status Restart(int signal);

 private:
  GatewayProcess() = default;
  int native_port_ = 0;
  int sip_port_ = 0;
  int grpc_port_ = 0;
  int web_port_ = 0;
  int metrics_port_ = 0;
  std::string dir_;
  std::string log_path_;
  std::vector<std::string> argv_;
  Subprocess::Environment env_;
  std::unique_ptr<Subprocess> process_;
};

// The runfiles path of a file of this workspace.
std::string Runfile(const std::string& path);

// The fields of /proc/PID/task/TID/stat of each of `pid`'s threads, by
// thread name, from field 3 (state) on: element i is field i + 3 (so nice,
// field 19, is element 16; utime and stime, fields 14 and 15, are 11 and 12).
std::map<std::string, std::vector<std::string>> ThreadStats(int pid);

// How many times each of `pid`'s threads has been switched out (voluntary
// + involuntary context switches, /proc/PID/task/TID/status), by thread
// name: a thread that sleeps and wakes once per request counts one each.
std::map<std::string, int64_t> ThreadSwitches(int pid);

}  // namespace telestra::testing
