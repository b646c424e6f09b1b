#include "tests/integration/gateway_process.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "tests/support/ports.h"

namespace telestra::testing {

std::string Runfile(const std::string& path) {
  const char* root = getenv("TEST_SRCDIR");
  return absl::StrCat(root != nullptr ? root : ".", "/telestra/", path);
}

absl::StatusOr<std::unique_ptr<GatewayProcess>> GatewayProcess::Start(
    const GatewayOptions& options) {
  std::unique_ptr<GatewayProcess> gateway(new GatewayProcess());
  const char* tmp = getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/gateway.XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  gateway->dir_ = pattern;
  gateway->sip_port_ = PickFreeUdpTcpPort();
  // Distinct ports (separate picks can return the same one twice).
  std::vector<int> ports = PickFreeTcpPorts(4, {gateway->sip_port_});
  if (gateway->sip_port_ == 0 || ports.empty()) {
    return absl::UnavailableError("no free loopback ports for the gateway");
  }
  gateway->native_port_ = ports[0];
  gateway->grpc_port_ = ports[1];
  gateway->web_port_ = ports[2];
  gateway->metrics_port_ = ports[3];

  std::string plan =
      absl::StrCat("[tcp-settings]\nport = ", gateway->native_port_, "\nbind = 127.0.0.1\n",
                   absl::StrJoin(options.tcp_settings, "\n"),
                   "\n\n[sip-settings]\nbind = 127.0.0.1\nport = ", gateway->sip_port_, "\n",
                   absl::StrJoin(options.sip_settings, "\n"), "\n\n");
  absl::StrAppend(&plan, "[grpc-settings]\nport = ", gateway->grpc_port_, "\n",
                  absl::StrJoin(options.grpc_settings, "\n"),
                  "\n\n[web-settings]\nport = ", gateway->web_port_, "\n",
                  absl::StrJoin(options.web_settings, "\n"), "\n\n");
  absl::StrAppend(&plan, "[metrics-settings]\nport = ", gateway->metrics_port_, "\n\n");
  if (!options.rtp_settings.empty()) {
    absl::StrAppend(&plan, "[rtp-settings]\n", absl::StrJoin(options.rtp_settings, "\n"), "\n\n");
  }
  if (!options.state_settings.empty()) {
    mkdir(gateway->state_dir().c_str(), 0700);
    absl::StrAppend(&plan, "[state-settings]\n",
                    absl::StrReplaceAll(absl::StrJoin(options.state_settings, "\n"),
                                        {{"STATE", gateway->state_dir()}}),
                    "\n\n");
  }
  for (const TestAccount& account : options.accounts) {
    absl::StrAppend(&plan, "[", account.name, "]\nuser = ", account.user, "\npass = ", account.pass,
                    "\nserver = ", account.server, "\ndisplay-name = ", account.name,
                    "\nregister = ", account.register_on_start ? "true" : "false", "\n");
    auto extra = options.account_settings.find(account.name);
    if (extra != options.account_settings.end()) {
      absl::StrAppend(&plan, absl::StrJoin(extra->second, "\n"), "\n");
    }
    absl::StrAppend(&plan, "\n");
  }
  std::string plan_path = absl::StrCat(gateway->dir_, "/plan.ini");
  std::ofstream(plan_path) << plan;
  gateway->log_path_ = absl::StrCat(gateway->dir_, "/gateway.log");

  // Tests run with Abseil's Mutex deadlock detection, which the service
  // leaves off (gateway/main.cc); a benchmark turns it off again with
  // --mutex_deadlock_detection=false in extra_args.
  std::vector<std::string> argv = {Runfile("gateway/telestra_gateway"),
                                   absl::StrCat("--plan=", plan_path), "--log_level=debug",
                                   "--mutex_deadlock_detection"};
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  gateway->argv_ = argv;
  gateway->env_ = options.env;
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(argv, gateway->log_path_, options.env);
  if (!process.ok()) return process.status();
  gateway->process_ = *std::move(process);
  if (!WaitForTcpPort(gateway->native_port_, absl::Seconds(10))) {
    return absl::UnavailableError(
        absl::StrCat("gateway did not open its native port; log:\n", gateway->ReadLog()));
  }
  return gateway;
}

absl::Status GatewayProcess::Restart(int signal) {
  if (signal == SIGKILL) {
    process_->Kill();
  } else {
    ::kill(process_->pid(), signal);
    absl::StatusOr<int> exited = process_->WaitForExit(absl::Now() + absl::Seconds(10));
    if (!exited.ok()) return exited.status();
  }
  std::ofstream(log_path_, std::ios::app) << "==== restarted after signal " << signal << " ====\n";
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(argv_, log_path_, env_);
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  if (!WaitForTcpPort(native_port_, absl::Seconds(10))) {
    return absl::UnavailableError(
        absl::StrCat("gateway did not open its native port again; log:\n", ReadLog()));
  }
  return absl::OkStatus();
}

GatewayProcess::~GatewayProcess() {
  if (process_ && process_->IsRunning()) (void)process_->Terminate(absl::Seconds(5));
}

std::string GatewayProcess::ReadLog() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

GatewayOptions TwoAccounts(const std::string& server, GatewayOptions options) {
  options.accounts = {{"account-1", "3001", "sip3001", server, true},
                      {"account-2", "3002", "sip3002", server, true}};
  return options;
}

namespace {

// Calls `read` with /proc/PID/task/TID/`file` of each thread of `pid`.
void ForEachThreadFile(int pid, const char* file, const std::function<void(std::ifstream&)>& read) {
  std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* tasks = opendir(dir.c_str());
  if (tasks == nullptr) return;
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(absl::StrCat(dir, "/", entry->d_name, "/", file));
    read(in);
  }
  closedir(tasks);
}

}  // namespace

std::map<std::string, std::vector<std::string>> ThreadStats(int pid) {
  std::map<std::string, std::vector<std::string>> stats;
  ForEachThreadFile(pid, "stat", [&](std::ifstream& stat) {
    std::string line;
    std::getline(stat, line);
    size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) return;
    std::istringstream rest(line.substr(close + 2));  // from field 3 (state) on
    std::vector<std::string>& fields = stats[line.substr(open + 1, close - open - 1)];
    for (std::string field; rest >> field;) fields.push_back(field);
  });
  return stats;
}

std::map<std::string, int64_t> ThreadSwitches(int pid) {
  std::map<std::string, int64_t> switches;
  ForEachThreadFile(pid, "status", [&](std::ifstream& status) {
    std::string name;
    int64_t count = 0;
    for (std::string line; std::getline(status, line);) {
      if (absl::StartsWith(line, "Name:")) {
        name = std::string(absl::StripAsciiWhitespace(line.substr(5)));
      } else if (absl::StrContains(line, "ctxt_switches:")) {
        int64_t value = 0;
        if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)), &value)) {
          count += value;
        }
      }
    }
    if (!name.empty()) switches[name] += count;
  });
  return switches;
}

}  // namespace telestra::testing
