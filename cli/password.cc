#include "cli/password.h"

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/errors.h"

namespace telestra::cli {
namespace {

// The terminal's settings while the prompt has echo off, for the handler
// that restores them when a signal ends the prompt.
struct termios saved_terminal;

void RestoreTerminalAndDie(int signal) {
  tcsetattr(STDIN_FILENO, TCSANOW, &saved_terminal);  // async-signal-safe
  ::signal(signal, SIG_DFL);
  raise(signal);
}

absl::StatusOr<std::string> Prompt(const std::string& account) {
  if (tcgetattr(STDIN_FILENO, &saved_terminal) != 0) return ReadPasswordLine(std::cin);
  struct sigaction restore {};
  restore.sa_handler = RestoreTerminalAndDie;
  struct sigaction old_int {
  }, old_term{}, old_quit{};
  sigaction(SIGINT, &restore, &old_int);
  sigaction(SIGTERM, &restore, &old_term);
  sigaction(SIGQUIT, &restore, &old_quit);

  struct termios quiet = saved_terminal;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  std::fprintf(stderr, "Password for %s: ", account.c_str());
  std::fflush(stderr);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  absl::StatusOr<std::string> password = ReadPasswordLine(std::cin);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_terminal);

  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  return password;
}

}  // namespace

PasswordSource ChoosePasswordSource(bool env_set, bool stdin_is_terminal) {
  if (env_set) return PasswordSource::kEnvironment;
  return stdin_is_terminal ? PasswordSource::kPrompt : PasswordSource::kStdinLine;
}

absl::StatusOr<std::string> ReadPasswordLine(std::istream& in) {
  std::string line;
  if (!std::getline(in, line) && line.empty()) {
    return UsageError(
        "no password: telestra login reads it from TELESTRA_PASSWORD, a prompt (when stdin is a "
        "terminal) or one line of stdin",
        "login");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

absl::StatusOr<std::string> ReadPassword(const std::string& account,
                                         const std::optional<std::string>& from_env) {
  switch (ChoosePasswordSource(from_env.has_value(), isatty(STDIN_FILENO) == 1)) {
    case PasswordSource::kEnvironment:
      return *from_env;
    case PasswordSource::kPrompt:
      return Prompt(account);
    case PasswordSource::kStdinLine:
      return ReadPasswordLine(std::cin);
  }
  return absl::InternalError("no password source");
}

}  // namespace telestra::cli
