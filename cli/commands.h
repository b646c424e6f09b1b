// The commands that are one unary RPC each: accounts, status, call,
// answer, switch, hangup, login, logout, dtmf, transfer.
#pragma once

#include <ostream>

#include "absl/status/status.h"
#include "cli/command_line.h"
#include "cli/connection.h"

namespace telestra::cli {

// True for the verbs RunUnaryCommand runs.
bool IsUnaryCommand(Verb verb);

// Sends the invocation's request and prints the result to `out`: a table
// or a line, or with --json the native protocol's reply (status,
// call-return; nothing for the commands the native protocol does not answer).
// Login's password must already be in invocation.command.login().pass().
// Returns the gateway's refusal or UnreachableError (cli/errors.h).
absl::Status RunUnaryCommand(const Invocation& invocation, GatewayConnection& connection,
                             std::ostream& out);

}  // namespace telestra::cli
