#include "cli/errors.h"

#include <optional>

#include "absl/strings/cord.h"

namespace telestra::cli {
namespace {

// Payloads that mark a status as one of the client's own kinds.
constexpr char kUsagePayload[] = "type.telestra.dev/cli.Usage";  // value: the command
constexpr char kUnreachablePayload[] = "type.telestra.dev/cli.Unreachable";

}  // namespace

absl::Status UsageError(absl::string_view message, absl::string_view command) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord(command));
  return status;
}

absl::Status UnreachableError(absl::string_view message) {
  absl::Status status = absl::UnavailableError(message);
  status.SetPayload(kUnreachablePayload, absl::Cord());
  return status;
}

ExitCode ExitCodeOf(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (status.GetPayload(kUsagePayload).has_value()) return kExitUsage;
  if (status.GetPayload(kUnreachablePayload).has_value()) return kExitUnreachable;
  return kExitRefused;
}

std::string UsageCommandOf(const absl::Status& status) {
  auto command = status.GetPayload(kUsagePayload);  // absl::optional<absl::Cord>
  return command.has_value() ? std::string(*command) : std::string();
}

}  // namespace telestra::cli
