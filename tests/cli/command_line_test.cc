#include "cli/command_line.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "cli/errors.h"
#include "gtest/gtest.h"

namespace telestra::cli {
namespace {

absl::StatusOr<Invocation> Parse(const std::vector<std::string>& args,
                                 const Environment& env = {}) {
  return ParseCommandLine(args, env);
}

// The usage error of `args`: its message (and the command it names in *command).
std::string UsageMessage(const std::vector<std::string>& args, std::string* command = nullptr) {
  absl::StatusOr<Invocation> parsed = Parse(args);
  EXPECT_FALSE(parsed.ok());
  if (parsed.ok()) return "";
  EXPECT_EQ(ExitCodeOf(parsed.status()), kExitUsage) << parsed.status();
  if (command != nullptr) *command = UsageCommandOf(parsed.status());
  return std::string(parsed.status().message());
}

TEST(CommandLineTest, StatusBuildsGetStatusWithTheDefaultConnection) {
  auto parsed = Parse({"status", "account-1"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->verb, Verb::kStatus);
  EXPECT_EQ(parsed->command.get_status().account(), "account-1");
  EXPECT_EQ(parsed->connection.address, "127.0.0.1:3551");
  EXPECT_EQ(parsed->connection.token, "");
  EXPECT_EQ(parsed->connection.ca_path, "");
  EXPECT_EQ(parsed->connection.timeout, absl::Seconds(5));
  EXPECT_FALSE(parsed->json);
}

TEST(CommandLineTest, FlagsWinOverTheEnvironmentWhichWinsOverDefaults) {
  Environment env{"gw:1", "env-token", "/env/ca.pem"};
  auto from_env = Parse({"accounts"}, env);
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->connection.address, "gw:1");
  EXPECT_EQ(from_env->connection.token, "env-token");
  EXPECT_EQ(from_env->connection.ca_path, "/env/ca.pem");

  auto from_flags = Parse(
      {"--address", "other:2", "accounts", "--token=flag-token", "--ca", "/flag/ca.pem", "--json"},
      env);
  ASSERT_TRUE(from_flags.ok()) << from_flags.status();
  EXPECT_EQ(from_flags->verb, Verb::kAccounts);
  EXPECT_EQ(from_flags->connection.address, "other:2");
  EXPECT_EQ(from_flags->connection.token, "flag-token");
  EXPECT_EQ(from_flags->connection.ca_path, "/flag/ca.pem");
  EXPECT_TRUE(from_flags->json);

  // An empty flag value wins too (no token), but an empty TELESTRA_ADDRESS
  // is as good as none.
  auto empty = Parse({"accounts", "--token="}, Environment{"", "env-token", std::nullopt});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->connection.token, "");
  EXPECT_EQ(empty->connection.address, "127.0.0.1:3551");
}

TEST(CommandLineTest, TimeoutTakesDurationsAndPlainSeconds) {
  auto parsed = Parse({"accounts", "--timeout", "500ms"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->connection.timeout, absl::Milliseconds(500));
  parsed = Parse({"accounts", "--timeout=2.5"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->connection.timeout, absl::Milliseconds(2500));
  EXPECT_TRUE(absl::StrContains(UsageMessage({"accounts", "--timeout", "soon"}), "--timeout"));
  EXPECT_TRUE(absl::StrContains(UsageMessage({"accounts", "--timeout", "0"}), "positive"));
}

TEST(CommandLineTest, CallCommandsBuildTheModelsCommands) {
  auto call = Parse({"call", "account-1", "3002"});
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->command.make_call().account(), "account-1");
  EXPECT_EQ(call->command.make_call().num(), "3002");

  auto answer = Parse({"answer", "account-2", "1"});
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->verb, Verb::kAnswer);
  EXPECT_EQ(answer->command.answer_call().account(), "account-2");
  EXPECT_EQ(answer->command.answer_call().call_id(), 1);

  auto hold = Parse({"switch", "account-1", "7"});
  ASSERT_TRUE(hold.ok());
  EXPECT_EQ(hold->command.switch_call().call_id(), 7);

  auto hangup = Parse({"hangup", "account-1", "0"});
  ASSERT_TRUE(hangup.ok());
  EXPECT_EQ(hangup->command.hangup_call().call_id(), 0);

  auto logout = Parse({"logout", "account-1"});
  ASSERT_TRUE(logout.ok());
  EXPECT_EQ(logout->command.logout().account(), "account-1");

  std::string command;
  EXPECT_TRUE(absl::StrContains(UsageMessage({"answer", "account-2", "one"}, &command),
                                "CALL_ID is a call id"));
  EXPECT_EQ(command, "answer");
  EXPECT_TRUE(absl::StrContains(UsageMessage({"hangup", "account-2", "-1"}), "unknown flag --1"));
  EXPECT_TRUE(
      absl::StrContains(UsageMessage({"hangup", "account-2", "--", "-1"}), "CALL_ID is a call id"));
}

TEST(CommandLineTest, LoginNeedsUserAndServerAndNeverTakesAPassword) {
  auto login = Parse({"login", "account-1", "--user", "3001", "--server=127.0.0.1:5060"});
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_EQ(login->verb, Verb::kLogin);
  EXPECT_EQ(login->command.login().account(), "account-1");
  EXPECT_EQ(login->command.login().user(), "3001");
  EXPECT_EQ(login->command.login().server(), "127.0.0.1:5060");
  EXPECT_EQ(login->command.login().pass(), "");

  std::string command;
  EXPECT_TRUE(absl::StrContains(UsageMessage({"login", "account-1", "--user", "3001"}, &command),
                                "--server"));
  EXPECT_EQ(command, "login");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"login", "account-1", "--user", "3001", "--server", "h", "--password", "sip3001"},
           {"login", "account-1", "--password=sip3001"},
           {"--pass", "x", "login", "account-1"},
           {"login", "account-1", "-password", "x"}}) {
    std::string message = UsageMessage(args, &command);
    EXPECT_TRUE(absl::StartsWith(message, "--password is not accepted")) << message;
    EXPECT_TRUE(absl::StrContains(message, "TELESTRA_PASSWORD")) << message;
    EXPECT_EQ(command, "login");
  }
}

TEST(CommandLineTest, DtmfAndTransfer) {
  auto dtmf = Parse({"dtmf", "account-1", "0", "12#", "--duration-ms", "250"});
  ASSERT_TRUE(dtmf.ok()) << dtmf.status();
  EXPECT_EQ(dtmf->command.send_dtmf().digits(), "12#");
  EXPECT_EQ(dtmf->command.send_dtmf().duration_ms(), 250);
  auto plain = Parse({"dtmf", "account-1", "0", "5"});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->command.send_dtmf().duration_ms(), 0);  // the gateway's default
  EXPECT_TRUE(absl::StrContains(
      UsageMessage({"dtmf", "account-1", "0", "5", "--duration-ms", "long"}), "--duration-ms"));

  auto blind = Parse({"transfer", "account-1", "0", "3003"});
  ASSERT_TRUE(blind.ok());
  EXPECT_EQ(blind->command.transfer_call().num(), "3003");
  EXPECT_FALSE(blind->command.transfer_call().has_to_call_id());
  auto attended = Parse({"transfer", "account-1", "0", "--to-call-id", "2"});
  ASSERT_TRUE(attended.ok());
  EXPECT_EQ(attended->command.transfer_call().num(), "");
  EXPECT_EQ(attended->command.transfer_call().to_call_id(), 2);
  EXPECT_TRUE(absl::StrContains(UsageMessage({"transfer", "account-1", "0"}), "either NUM"));
  EXPECT_TRUE(absl::StrContains(
      UsageMessage({"transfer", "account-1", "0", "3003", "--to-call-id", "2"}), "either NUM"));
}

TEST(CommandLineTest, EventsAsksForTheSnapshotUnlessFollowingFromASeq) {
  auto once = Parse({"events"});
  ASSERT_TRUE(once.ok());
  EXPECT_EQ(once->verb, Verb::kEvents);
  EXPECT_FALSE(once->events.follow);
  EXPECT_TRUE(once->events.subscribe.snapshot());
  EXPECT_FALSE(once->events.subscribe.has_after_seq());

  auto follow = Parse({"events", "--follow", "--account", "account-1", "--account=account-2"});
  ASSERT_TRUE(follow.ok());
  EXPECT_TRUE(follow->events.follow);
  EXPECT_TRUE(follow->events.subscribe.snapshot());
  ASSERT_EQ(follow->events.subscribe.accounts_size(), 2);
  EXPECT_EQ(follow->events.subscribe.accounts(1), "account-2");

  auto resume = Parse({"events", "--follow", "--after-seq", "12"});
  ASSERT_TRUE(resume.ok());
  EXPECT_EQ(resume->events.subscribe.after_seq(), 12u);
  EXPECT_FALSE(resume->events.subscribe.snapshot());

  auto replay = Parse({"events", "--after-seq=3"});
  ASSERT_TRUE(replay.ok());
  EXPECT_TRUE(replay->events.subscribe.snapshot());  // where the output ends

  EXPECT_TRUE(absl::StrContains(UsageMessage({"events", "--after-seq", "x"}), "--after-seq"));
  EXPECT_TRUE(absl::StrContains(UsageMessage({"events", "--follow=maybe"}), "--follow"));
}

TEST(CommandLineTest, AudioDirectionFollowsTheFiles) {
  auto record = Parse({"audio", "account-1", "0", "--record", "in.wav"});
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->audio.start.account(), "account-1");
  EXPECT_EQ(record->audio.start.call_id(), 0);
  EXPECT_EQ(record->audio.start.sample_rate(), 8000u);
  EXPECT_EQ(record->audio.start.direction(), telestra::v1::AUDIO_DIRECTION_LISTEN);
  EXPECT_EQ(record->audio.record_path, "in.wav");

  auto play = Parse({"audio", "account-1", "0", "--play", "out.wav", "--rate", "16000"});
  ASSERT_TRUE(play.ok());
  EXPECT_EQ(play->audio.start.direction(), telestra::v1::AUDIO_DIRECTION_SPEAK);
  EXPECT_EQ(play->audio.start.sample_rate(), 16000u);

  auto both = Parse({"audio", "account-1", "0", "--play", "out.wav", "--record", "in.wav"});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->audio.start.direction(), telestra::v1::AUDIO_DIRECTION_BOTH);

  EXPECT_TRUE(absl::StrContains(UsageMessage({"audio", "account-1", "0"}), "--record"));
  EXPECT_TRUE(absl::StrContains(
      UsageMessage({"audio", "account-1", "0", "--record", "x.wav", "--rate", "44100"}),
      "8000 or 16000"));
}

TEST(CommandLineTest, UsageErrorsNameTheProblemAndTheCommand) {
  std::string command = "unset";
  EXPECT_EQ(UsageMessage({}, &command), "no command given");
  EXPECT_EQ(command, "");
  EXPECT_EQ(UsageMessage({"dial", "x"}, &command), "unknown command 'dial'");
  EXPECT_EQ(command, "");
  EXPECT_EQ(UsageMessage({"status"}, &command),
            "too few arguments for telestra status (it takes ACCOUNT)");
  EXPECT_EQ(command, "status");
  EXPECT_EQ(UsageMessage({"accounts", "extra"}, &command),
            "too many arguments for telestra accounts (it takes no arguments)");
  EXPECT_EQ(UsageMessage({"status", "account-1", "--follow"}, &command),
            "telestra status does not take --follow");
  EXPECT_EQ(command, "status");
  EXPECT_EQ(UsageMessage({"status", "account-1", "--colour"}), "unknown flag --colour");
  EXPECT_EQ(UsageMessage({"status", "account-1", "--address"}),
            "--address HOST:PORT: the value is missing");
}

TEST(CommandLineTest, HelpNamesItsTopic) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"help", "call"}, {"call", "--help"}, {"-h", "call"}, {"call", "x", "y", "--help"}}) {
    auto parsed = Parse(args);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->verb, Verb::kHelp);
    EXPECT_EQ(parsed->help_topic, "call");
  }
  auto general = Parse({"--help"});
  ASSERT_TRUE(general.ok());
  EXPECT_EQ(general->help_topic, "");
  EXPECT_EQ(UsageMessage({"help", "dial"}), "unknown command 'dial'");
}

TEST(CommandLineTest, UsageTextsShowTheSynopsisAndExitCodes) {
  const std::string call = UsageText("call");
  EXPECT_TRUE(absl::StartsWith(call, "usage: telestra call ACCOUNT NUM\n")) << call;
  EXPECT_TRUE(absl::StrContains(call, "TELESTRA_ADDRESS"));
  EXPECT_TRUE(absl::StrContains(call, "Exit codes: 0 ok, 1 the gateway refused, 2 usage, 3"));
  const std::string all = UsageText("");
  for (const char* name : {"accounts", "status ACCOUNT", "call ACCOUNT NUM", "login ACCOUNT",
                           "events [--account A]", "audio ACCOUNT CALL_ID", "dtmf", "transfer"}) {
    EXPECT_TRUE(absl::StrContains(all, absl::StrCat("\n  ", name))) << name << "\n" << all;
  }
}

}  // namespace
}  // namespace telestra::cli
