#include "cli/errors.h"

#include "gtest/gtest.h"

namespace telestra::cli {
namespace {

TEST(ErrorsTest, ExitCodesTellUsageUnreachableAndRefusalsApart) {
  EXPECT_EQ(ExitCodeOf(absl::OkStatus()), kExitOk);
  EXPECT_EQ(ExitCodeOf(UsageError("bad", "call")), kExitUsage);
  EXPECT_EQ(ExitCodeOf(UnreachableError("no gateway at x")), kExitUnreachable);
  // The gateway's own INVALID_ARGUMENT and UNAVAILABLE are refusals.
  EXPECT_EQ(ExitCodeOf(absl::InvalidArgumentError("Missing field: num")), kExitRefused);
  EXPECT_EQ(ExitCodeOf(absl::UnavailableError("Gateway shutting down")), kExitRefused);
  EXPECT_EQ(ExitCodeOf(absl::UnauthenticatedError("Invalid bearer token")), kExitRefused);
}

TEST(ErrorsTest, UsageErrorsKeepTheirCommandAndMessage) {
  absl::Status status = UsageError("too few arguments", "status");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "too few arguments");
  EXPECT_EQ(UsageCommandOf(status), "status");
  EXPECT_EQ(UsageCommandOf(UsageError("no command")), "");
  EXPECT_EQ(UsageCommandOf(absl::InvalidArgumentError("x")), "");
}

}  // namespace
}  // namespace telestra::cli
