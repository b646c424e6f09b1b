// The one error currency of the client is absl::Status; these helpers mark
// the two kinds that are not the gateway's refusals, and give the exit code.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace telestra::cli {

// The exit codes of telestra (docs/cli.md).
enum ExitCode {
  kExitOk = 0,
  kExitRefused = 1,      // the gateway refused (its error on stderr)
  kExitUsage = 2,        // a bad command line, or a local file that cannot be used
  kExitUnreachable = 3,  // no connection to the gateway, or no answer in time
};

// A bad command line (InvalidArgument). `command` names the command whose
// usage goes with the message ("" for the general usage).
absl::Status UsageError(absl::string_view message, absl::string_view command = "");

// The gateway cannot be reached (Unavailable); `message` names the address.
absl::Status UnreachableError(absl::string_view message);

// 0 for OK; kExitUsage / kExitUnreachable for the errors above; otherwise
// kExitRefused (anything the gateway answered with an error).
ExitCode ExitCodeOf(const absl::Status& status);

// The command a UsageError names ("" when none, or not a UsageError).
std::string UsageCommandOf(const absl::Status& status);

}  // namespace telestra::cli
