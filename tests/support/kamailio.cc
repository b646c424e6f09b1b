#include "tests/support/kamailio.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/support/ports.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

constexpr char kKamailio[] = "/usr/sbin/kamailio";
constexpr char kKamcmd[] = "/usr/sbin/kamcmd";
constexpr char kAddress[] = "127.0.0.1";
constexpr char kRunfilesConfig[] = "telestra/examples/kamailio.cfg";
constexpr int kStartAttempts = 3;
constexpr absl::Duration kStopGrace = absl::Seconds(5);
constexpr absl::Duration kKamcmdTimeout = absl::Seconds(5);
// One readiness probe (kamcmd core.version) may take at most this long.
constexpr absl::Duration kProbeTimeout = absl::Seconds(2);
constexpr absl::Duration kMinPoll = absl::Milliseconds(2);
constexpr absl::Duration kMaxPoll = absl::Milliseconds(20);
// sun_path holds 108 bytes including the NUL; stay well below.
constexpr size_t kMaxSocketPath = 100;
constexpr size_t kLogTailBytes = 4000;

std::string GetEnv(const char* name) {
  const char* value = getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

bool Readable(const std::string& path) { return !path.empty() && access(path.c_str(), R_OK) == 0; }

absl::StatusOr<std::string> MakeTempDir(const std::string& parent, const std::string& prefix) {
  std::string pattern = absl::StrCat(parent, "/", prefix, "XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp(", pattern, ") failed: ", strerror(errno)));
  }
  return pattern;
}

void RemoveTree(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
}

timeval SocketTimeout(absl::Duration d) {
  return absl::ToTimeval(std::max(d, absl::Milliseconds(1)));
}

// Sends an out-of-dialog OPTIONS to the proxy itself over TCP and waits for
// any SIP response. Kamailio forks its TCP main process last, so an answer
// over TCP means every process is up (and handles SIGTERM): stopping a
// Kamailio that is still starting can leave it hanging.
absl::Status SipOptionsOverTcp(int port, absl::Time deadline) {
  static int probe = 0;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect: ", strerror(err)));
  }
  sockaddr_in local = {};
  socklen_t local_len = sizeof(local);
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len);
  timeval timeout = SocketTimeout(deadline - absl::Now());
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

  std::string id = absl::StrCat(getpid(), "-", ++probe);
  std::string request = absl::StrCat(
      "OPTIONS sip:127.0.0.1:", port, ";transport=tcp SIP/2.0\r\n",
      "Via: SIP/2.0/TCP 127.0.0.1:", ntohs(local.sin_port), ";branch=z9hG4bK-telestra-probe-", id,
      "\r\n", "Max-Forwards: 70\r\n", "From: <sip:probe@127.0.0.1>;tag=probe-", id, "\r\n",
      "To: <sip:127.0.0.1:", port, ">\r\n", "Call-ID: telestra-probe-", id, "@127.0.0.1\r\n",
      "CSeq: 1 OPTIONS\r\n", "Content-Length: 0\r\n\r\n");
  std::string response;
  bool sent = send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
              static_cast<ssize_t>(request.size());
  while (sent && response.find("\r\n\r\n") == std::string::npos && absl::Now() < deadline) {
    char buffer[2048];
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  if (absl::StartsWith(response, "SIP/2.0 ")) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("no SIP answer over TCP yet", response.empty() ? "" : ": ", response));
}

}  // namespace

absl::StatusOr<std::unique_ptr<KamailioProcess>> KamailioProcess::Start() {
  return Start(KamailioOptions());
}

absl::StatusOr<std::unique_ptr<KamailioProcess>> KamailioProcess::Start(
    const KamailioOptions& options) {
  std::unique_ptr<KamailioProcess> kamailio(new KamailioProcess(options));
  absl::Status prepared = kamailio->Prepare();
  if (!prepared.ok()) return prepared;

  absl::Status launched;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    kamailio->port_ = PickFreeUdpTcpPort();
    if (kamailio->port_ == 0) {
      return absl::UnavailableError("no free UDP+TCP port on 127.0.0.1");
    }
    launched = kamailio->Launch();
    if (launched.ok()) return kamailio;
    kamailio->Stop().IgnoreError();
    // Retry with another port only when Kamailio died at start-up (e.g.
    // somebody took the port in between); a hang will not get better.
    if (!absl::IsUnavailable(launched)) break;
  }
  return launched;
}

KamailioProcess::~KamailioProcess() {
  absl::Status stopped = Stop();
  if (!stopped.ok()) std::cerr << "KamailioProcess: " << stopped << "\n";
  if (!ctl_dir_.empty()) RemoveTree(ctl_dir_);
  if (remove_run_dir_) RemoveTree(run_dir_);
}

std::string KamailioProcess::server() const { return absl::StrCat(kAddress, ":", port_); }

absl::Status KamailioProcess::Prepare() {
  // The config: explicit option, runfiles, $TELESTRA_KAMAILIO_CFG, then the
  // working directory (a source checkout).
  std::vector<std::string> candidates = {options_.config_path};
  if (options_.config_path.empty()) {
    for (const char* root : {"TEST_SRCDIR", "RUNFILES_DIR"}) {
      std::string dir = GetEnv(root);
      if (!dir.empty()) candidates.push_back(absl::StrCat(dir, "/", kRunfilesConfig));
    }
    candidates.push_back(GetEnv("TELESTRA_KAMAILIO_CFG"));
    candidates.push_back("examples/kamailio.cfg");
  }
  for (const std::string& candidate : candidates) {
    if (Readable(candidate)) {
      config_path_ = candidate;
      break;
    }
  }
  if (config_path_.empty()) {
    return absl::NotFoundError(
        options_.config_path.empty()
            ? "examples/kamailio.cfg not found in the runfiles ($TEST_SRCDIR) nor "
              "through $TELESTRA_KAMAILIO_CFG"
            : absl::StrCat("cannot read ", options_.config_path));
  }
  if (access(kKamailio, X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(kKamailio, " is not installed"));
  }

  std::string tmp_root = GetEnv("TEST_TMPDIR");
  remove_run_dir_ = tmp_root.empty();  // Bazel cleans $TEST_TMPDIR itself.
  if (tmp_root.empty()) tmp_root = "/tmp";
  absl::StatusOr<std::string> run_dir = MakeTempDir(tmp_root, "kamailio-");
  if (!run_dir.ok()) return run_dir.status();
  run_dir_ = *run_dir;
  log_path_ = absl::StrCat(run_dir_, "/kamailio.log");

  ctl_socket_ = absl::StrCat(run_dir_, "/ctl");
  if (ctl_socket_.size() > kMaxSocketPath) {
    // Bazel's $TEST_TMPDIR is too deep for a unix socket path.
    absl::StatusOr<std::string> ctl_dir = MakeTempDir("/tmp", "telestra-kam-");
    if (!ctl_dir.ok()) return ctl_dir.status();
    ctl_dir_ = *ctl_dir;
    ctl_socket_ = absl::StrCat(ctl_dir_, "/ctl");
  }
  return absl::OkStatus();
}

absl::Status KamailioProcess::Launch() {
  std::string pid_file = absl::StrCat(run_dir_, "/kamailio.pid");
  unlink(pid_file.c_str());
  unlink(ctl_socket_.c_str());

  // -DD: foreground, but still fork the TCP and worker processes (a single
  // -D serves UDP only). -E: log to stderr, i.e. the log file. Root needs no
  // extra flags: without -u/-g Kamailio keeps running as the invoking user.
  std::vector<std::string> argv = {
      kKamailio,
      "-DD",
      "-E",
      "-f",
      config_path_,
      "-A",
      absl::StrCat("SIP_PORT=", port_),
      "-A",
      absl::StrCat("SIP_ADDR=", kAddress),
      // A quoted string define: the quotes are part of the value.
      "-A",
      absl::StrCat("CTL_SOCK=\"", ctl_socket_, "\""),
      "-P",
      pid_file,
      "-Y",
      run_dir_,
      "-w",
      run_dir_,
      "-m",
      absl::StrCat(options_.shm_mb),
      "-M",
      absl::StrCat(options_.pkg_mb),
  };
  if (!options_.shm_manager.empty()) {
    argv.insert(argv.end(), {"-x", options_.shm_manager});
  }
  if (!options_.pkg_manager.empty()) {
    argv.insert(argv.end(), {"-X", options_.pkg_manager});
  }
  {
    std::ofstream log(log_path_, std::ios::app);
    log << "==== telestra: starting";
    for (const std::string& arg : argv) log << " " << arg;
    log << "\n";
  }
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(argv, log_path_);
  if (!process.ok()) return process.status();
  process_ = std::move(*process);
  pid_ = process_->pid();
  return WaitUntilReady(absl::Now() + options_.start_timeout);
}

absl::Status KamailioProcess::WaitUntilReady(absl::Time deadline) {
  absl::Duration poll = kMinPoll;
  absl::Status last_probe = absl::UnavailableError("no answer yet");
  while (true) {
    if (!process_->IsRunning()) {
      absl::StatusOr<int> status = process_->WaitForExit(absl::Now());
      return absl::UnavailableError(absl::StrCat("kamailio exited during start-up with status ",
                                                 status.ok() ? *status : -1, " (port ", port_,
                                                 "); log ", log_path_, ":\n", LogTail()));
    }
    // The SIP and ctl sockets are bound before Kamailio forks its processes,
    // so connecting proves little: wait for SIP answers over TCP (the TCP
    // main process is forked last) and for kamcmd (the ctl process).
    if (WaitForTcpPort(port_, absl::ZeroDuration())) {
      last_probe = SipOptionsOverTcp(port_, std::min(deadline, absl::Now() + kProbeTimeout));
      if (last_probe.ok() && access(ctl_socket_.c_str(), F_OK) == 0) {
        absl::StatusOr<std::string> version =
            KamcmdUntil({"core.version"}, std::min(deadline, absl::Now() + kProbeTimeout));
        if (version.ok()) return absl::OkStatus();
        last_probe = version.status();
      }
    }
    absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "kamailio (port ", port_, ") not ready within ",
          absl::FormatDuration(options_.start_timeout), "; last probe: ", last_probe.ToString(),
          "; log ", log_path_, ":\n", LogTail()));
    }
    absl::SleepFor(std::min(poll, deadline - now));
    poll = std::min(poll * 2, kMaxPoll);
  }
}

bool KamailioProcess::IsRunning() { return process_ != nullptr && process_->IsRunning(); }

absl::Status KamailioProcess::Stop() {
  if (process_ == nullptr) return absl::OkStatus();
  absl::StatusOr<int> status = process_->Terminate(kStopGrace);
  process_.reset();
  unlink(ctl_socket_.c_str());
  if (!status.ok()) return status.status();
  if (*status == 0 || *status == 128 + SIGTERM) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("kamailio (pid ", pid_, ") ended with status ", *status,
                                          "; log ", log_path_, ":\n", LogTail()));
}

absl::Status KamailioProcess::Restart() {
  if (port_ == 0) return absl::FailedPreconditionError("kamailio was never started");
  // A bad exit status is irrelevant here: the process is gone either way.
  Stop().IgnoreError();
  absl::Status launched = Launch();
  if (!launched.ok()) Stop().IgnoreError();
  return launched;
}

absl::StatusOr<std::string> KamailioProcess::Kamcmd(const std::vector<std::string>& args) {
  return KamcmdUntil(args, absl::Now() + kKamcmdTimeout);
}

absl::StatusOr<std::string> KamailioProcess::KamcmdUntil(const std::vector<std::string>& args,
                                                         absl::Time deadline) {
  if (ctl_socket_.empty()) return absl::FailedPreconditionError("kamailio not prepared");
  std::vector<std::string> argv = {kKamcmd, "-s", absl::StrCat("unix:", ctl_socket_)};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out_path = absl::StrCat(run_dir_, "/kamcmd-", ++kamcmd_count_, ".out");

  absl::StatusOr<std::unique_ptr<Subprocess>> kamcmd = Subprocess::Start(argv, out_path);
  if (!kamcmd.ok()) return kamcmd.status();
  absl::StatusOr<int> status = (*kamcmd)->WaitForExit(deadline);
  if (!status.ok()) (*kamcmd)->Kill();
  std::string output = ReadFileText(out_path);
  unlink(out_path.c_str());
  std::string command = absl::StrJoin(args, " ");
  if (!status.ok()) {
    return absl::DeadlineExceededError(
        absl::StrCat("kamcmd ", command, " timed out; output: ", output));
  }
  if (*status != 0) {
    return absl::InternalError(
        absl::StrCat("kamcmd ", command, " exited with ", *status, ": ", output));
  }
  return output;
}

absl::StatusOr<int> KamailioProcess::CountRegistered(const std::string& user) {
  absl::StatusOr<std::string> dump = Kamcmd({"ul.dump"});
  if (!dump.ok()) return dump.status();
  return CountContactsInUlDump(*dump, user);
}

std::string KamailioProcess::LogTail() const {
  std::string log = ReadFileText(log_path_);
  if (log.size() > kLogTailBytes) log = "..." + log.substr(log.size() - kLogTailBytes);
  return log;
}

int CountContactsInUlDump(const std::string& ul_dump, const std::string& user) {
  // ul.dump prints, per AoR:
  //   Info: {
  //     AoR: 3001
  //     HashID: ...
  //     Contacts: {
  //       Contact: {
  //         Address: sip:3001@127.0.0.1:5060
  //         Expires: 3600          (or "expired" / "permanent")
  //         ...
  //       }
  //     }
  //   }
  std::string aor;
  bool in_contact = false;
  bool live = true;
  int count = 0;
  for (absl::string_view line : absl::StrSplit(ul_dump, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "AoR: ")) {
      aor = std::string(line);
    } else if (line == "Contact: {") {
      in_contact = true;
      live = true;
    } else if (in_contact && absl::ConsumePrefix(&line, "Expires: ")) {
      live = line != "expired" && line != "deleted";
    } else if (in_contact && line == "}") {
      in_contact = false;
      bool matches = aor == user || absl::StartsWith(aor, absl::StrCat(user, "@"));
      if (matches && live) ++count;
    }
  }
  return count;
}

}  // namespace telestra::testing
