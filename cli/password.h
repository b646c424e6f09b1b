// Where `telestra login` gets the password: never from argv (see
// cli/command_line.cc), so that it shows in no process list or history.
#pragma once

#include <istream>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace telestra::cli {

// Where the password comes from, in order of preference.
enum class PasswordSource {
  kEnvironment,  // TELESTRA_PASSWORD is set
  kPrompt,       // stdin is a terminal: ask without echo
  kStdinLine,    // otherwise: the first line of stdin
};

PasswordSource ChoosePasswordSource(bool env_set, bool stdin_is_terminal);

// The first line of `in` without its line ending ("\n" or "\r\n"). A
// UsageError when `in` has no line at all (empty, closed).
absl::StatusOr<std::string> ReadPasswordLine(std::istream& in);

// The password: `from_env` when set; else a prompt on the terminal
// ("Password for account-1: ", echo off and restored, also if Ctrl-C ends
// the prompt); else one line of stdin.
absl::StatusOr<std::string> ReadPassword(const std::string& account,
                                         const std::optional<std::string>& from_env);

}  // namespace telestra::cli
