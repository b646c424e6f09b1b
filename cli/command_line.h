// The telestra command line (docs/cli.md) turned into one Invocation: where
// the gateway is and the request to send. Pure: no I/O, no globals; the
// caller passes argv and the environment.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/telestra.pb.h"
#include "proto/telestra_service.pb.h"

namespace telestra::cli {

// Where the gateway is and how to talk to it.
struct ConnectionOptions {
  std::string address = "127.0.0.1:3551";     // host:port
  std::string token;                          // bearer token; "" sends none
  std::string ca_path;                        // PEM file: TLS trusting it; "" plaintext
  absl::Duration timeout = absl::Seconds(5);  // per unary call (and to connect)
};

// The environment variables the command line falls back on.
struct Environment {
  std::optional<std::string> address;  // TELESTRA_ADDRESS
  std::optional<std::string> token;    // TELESTRA_TOKEN
  std::optional<std::string> ca;       // TELESTRA_CA
};

enum class Verb {
  kHelp,
  kAccounts,
  kStatus,
  kCall,
  kAnswer,
  kSwitch,
  kHangup,
  kLogin,
  kLogout,
  kDtmf,
  kTransfer,
  kEvents,
  kAudio,
};

// `telestra events`: Subscribe's request and whether to keep following.
struct EventsRequest {
  telestra::v1::SubscribeRequest subscribe;
  bool follow = false;
};

// `telestra audio`: the stream's start and the files. The direction follows
// from the files: record only LISTEN, play only SPEAK, both BOTH.
struct AudioRequest {
  telestra::v1::CallAudioStart start;
  std::string record_path;  // "" : do not record
  std::string play_path;    // "" : do not play
};

struct Invocation {
  ConnectionOptions connection;
  bool json = false;
  Verb verb = Verb::kHelp;
  // kHelp: the command whose usage to print ("" for the general usage).
  std::string help_topic;
  // kStatus .. kTransfer: the request as the model's command (login's
  // `pass` is left empty: the password never comes from argv).
  telestra::v1::Command command;
  EventsRequest events;  // kEvents
  AudioRequest audio;    // kAudio
};

// argv without the program name. Flags may come before or after the
// command, as --name=value or --name value; "--" ends the flags. Connection
// settings: flags win over `env`, which wins over the defaults. An error is
// a UsageError (cli/errors.h) naming the command whose usage to show.
absl::StatusOr<Invocation> ParseCommandLine(const std::vector<std::string>& args,
                                            const Environment& env);

// The usage text: of one command ("status", ...), or of all of them ("" or
// an unknown name). Ends with a newline.
std::string UsageText(const std::string& command);

// The command's name as typed ("status" for kStatus, "" for kHelp).
std::string VerbName(Verb verb);

}  // namespace telestra::cli
