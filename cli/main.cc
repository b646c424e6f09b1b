// telestra: the command-line client of the Telestra SIP Gateway's gRPC API
// (docs/cli.md). Parses the command line, runs one command, exits with
// 0 ok, 1 the gateway refused, 2 usage, 3 gateway unreachable.
//
// The flags are parsed by cli/command_line.h rather than Abseil's flags:
// each command has flags of its own, a bad command line must exit 2 (absl's
// parser exits 1), and --password must be refused with the reason.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/audio_command.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/errors.h"
#include "cli/events_command.h"
#include "cli/interrupt.h"
#include "cli/password.h"

namespace telestra::cli {
namespace {

std::optional<std::string> Getenv(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::optional<std::string>(value) : std::nullopt;
}

// Prints a failed command's error on stderr; its exit code.
int Report(const absl::Status& status) {
  const ExitCode code = ExitCodeOf(status);
  switch (code) {
    case kExitOk:
      break;
    case kExitUsage:
      std::cerr << "telestra: " << status.message() << "\n\n" << UsageText(UsageCommandOf(status));
      break;
    case kExitUnreachable:
      std::cerr << "telestra: " << status.message() << "\n";
      break;
    case kExitRefused:
      std::cerr << "telestra: " << status.message() << " ("
                << absl::StatusCodeToString(status.code()) << ")\n";
      break;
  }
  return code;
}

absl::Status Run(Invocation invocation) {
  if (invocation.verb == Verb::kLogin) {
    absl::StatusOr<std::string> password =
        ReadPassword(invocation.command.login().account(), Getenv("TELESTRA_PASSWORD"));
    if (!password.ok()) return password.status();
    invocation.command.mutable_login()->set_pass(*std::move(password));
  }
  // Before the channel's threads exist, so that they inherit the blocked
  // signals: Ctrl-C ends a stream cleanly instead of killing the process.
  std::unique_ptr<InterruptWatcher> interrupts;
  if (invocation.verb == Verb::kEvents || invocation.verb == Verb::kAudio) {
    interrupts = std::make_unique<InterruptWatcher>();
  }
  absl::StatusOr<std::unique_ptr<GatewayConnection>> connection =
      GatewayConnection::Open(invocation.connection);
  if (!connection.ok()) return connection.status();

  if (IsUnaryCommand(invocation.verb)) {
    return RunUnaryCommand(invocation, **connection, std::cout);
  }
  if (invocation.verb == Verb::kEvents) {
    return RunEvents(invocation.events, invocation.json, **connection, *interrupts, std::cout);
  }
  return RunAudio(invocation.audio, invocation.json, **connection, *interrupts, std::cout);
}

int Main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const Environment env{Getenv("TELESTRA_ADDRESS"), Getenv("TELESTRA_TOKEN"),
                        Getenv("TELESTRA_CA")};
  absl::StatusOr<Invocation> invocation = ParseCommandLine(args, env);
  if (!invocation.ok()) return Report(invocation.status());
  if (invocation->verb == Verb::kHelp) {
    std::cout << UsageText(invocation->help_topic);
    return kExitOk;
  }
  return Report(Run(*std::move(invocation)));
}

}  // namespace
}  // namespace telestra::cli

int main(int argc, char** argv) { return telestra::cli::Main(argc, argv); }
