#include "cli/command_line.h"

#include <algorithm>
#include <cstdint>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/errors.h"

namespace telestra::cli {
namespace {

// Why `login` takes no password flag.
constexpr char kPasswordRefused[] =
    "--password is not accepted: a password on the command line is seen by every user of "
    "the machine (ps, /proc) and stays in the shell's history. telestra login reads it from "
    "a prompt without echo, from TELESTRA_PASSWORD, or from one line of stdin";

struct FlagSpec {
  const char* name;
  bool takes_value;
  const char* value_name;  // for the usage text
};

// Every flag of every command, with whether it takes a value. A name means
// the same everywhere, so the arguments can be split into flags and
// positional arguments before the command is known.
constexpr FlagSpec kFlags[] = {
    // Global.
    {"address", true, "HOST:PORT"},
    {"token", true, "TOKEN"},
    {"ca", true, "FILE.pem"},
    {"timeout", true, "DURATION"},
    {"json", false, ""},
    {"help", false, ""},
    // Commands.
    {"user", true, "USER"},
    {"server", true, "HOST[:PORT]"},
    {"account", true, "ACCOUNT"},
    {"follow", false, ""},
    {"after-seq", true, "N"},
    {"duration-ms", true, "N"},
    {"to-call-id", true, "CALL_ID"},
    {"record", true, "FILE.wav"},
    {"play", true, "FILE.wav"},
    {"rate", true, "8000|16000"},
    // Refused (kPasswordRefused); known here so that their value is not
    // taken for the command.
    {"password", true, "PASSWORD"},
    {"pass", true, "PASSWORD"},
};

constexpr const char* kGlobalFlags[] = {"address", "token", "ca", "timeout", "json", "help"};

struct CommandSpec {
  Verb verb;
  const char* name;
  const char* synopsis;  // after "telestra <name>"
  const char* summary;
  std::vector<std::string> flags;  // beyond the global ones
  size_t min_args;                 // positional arguments after the name
  size_t max_args;
};

const std::vector<CommandSpec>& Commands() {
  static const auto* commands = new std::vector<CommandSpec>{
      {Verb::kAccounts,
       "accounts",
       "",
       "Every account of the plan: status, user, server, calls.",
       {},
       0,
       0},
      {Verb::kStatus, "status", "ACCOUNT", "One account's registration and its calls.", {}, 1, 1},
      {Verb::kCall,
       "call",
       "ACCOUNT NUM",
       "Places a call from ACCOUNT to NUM (an extension, or a sip:/tel: URI); prints the "
       "call's id.",
       {},
       2,
       2},
      {Verb::kAnswer, "answer", "ACCOUNT CALL_ID", "Answers an incoming call.", {}, 2, 2},
      {Verb::kSwitch,
       "switch",
       "ACCOUNT CALL_ID",
       "Makes the call ACCOUNT's active one: its other established calls are held.",
       {},
       2,
       2},
      {Verb::kHangup,
       "hangup",
       "ACCOUNT CALL_ID",
       "Ends a call (cancels it while ringing, declines it while incoming).",
       {},
       2,
       2},
      {Verb::kLogin,
       "login",
       "ACCOUNT --user USER --server HOST[:PORT]",
       "Logs ACCOUNT in with new credentials (kept in the gateway's memory). The password "
       "comes from TELESTRA_PASSWORD, else a prompt without echo when stdin is a terminal, "
       "else one line of stdin; never from the command line. The outcome follows as events.",
       {"user", "server"},
       1,
       1},
      {Verb::kLogout, "logout", "ACCOUNT", "Unregisters ACCOUNT; its calls end.", {}, 1, 1},
      {Verb::kDtmf,
       "dtmf",
       "ACCOUNT CALL_ID DIGITS [--duration-ms N]",
       "Sends DTMF digits (0-9 * # A-D) on an established call; each lasts N ms "
       "(40..2000, default 100).",
       {"duration-ms"},
       3,
       3},
      {Verb::kTransfer,
       "transfer",
       "ACCOUNT CALL_ID (NUM | --to-call-id M)",
       "Transfers a call: blind to NUM, or attended to the far end of ACCOUNT's call M.",
       {"to-call-id"},
       2,
       3},
      {Verb::kEvents,
       "events",
       "[--account A]... [--follow] [--after-seq N]",
       "Prints the accounts' state (one status each), after the events since seq N when "
       "--after-seq is given; with --follow, then every event as it happens until "
       "interrupted (Ctrl-C).",
       {"account", "follow", "after-seq"},
       0,
       0},
      {Verb::kAudio,
       "audio",
       "ACCOUNT CALL_ID [--record FILE.wav] [--play FILE.wav] [--rate R]",
       "The call's live audio. --record writes what the call hears to a WAV file until the "
       "call ends or Ctrl-C; --play sends a sound file (any format libsndfile reads) into the "
       "call and exits once it has been sent, unless --record is also given. R is the "
       "stream's rate: 8000 (default) or 16000.",
       {"record", "play", "rate"},
       2,
       2},
      {Verb::kHelp, "help", "[COMMAND]", "Prints the usage of every command, or of one.", {}, 0, 1},
  };
  return *commands;
}

const CommandSpec* FindCommand(const std::string& name) {
  for (const CommandSpec& spec : Commands()) {
    if (name == spec.name) return &spec;
  }
  return nullptr;
}

const FlagSpec* FindFlag(const std::string& name) {
  for (const FlagSpec& flag : kFlags) {
    if (name == flag.name) return &flag;
  }
  return nullptr;
}

bool IsGlobalFlag(const std::string& name) {
  return std::any_of(std::begin(kGlobalFlags), std::end(kGlobalFlags),
                     [&](const char* global) { return name == global; });
}

struct FlagValue {
  std::string name;
  std::string value;
  bool has_value = false;
};

// The arguments split into flags (in order) and positional arguments.
struct SplitArgs {
  std::vector<FlagValue> flags;
  std::vector<std::string> positional;
  std::string missing_value;  // a value flag that came last, without a value
};

SplitArgs Split(const std::vector<std::string>& args) {
  SplitArgs out;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    FlagValue flag;
    std::string body = arg.substr(absl::StartsWith(arg, "--") ? 2 : 1);
    size_t equals = body.find('=');
    if (equals != std::string::npos) {
      flag.name = body.substr(0, equals);
      flag.value = body.substr(equals + 1);
      flag.has_value = true;
    } else {
      flag.name = body;
    }
    if (flag.name == "h") flag.name = "help";
    const FlagSpec* spec = FindFlag(flag.name);
    if (spec != nullptr && spec->takes_value && !flag.has_value) {
      if (i + 1 < args.size()) {
        flag.value = args[++i];
        flag.has_value = true;
      } else {
        out.missing_value = flag.name;
      }
    }
    out.flags.push_back(std::move(flag));
  }
  return out;
}

absl::StatusOr<bool> ParseBool(const FlagValue& flag, const std::string& command) {
  if (!flag.has_value || flag.value == "true" || flag.value == "1" || flag.value == "yes") {
    return true;
  }
  if (flag.value == "false" || flag.value == "0" || flag.value == "no") return false;
  return UsageError(absl::StrCat("--", flag.name, " is true or false, not '", flag.value, "'"),
                    command);
}

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text) {
  absl::Duration duration;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {  // a plain number: seconds
    duration = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &duration)) {
    return UsageError(absl::StrCat("--timeout is a duration (5s, 500ms, 2.5), not '", text, "'"));
  }
  if (duration <= absl::ZeroDuration() || duration == absl::InfiniteDuration()) {
    return UsageError(absl::StrCat("--timeout must be positive and finite, not '", text, "'"));
  }
  return duration;
}

absl::StatusOr<int64_t> ParseCallId(const std::string& text, const std::string& what,
                                    const std::string& command) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(text, &id) || id < 0) {
    return UsageError(absl::StrCat(what, " is a call id (a number from 0), not '", text, "'"),
                      command);
  }
  return id;
}

// The flags given to the command, by name (the last of a repeated flag;
// `account` collects every one).
struct CommandFlags {
  std::map<std::string, std::string> values;
  std::vector<std::string> accounts;
  bool follow = false;
  bool Has(const std::string& name) const { return values.count(name) > 0; }
};

absl::Status BuildRequest(const CommandSpec& spec, const std::vector<std::string>& args,
                          const CommandFlags& flags, Invocation* out) {
  const std::string command = spec.name;
  switch (spec.verb) {
    case Verb::kHelp:
      if (!args.empty() && FindCommand(args[0]) == nullptr) {
        return UsageError(absl::StrCat("unknown command '", args[0], "'"));
      }
      out->help_topic = args.empty() ? "" : args[0];
      return absl::OkStatus();
    case Verb::kAccounts:
      return absl::OkStatus();
    case Verb::kStatus:
      out->command.mutable_get_status()->set_account(args[0]);
      return absl::OkStatus();
    case Verb::kCall: {
      auto* call = out->command.mutable_make_call();
      call->set_account(args[0]);
      call->set_num(args[1]);
      return absl::OkStatus();
    }
    case Verb::kAnswer:
    case Verb::kSwitch:
    case Verb::kHangup: {
      absl::StatusOr<int64_t> id = ParseCallId(args[1], "CALL_ID", command);
      if (!id.ok()) return id.status();
      if (spec.verb == Verb::kAnswer) {
        out->command.mutable_answer_call()->set_account(args[0]);
        out->command.mutable_answer_call()->set_call_id(*id);
      } else if (spec.verb == Verb::kSwitch) {
        out->command.mutable_switch_call()->set_account(args[0]);
        out->command.mutable_switch_call()->set_call_id(*id);
      } else {
        out->command.mutable_hangup_call()->set_account(args[0]);
        out->command.mutable_hangup_call()->set_call_id(*id);
      }
      return absl::OkStatus();
    }
    case Verb::kLogin: {
      if (!flags.Has("user") || !flags.Has("server")) {
        return UsageError("login needs --user USER and --server HOST[:PORT]", command);
      }
      auto* login = out->command.mutable_login();
      login->set_account(args[0]);
      login->set_user(flags.values.at("user"));
      login->set_server(flags.values.at("server"));
      return absl::OkStatus();
    }
    case Verb::kLogout:
      out->command.mutable_logout()->set_account(args[0]);
      return absl::OkStatus();
    case Verb::kDtmf: {
      absl::StatusOr<int64_t> id = ParseCallId(args[1], "CALL_ID", command);
      if (!id.ok()) return id.status();
      auto* dtmf = out->command.mutable_send_dtmf();
      dtmf->set_account(args[0]);
      dtmf->set_call_id(*id);
      dtmf->set_digits(args[2]);
      if (flags.Has("duration-ms")) {
        int32_t duration = 0;
        const std::string& text = flags.values.at("duration-ms");
        if (!absl::SimpleAtoi(text, &duration) || duration <= 0) {
          return UsageError(
              absl::StrCat("--duration-ms is a number of milliseconds, not '", text, "'"), command);
        }
        dtmf->set_duration_ms(duration);
      }
      return absl::OkStatus();
    }
    case Verb::kTransfer: {
      absl::StatusOr<int64_t> id = ParseCallId(args[1], "CALL_ID", command);
      if (!id.ok()) return id.status();
      const bool to_number = args.size() == 3;
      if (to_number == flags.Has("to-call-id")) {
        return UsageError("transfer takes either NUM (blind) or --to-call-id M (attended)",
                          command);
      }
      auto* transfer = out->command.mutable_transfer_call();
      transfer->set_account(args[0]);
      transfer->set_call_id(*id);
      if (to_number) {
        transfer->set_num(args[2]);
      } else {
        absl::StatusOr<int64_t> to =
            ParseCallId(flags.values.at("to-call-id"), "--to-call-id", command);
        if (!to.ok()) return to.status();
        transfer->set_to_call_id(*to);
      }
      return absl::OkStatus();
    }
    case Verb::kEvents: {
      EventsRequest& events = out->events;
      events.follow = flags.follow;
      for (const std::string& account : flags.accounts) events.subscribe.add_accounts(account);
      if (flags.Has("after-seq")) {
        uint64_t seq = 0;
        const std::string& text = flags.values.at("after-seq");
        if (!absl::SimpleAtoi(text, &seq)) {
          return UsageError(
              absl::StrCat("--after-seq is an event's seq (a number from 0), not '", text, "'"),
              command);
        }
        events.subscribe.set_after_seq(seq);
      }
      // Without --follow the snapshot is where the output ends; with it, a
      // resume (--after-seq) continues from the events alone.
      events.subscribe.set_snapshot(!events.follow || !flags.Has("after-seq"));
      return absl::OkStatus();
    }
    case Verb::kAudio: {
      absl::StatusOr<int64_t> id = ParseCallId(args[1], "CALL_ID", command);
      if (!id.ok()) return id.status();
      AudioRequest& audio = out->audio;
      if (flags.Has("record")) audio.record_path = flags.values.at("record");
      if (flags.Has("play")) audio.play_path = flags.values.at("play");
      if (audio.record_path.empty() && audio.play_path.empty()) {
        return UsageError("audio needs --record FILE.wav, --play FILE.wav, or both", command);
      }
      uint32_t rate = 8000;
      if (flags.Has("rate")) {
        const std::string& text = flags.values.at("rate");
        if (!absl::SimpleAtoi(text, &rate) || (rate != 8000 && rate != 16000)) {
          return UsageError(absl::StrCat("--rate is 8000 or 16000, not '", text, "'"), command);
        }
      }
      audio.start.set_account(args[0]);
      audio.start.set_call_id(*id);
      audio.start.set_sample_rate(rate);
      audio.start.set_direction(audio.record_path.empty() ? telestra::v1::AUDIO_DIRECTION_SPEAK
                                : audio.play_path.empty() ? telestra::v1::AUDIO_DIRECTION_LISTEN
                                                          : telestra::v1::AUDIO_DIRECTION_BOTH);
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unhandled command");
}

// `text` wrapped at 78 columns, each line indented by two spaces.
std::string Wrapped(const std::string& text) {
  std::string out;
  std::string line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() && line.size() + 1 + word.size() > 76) {
      absl::StrAppend(&out, "  ", line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  if (!line.empty()) absl::StrAppend(&out, "  ", line, "\n");
  return out;
}

std::string FlagUsage(const std::string& name) {
  const FlagSpec* spec = FindFlag(name);
  if (spec == nullptr || !spec->takes_value) return absl::StrCat("--", name);
  return absl::StrCat("--", name, " ", spec->value_name);
}

constexpr char kConnectionHelp[] =
    "Options of every command:\n"
    "  --address HOST:PORT  the gateway's gRPC port (TELESTRA_ADDRESS; default "
    "127.0.0.1:3551)\n"
    "  --token TOKEN        its bearer token (TELESTRA_TOKEN)\n"
    "  --ca FILE.pem        speak TLS, trusting this certificate (TELESTRA_CA)\n"
    "  --timeout DURATION   for each request and for connecting (default 5s)\n"
    "  --json               print the native protocol's JSON, one object a line\n"
    "Exit codes: 0 ok, 1 the gateway refused, 2 usage, 3 gateway unreachable.\n";

}  // namespace

std::string VerbName(Verb verb) {
  if (verb == Verb::kHelp) return "";
  for (const CommandSpec& spec : Commands()) {
    if (spec.verb == verb) return spec.name;
  }
  return "";
}

std::string UsageText(const std::string& command) {
  const CommandSpec* spec = FindCommand(command);
  if (spec != nullptr && spec->verb != Verb::kHelp) {
    std::string text = absl::StrCat("usage: telestra ", spec->name);
    if (*spec->synopsis) absl::StrAppend(&text, " ", spec->synopsis);
    absl::StrAppend(&text, "\n", Wrapped(spec->summary), "\n", kConnectionHelp);
    return text;
  }
  std::string text = "usage: telestra [options] COMMAND [ARGS]\n\nCommands:\n";
  for (const CommandSpec& each : Commands()) {
    absl::StrAppend(&text, "  ", each.name, *each.synopsis ? " " : "", each.synopsis, "\n");
  }
  absl::StrAppend(&text, "\n", kConnectionHelp,
                  "'telestra help COMMAND' describes one command; docs/cli.md all of them.\n");
  return text;
}

absl::StatusOr<Invocation> ParseCommandLine(const std::vector<std::string>& args,
                                            const Environment& env) {
  SplitArgs split = Split(args);
  const std::string name = split.positional.empty() ? "" : split.positional.front();
  const CommandSpec* spec = name.empty() ? nullptr : FindCommand(name);
  // The command whose usage goes with an error (none if it is unknown).
  const std::string topic = spec != nullptr ? name : "";

  Invocation out;
  CommandFlags flags;
  bool help = false;
  std::optional<std::string> address, token, ca, timeout;
  for (const FlagValue& flag : split.flags) {
    if (flag.name == "password" || flag.name == "pass") return UsageError(kPasswordRefused, topic);
    const FlagSpec* flag_spec = FindFlag(flag.name);
    if (flag_spec == nullptr) {
      return UsageError(absl::StrCat("unknown flag --", flag.name), topic);
    }
    if (!IsGlobalFlag(flag.name) && spec != nullptr &&
        std::find(spec->flags.begin(), spec->flags.end(), flag.name) == spec->flags.end()) {
      return UsageError(absl::StrCat("telestra ", spec->name, " does not take --", flag.name),
                        topic);
    }
    if (!flag_spec->takes_value) {  // --help, --json, --follow
      absl::StatusOr<bool> on = ParseBool(flag, topic);
      if (!on.ok()) return on.status();
      if (flag.name == "help") {
        help = *on;
      } else if (flag.name == "json") {
        out.json = *on;
      } else {
        flags.follow = *on;
      }
    } else if (flag.name == "address") {
      address = flag.value;
    } else if (flag.name == "token") {
      token = flag.value;
    } else if (flag.name == "ca") {
      ca = flag.value;
    } else if (flag.name == "timeout") {
      timeout = flag.value;
    } else if (flag.name == "account") {
      flags.accounts.push_back(flag.value);
    } else {
      flags.values[flag.name] = flag.value;
    }
  }
  if (!split.missing_value.empty()) {
    return UsageError(absl::StrCat(FlagUsage(split.missing_value), ": the value is missing"),
                      topic);
  }

  if (help || name.empty()) {
    if (name.empty() && !help) return UsageError("no command given");
    out.verb = Verb::kHelp;
    out.help_topic = topic;
    return out;
  }
  if (spec == nullptr) return UsageError(absl::StrCat("unknown command '", name, "'"));

  ConnectionOptions& connection = out.connection;
  if (address.has_value()) {
    connection.address = *address;
  } else if (env.address.has_value() && !env.address->empty()) {
    connection.address = *env.address;
  }
  if (connection.address.empty()) return UsageError("--address is empty", topic);
  connection.token = token.has_value() ? *token : env.token.value_or("");
  connection.ca_path = ca.has_value() ? *ca : env.ca.value_or("");
  if (timeout.has_value()) {
    absl::StatusOr<absl::Duration> parsed = ParseTimeout(*timeout);
    if (!parsed.ok()) return UsageError(parsed.status().message(), topic);
    connection.timeout = *parsed;
  }

  std::vector<std::string> positional(split.positional.begin() + 1, split.positional.end());
  if (positional.size() < spec->min_args || positional.size() > spec->max_args) {
    std::string expected = *spec->synopsis ? spec->synopsis : "no arguments";
    return UsageError(
        absl::StrCat(positional.size() < spec->min_args ? "too few" : "too many",
                     " arguments for telestra ", spec->name, " (it takes ", expected, ")"),
        topic);
  }
  out.verb = spec->verb;
  absl::Status built = BuildRequest(*spec, positional, flags, &out);
  if (!built.ok()) return built;
  return out;
}

}  // namespace telestra::cli
