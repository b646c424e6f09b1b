#include "tests/support/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

extern char** environ;

namespace telestra::testing {
namespace {

// How long to keep waiting for a SIGKILLed leader (it cannot ignore SIGKILL;
// this only guards against a process stuck in the kernel).
constexpr absl::Duration kKillWait = absl::Seconds(10);
// How long to wait for group members that outlive their leader to vanish.
constexpr absl::Duration kStragglerWait = absl::Seconds(2);
// Poll interval bounds while waiting for a child.
constexpr absl::Duration kMinPoll = absl::Microseconds(200);
constexpr absl::Duration kMaxPoll = absl::Milliseconds(10);

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string ErrnoText(int err) { return absl::StrCat(strerror(err), " (", err, ")"); }

// The inherited environment with `extra` added or overriding.
std::vector<std::string> BuildEnvironment(const Subprocess::Environment& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    if (extra.count(name) == 0) env.push_back(std::move(entry));
  }
  for (const auto& [name, value] : extra) env.push_back(absl::StrCat(name, "=", value));
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The process groups of the children that have not been reaped yet, so
// that a test or benchmark stopped by a signal (Bazel's SIGTERM at a
// timeout, Ctrl-C) does not leave Kamailio, sipp or a gateway running: the
// children are in process groups of their own, which such a signal does not
// reach. A reaped leader's slot is cleared at once (its pid, and so the
// group id, may then be reused).
constexpr int kMaxLiveChildren = 1024;
std::atomic<pid_t> live_groups[kMaxLiveChildren];
constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
struct sigaction previous_actions[NSIG];

void KillLiveGroups(int sig, siginfo_t* info, void* context) {
  // Only async-signal-safe calls here: kill, sigaction, raise.
  for (std::atomic<pid_t>& slot : live_groups) {
    pid_t group = slot.load(std::memory_order_relaxed);
    if (group > 0) kill(-group, SIGKILL);
  }
  const struct sigaction& previous = previous_actions[sig];
  if (previous.sa_flags & SA_SIGINFO) {
    previous.sa_sigaction(sig, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
  } else {
    // The default action (terminate), once this handler returns.
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

// Installs KillLiveGroups for the stop signals this process does not ignore.
void InstallStopHandlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : kStopSignals) {
      struct sigaction current;
      if (sigaction(sig, nullptr, &current) != 0 || current.sa_handler == SIG_IGN) continue;
      previous_actions[sig] = current;
      struct sigaction action = {};
      action.sa_sigaction = &KillLiveGroups;
      action.sa_flags = SA_SIGINFO | SA_RESTART;
      sigemptyset(&action.sa_mask);
      sigaction(sig, &action, nullptr);
    }
  });
}

void AddLiveGroup(pid_t group) {
  for (std::atomic<pid_t>& slot : live_groups) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, group)) return;
  }
  // More than kMaxLiveChildren at once: this one is only cleaned up by its
  // Subprocess, not on a signal.
}

void RemoveLiveGroup(pid_t group) {
  for (std::atomic<pid_t>& slot : live_groups) {
    pid_t expected = group;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

// RAII for the posix_spawn attribute objects.
class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions_);
    posix_spawnattr_init(&attr_);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attr_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  posix_spawn_file_actions_t* actions() { return &actions_; }
  posix_spawnattr_t* attr() { return &attr_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(const std::vector<std::string>& argv,
                                                              const std::string& log_path,
                                                              const Environment& extra_env) {
  if (argv.empty() || argv[0].empty()) {
    return absl::InvalidArgumentError("Subprocess::Start: empty argv");
  }
  // Opened here (close-on-exec) so a bad path is reported clearly; dup2 in
  // the child clears the flag on fds 1 and 2.
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open log file ", log_path, ": ", ErrnoText(errno)));
  }

  SpawnSetup setup;
  int rc =
      posix_spawn_file_actions_addopen(setup.actions(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(setup.actions(), log_fd, STDOUT_FILENO);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(setup.actions(), log_fd, STDERR_FILENO);

  // Own process group (pgid = child's pid), clean signal state.
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGALRM, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD}) {
    sigaddset(&defaults, sig);
  }
  if (rc == 0) rc = posix_spawnattr_setpgroup(setup.attr(), 0);
  if (rc == 0) rc = posix_spawnattr_setsigmask(setup.attr(), &empty_mask);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(setup.attr(), &defaults);
  if (rc == 0) {
    rc = posix_spawnattr_setflags(
        setup.attr(), POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  if (rc != 0) {
    close(log_fd);
    return absl::InternalError(absl::StrCat("posix_spawn set-up failed: ", ErrnoText(rc)));
  }

  std::vector<std::string> args = argv;
  std::vector<std::string> env = BuildEnvironment(extra_env);
  std::vector<char*> c_args = CStrings(args);
  std::vector<char*> c_env = CStrings(env);

  InstallStopHandlers();
  pid_t pid = -1;
  // glibc's posix_spawn reports exec failures (ENOENT, EACCES) as its result.
  if (argv[0].find('/') != std::string::npos) {
    rc = posix_spawn(&pid, c_args[0], setup.actions(), setup.attr(), c_args.data(), c_env.data());
  } else {
    rc = posix_spawnp(&pid, c_args[0], setup.actions(), setup.attr(), c_args.data(), c_env.data());
  }
  close(log_fd);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("cannot start `", absl::StrJoin(argv, " "), "`: ", ErrnoText(rc)));
  }
  AddLiveGroup(pid);
  return std::unique_ptr<Subprocess>(new Subprocess(pid, log_path));
}

Subprocess::~Subprocess() {
  if (!exited_) Kill();
}

bool Subprocess::IsRunning() {
  if (exited_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    exit_status_ = DecodeWaitStatus(status);
    RemoveLiveGroup(pid_);
    return false;
  }
  if (r < 0 && errno == ECHILD) {
    // Reaped elsewhere (should not happen); treat as gone.
    exited_ = true;
    RemoveLiveGroup(pid_);
    return false;
  }
  return true;
}

absl::StatusOr<int> Subprocess::WaitForExit(absl::Time deadline) {
  absl::Duration poll = kMinPoll;
  while (true) {
    if (!IsRunning()) return exit_status_;
    absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still running at the deadline"));
    }
    absl::SleepFor(std::min(poll, deadline - now));
    poll = std::min(poll * 2, kMaxPoll);
  }
}

absl::Status Subprocess::SignalGroup(int sig) {
  if (kill(-pid_, sig) != 0 && errno != ESRCH) {
    return absl::InternalError(
        absl::StrCat("kill(-", pid_, ", ", sig, ") failed: ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

void Subprocess::KillStragglers() {
  // The pgid stays in use while any member lives, so it cannot have been
  // reused by an unrelated group yet; once it is empty, ESRCH.
  if (group_cleaned_) return;
  group_cleaned_ = true;
  if (kill(-pid_, SIGKILL) != 0) return;
  absl::Time deadline = absl::Now() + kStragglerWait;
  absl::Duration poll = kMinPoll;
  while (kill(-pid_, 0) == 0 && absl::Now() < deadline) {
    absl::SleepFor(poll);
    poll = std::min(poll * 2, kMaxPoll);
  }
}

absl::StatusOr<int> Subprocess::Terminate(absl::Duration grace) {
  if (!exited_) {
    // SIGTERM goes to the leader only: a server like Kamailio stops its
    // workers itself and waits for them; the group gets SIGKILL only if the
    // leader does not exit in time.
    if (kill(pid_, SIGTERM) != 0 && errno != ESRCH) {
      return absl::InternalError(
          absl::StrCat("kill(", pid_, ", SIGTERM) failed: ", ErrnoText(errno)));
    }
    absl::StatusOr<int> status = WaitForExit(absl::Now() + grace);
    if (!status.ok()) {
      if (!absl::IsDeadlineExceeded(status.status())) return status.status();
      absl::Status killed = SignalGroup(SIGKILL);
      if (!killed.ok()) return killed;
      status = WaitForExit(absl::Now() + kKillWait);
      if (!status.ok()) return status.status();
    }
  }
  KillStragglers();
  return exit_status_;
}

void Subprocess::Kill() {
  if (!exited_) {
    SignalGroup(SIGKILL).IgnoreError();
    WaitForExit(absl::Now() + kKillWait).IgnoreError();
  }
  KillStragglers();
}

}  // namespace telestra::testing
