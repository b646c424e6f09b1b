// A child process for tests: own process group, output to a log file.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace telestra::testing {

// Runs one program for a test. The child
//   - gets stdin from /dev/null and stdout+stderr appended to a log file,
//   - is the leader of its own process group (so signals reach everything it
//     forks, e.g. Kamailio's worker processes),
//   - starts with an empty signal mask and default signal dispositions,
//   - inherits the environment plus the given extra variables.
//
// Exit statuses follow the shell convention: the exit code when the child
// exited, 128 + signal number when a signal killed it.
//
// The destructor kills the whole process group if the child still runs.
// So does a SIGTERM, SIGINT, SIGHUP or SIGQUIT that stops the test process
// (Bazel's timeout, Ctrl-C): the first Start installs a handler that
// SIGKILLs the group of every child not yet reaped, then lets the signal
// take its course (the previous handler, or the default action).
// Not thread-safe: use one Subprocess from one thread at a time.
class Subprocess {
 public:
  // Extra environment variables, NAME -> VALUE; they override inherited ones.
  using Environment = std::map<std::string, std::string>;

  // Starts argv[0] (an absolute path, or a name looked up in PATH) with the
  // given arguments. The log file is created if needed and appended to.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const std::string& log_path,
      const Environment& extra_env = {});

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  // The child's pid, which is also its process group id. Stays valid (as a
  // number) after the child has been reaped.
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // True until the child has exited (reaps it when it has).
  bool IsRunning();

  // Waits until the child exits or `deadline` passes (DeadlineExceeded).
  // Returns the exit status; may be called again after the child exited.
  absl::StatusOr<int> WaitForExit(absl::Time deadline);

  // SIGTERM to the child (the group leader only: servers such as Kamailio
  // stop their workers themselves), waits up to `grace`, then SIGKILL to the
  // whole group. Afterwards also kills group members that outlived the
  // leader.
  // Returns the leader's exit status (137 when it had to be killed).
  absl::StatusOr<int> Terminate(absl::Duration grace);

  // SIGKILL to the process group and reaps the leader.
  void Kill();

 private:
  Subprocess(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}

  // Sends `sig` to the process group; ESRCH is not an error.
  absl::Status SignalGroup(int sig);
  // SIGKILL to what is left of the group after the leader was reaped, then
  // waits (briefly) until the group is empty.
  void KillStragglers();

  pid_t pid_;
  std::string log_path_;
  bool exited_ = false;
  int exit_status_ = -1;
  bool group_cleaned_ = false;
};

}  // namespace telestra::testing
