// Runs the built telestra binary (//cli:telestra, a data dependency) as a
// child process for the integration tests: its stdout and stderr each in a
// file of their own, stdin from a given text.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/subprocess.h"

namespace telestra::testing {

// What a finished run printed, and how it ended.
struct CliResult {
  int exit_code = -1;  // 128 + signal when killed; -1 when it did not end in time
  std::string out;
  std::string err;
  // out's lines without their newlines.
  std::vector<std::string> OutLines() const;
  // For failure messages.
  std::string Describe() const;
};

// One running telestra. Thread: the test's thread.
class CliProcess {
 public:
  // Starts telestra with `args` and `env` added to the environment; `input`
  // is its stdin (empty: /dev/null).
  static absl::StatusOr<std::unique_ptr<CliProcess>> Start(const std::vector<std::string>& args,
                                                           const Subprocess::Environment& env = {},
                                                           const std::string& input = "");

  std::string Out() const;
  std::string Err() const;
  std::vector<std::string> OutLines() const;

  // Waits until `done` holds for stdout's complete lines (polling the
  // file), or `timeout` passes (false).
  bool WaitForLines(const std::function<bool(const std::vector<std::string>&)>& done,
                    absl::Duration timeout = absl::Seconds(10));

  // Waits for the end (killing it after `timeout`): the result.
  CliResult Wait(absl::Duration timeout = absl::Seconds(20));

  // SIGINT, as Ctrl-C sends it, then Wait.
  CliResult Interrupt(absl::Duration timeout = absl::Seconds(10));

  pid_t pid() const { return process_->pid(); }

 private:
  CliProcess() = default;
  std::string out_path_;
  std::string err_path_;
  std::unique_ptr<Subprocess> process_;
};

// Runs telestra to its end (killed after `timeout`).
CliResult RunCli(const std::vector<std::string>& args, const Subprocess::Environment& env = {},
                 const std::string& input = "", absl::Duration timeout = absl::Seconds(20));

// The gRPC address of a gateway on this host: "127.0.0.1:PORT".
std::string GrpcAddress(int port);

}  // namespace telestra::testing
