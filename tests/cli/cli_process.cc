#include "tests/cli/cli_process.h"

#include <signal.h>

#include <atomic>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/integration/gateway_process.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

// Subprocess sends stdout and stderr to one log; a shell in between gives
// each its own file and stdin from a file, then becomes telestra (exec),
// so that the child's pid is telestra's.
constexpr char kRedirect[] =
    R"(exec "$0" "$@" <"$TELESTRA_TEST_IN" >"$TELESTRA_TEST_OUT" 2>"$TELESTRA_TEST_ERR")";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  lines.pop_back();  // after the last newline: an unfinished line, or ""
  return lines;
}

}  // namespace

std::vector<std::string> CliResult::OutLines() const { return Lines(out); }

std::string CliResult::Describe() const {
  return absl::StrCat("exit ", exit_code, "\n--- stdout:\n", out, "--- stderr:\n", err);
}

absl::StatusOr<std::unique_ptr<CliProcess>> CliProcess::Start(const std::vector<std::string>& args,
                                                              const Subprocess::Environment& env,
                                                              const std::string& input) {
  static std::atomic<int> runs{0};
  const std::string base = absl::StrCat(TestTempDir(), "/telestra-", getpid(), "-", runs++);
  std::unique_ptr<CliProcess> cli(new CliProcess());
  cli->out_path_ = base + ".out";
  cli->err_path_ = base + ".err";
  std::string in_path = "/dev/null";
  if (!input.empty()) {
    in_path = base + ".in";
    std::ofstream(in_path) << input;
  }
  Subprocess::Environment full = env;
  full["TELESTRA_TEST_IN"] = in_path;
  full["TELESTRA_TEST_OUT"] = cli->out_path_;
  full["TELESTRA_TEST_ERR"] = cli->err_path_;
  std::vector<std::string> argv = {"/bin/sh", "-c", kRedirect, Runfile("cli/telestra")};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(argv, base + ".log", full);
  if (!process.ok()) return process.status();
  cli->process_ = *std::move(process);
  return cli;
}

std::string CliProcess::Out() const { return ReadFileText(out_path_); }
std::string CliProcess::Err() const { return ReadFileText(err_path_); }
std::vector<std::string> CliProcess::OutLines() const { return Lines(Out()); }

bool CliProcess::WaitForLines(const std::function<bool(const std::vector<std::string>&)>& done,
                              absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (done(OutLines())) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

CliResult CliProcess::Wait(absl::Duration timeout) {
  CliResult result;
  absl::StatusOr<int> status = process_->WaitForExit(absl::Now() + timeout);
  if (status.ok()) {
    result.exit_code = *status;
  } else {
    process_->Kill();
  }
  result.out = Out();
  result.err = Err();
  return result;
}

CliResult CliProcess::Interrupt(absl::Duration timeout) {
  kill(process_->pid(), SIGINT);
  return Wait(timeout);
}

CliResult RunCli(const std::vector<std::string>& args, const Subprocess::Environment& env,
                 const std::string& input, absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<CliProcess>> cli = CliProcess::Start(args, env, input);
  if (!cli.ok()) {
    CliResult failed;
    failed.err = std::string(cli.status().message());
    return failed;
  }
  return (*cli)->Wait(timeout);
}

std::string GrpcAddress(int port) { return absl::StrCat("127.0.0.1:", port); }

}  // namespace telestra::testing
