#include "cli/password.h"

#include <sstream>

#include "cli/errors.h"
#include "gtest/gtest.h"

namespace telestra::cli {
namespace {

TEST(PasswordTest, EnvironmentFirstThenPromptOnATerminalElseStdin) {
  EXPECT_EQ(ChoosePasswordSource(true, true), PasswordSource::kEnvironment);
  EXPECT_EQ(ChoosePasswordSource(true, false), PasswordSource::kEnvironment);
  EXPECT_EQ(ChoosePasswordSource(false, true), PasswordSource::kPrompt);
  EXPECT_EQ(ChoosePasswordSource(false, false), PasswordSource::kStdinLine);
}

TEST(PasswordTest, ReadsOneLineWithoutItsEnding) {
  std::istringstream unix_line("sip3001\nnext line\n");
  EXPECT_EQ(*ReadPasswordLine(unix_line), "sip3001");
  std::istringstream dos_line("sip3001\r\n");
  EXPECT_EQ(*ReadPasswordLine(dos_line), "sip3001");
  std::istringstream no_newline("with spaces ok");
  EXPECT_EQ(*ReadPasswordLine(no_newline), "with spaces ok");
  std::istringstream empty_line("\n");
  EXPECT_EQ(*ReadPasswordLine(empty_line), "");
}

TEST(PasswordTest, NoLineAtAllIsAUsageError) {
  std::istringstream nothing("");
  absl::StatusOr<std::string> password = ReadPasswordLine(nothing);
  ASSERT_FALSE(password.ok());
  EXPECT_EQ(ExitCodeOf(password.status()), kExitUsage);
  EXPECT_EQ(UsageCommandOf(password.status()), "login");
}

}  // namespace
}  // namespace telestra::cli
