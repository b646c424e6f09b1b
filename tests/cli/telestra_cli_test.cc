// The built telestra binary against the real gateway and a real Kamailio:
// tables, the native JSON, a call placed, answered and hung up with the
// events a follower saw, login with the password from the environment or
// stdin, call audio recorded and played, and the exit codes (1 refused,
// 2 usage, 3 unreachable, 1 for a bad token), TLS with --ca.
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "tests/backend/media/media_test_support.h"
#include "tests/cli/cli_process.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/native_client.h"
#include "tests/support/ports.h"
#include "tests/support/test_certificate.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

using Lines = std::vector<std::string>;

// True when `line` is one JSON object.
bool IsJsonObject(const std::string& line) {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  return parser.parse(line).get(object) == simdjson::SUCCESS;
}

// The native event of a JSON line.
NativeEvent Event(const std::string& line) { return NativeEvent{line}; }

// `json` without its "seq" member (a unary reply's seq is 0, a native
// client's reply has the gateway's).
std::string WithoutSeq(std::string json) {
  const size_t at = json.find(",\"seq\":");
  if (at == std::string::npos) return json;
  size_t end = at + 7;
  while (end < json.size() && isdigit(static_cast<unsigned char>(json[end]))) ++end;
  return json.erase(at, end - at);
}

// A predicate for WaitForLines: some JSON line is `event` of `account`.
std::function<bool(const Lines&)> HasJsonEvent(const std::string& event, const std::string& account,
                                               int64_t call_id = -1) {
  return [=](const Lines& lines) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
      NativeEvent e = Event(line);
      return e.event() == event && e.Str("account") == account &&
             (call_id < 0 || e.Int("call_id") == call_id);
    });
  };
}

std::function<bool(const Lines&)> HasLineContaining(const std::string& text) {
  return [=](const Lines& lines) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& line) { return absl::StrContains(line, text); });
  };
}

std::function<bool(const Lines&)> HasLines(size_t n) {
  return [n](const Lines& lines) { return lines.size() >= n; };
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

class TelestraCliTest : public GatewayTest {
 protected:
  void StartCliGateway(const GatewayOptions& options,
                       const std::vector<std::string>& registered = {"account-1", "account-2"}) {
    StartGateway(options, registered);
    ASSERT_NE(gateway_, nullptr);
    ASSERT_TRUE(WaitForTcpPort(gateway_->grpc_port(), absl::Seconds(10))) << gateway_->ReadLog();
  }

  std::string Address() const { return GrpcAddress(gateway_->grpc_port()); }

  // telestra with --address of the test's gateway, run to its end.
  CliResult Cli(std::vector<std::string> args, const Subprocess::Environment& env = {},
                const std::string& input = "") {
    args.insert(args.begin(), "--address=" + Address());
    return RunCli(args, env, input);
  }

  // The same, left running.
  std::unique_ptr<CliProcess> StartCli(std::vector<std::string> args,
                                       const Subprocess::Environment& env = {}) {
    args.insert(args.begin(), "--address=" + Address());
    absl::StatusOr<std::unique_ptr<CliProcess>> cli = CliProcess::Start(args, env);
    EXPECT_TRUE(cli.ok()) << cli.status();
    return cli.ok() ? *std::move(cli) : nullptr;
  }

  // The call id of the call-incoming of `account` the native client sees.
  int64_t WaitForIncoming(const std::string& account) {
    auto incoming = client_->WaitFor(IsEventOf("call-incoming", account));
    EXPECT_TRUE(incoming.has_value());
    return incoming.has_value() ? incoming->Int("call_id") : -1;
  }
};

TEST_F(TelestraCliTest, AccountsAndStatusPrintTablesAndTheNativeJson) {
  StartCliGateway(TwoAccounts(kamailio().server()));

  CliResult accounts = Cli({"accounts"});
  ASSERT_EQ(accounts.exit_code, 0) << accounts.Describe();
  Lines rows = accounts.OutLines();
  ASSERT_EQ(rows.size(), 3u) << accounts.Describe();
  EXPECT_TRUE(absl::StartsWith(rows[0], "ACCOUNT    STATUS            USER  ")) << rows[0];
  EXPECT_TRUE(absl::StrContains(rows[0], "  SERVER  ")) << rows[0];
  EXPECT_TRUE(absl::EndsWith(rows[0], "  CALLS")) << rows[0];
  EXPECT_TRUE(absl::StartsWith(rows[1], "account-1  registered (200)  ")) << rows[1];
  EXPECT_TRUE(absl::StartsWith(rows[2], "account-2  registered (200)  ")) << rows[2];
  EXPECT_TRUE(absl::EndsWith(rows[1], "  0")) << rows[1];
  EXPECT_EQ(accounts.err, "");

  CliResult status = Cli({"status", "account-1"});
  ASSERT_EQ(status.exit_code, 0) << status.Describe();
  EXPECT_TRUE(absl::StartsWith(status.out, "account-1: registered (200)")) << status.out;
  EXPECT_TRUE(absl::EndsWith(status.out, ", no calls\n")) << status.out;

  // --json: the status events a native extended client gets, one a line.
  CliResult json = Cli({"accounts", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.Describe();
  Lines lines = json.OutLines();
  ASSERT_EQ(lines.size(), 2u) << json.Describe();
  ASSERT_TRUE(client_->Send(R"({"cmd":"subscribe","extended":true})"));
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_TRUE(IsJsonObject(lines[i])) << lines[i];
    const std::string account = absl::StrCat("account-", i + 1);
    const std::string token = absl::StrCat("native-", i);
    ASSERT_TRUE(client_->Send(absl::StrCat(R"({"cmd":"get-status","account":")", account,
                                           R"(","token":")", token, R"("})")));
    auto native = client_->WaitFor(
        [&](const NativeEvent& e) { return e.event() == "status" && e.Str("token") == token; });
    ASSERT_TRUE(native.has_value());
    std::string expected = WithoutSeq(native->json);
    expected.erase(expected.find(absl::StrCat(",\"token\":\"", token, "\"")));
    EXPECT_EQ(WithoutSeq(lines[i]), expected + "}");
    EXPECT_EQ(Event(lines[i]).Int("seq"), 0);  // a unary reply is not numbered
  }
  CliResult one = Cli({"--json", "status", "account-2"});
  ASSERT_EQ(one.exit_code, 0) << one.Describe();
  EXPECT_EQ(one.out, lines[1] + "\n");
}

TEST_F(TelestraCliTest, CallAnswerAndHangupWithTheEventsAFollowerSaw) {
  StartCliGateway(TwoAccounts(kamailio().server()));
  std::unique_ptr<CliProcess> json_events = StartCli({"events", "--follow", "--json"});
  std::unique_ptr<CliProcess> text_events = StartCli({"events", "--follow"});
  ASSERT_NE(json_events, nullptr);
  ASSERT_NE(text_events, nullptr);
  // The snapshot: one status per account, then the stream is live.
  ASSERT_TRUE(json_events->WaitForLines(HasLines(2))) << json_events->Err();
  ASSERT_TRUE(text_events->WaitForLines(HasLines(2))) << text_events->Err();
  const Lines snapshot = json_events->OutLines();
  EXPECT_EQ(Event(snapshot[0]).event(), "status");
  EXPECT_EQ(Event(snapshot[0]).Str("account"), "account-1");
  EXPECT_EQ(Event(snapshot[1]).Str("account"), "account-2");
  const int64_t snapshot_seq = Event(snapshot[0]).Int("seq");
  EXPECT_GT(snapshot_seq, 0);

  CliResult call = Cli({"--json", "call", "account-1", "3002"});
  ASSERT_EQ(call.exit_code, 0) << call.Describe();
  ASSERT_EQ(call.OutLines().size(), 1u) << call.Describe();
  NativeEvent call_return = Event(call.OutLines()[0]);
  EXPECT_EQ(call_return.event(), "call-return");
  EXPECT_EQ(call_return.Str("account"), "account-1");
  const int64_t outgoing = call_return.Int("call_id");
  ASSERT_GE(outgoing, 0);

  ASSERT_TRUE(json_events->WaitForLines(HasJsonEvent("call-incoming", "account-2")))
      << json_events->Out();
  int64_t incoming = -1;
  for (const std::string& line : json_events->OutLines()) {
    NativeEvent e = Event(line);
    if (e.event() == "call-incoming") incoming = e.Int("call_id");
  }
  ASSERT_GE(incoming, 0);
  const std::string incoming_id = absl::StrCat(incoming);

  CliResult answer = Cli({"answer", "account-2", incoming_id});
  ASSERT_EQ(answer.exit_code, 0) << answer.Describe();
  EXPECT_EQ(answer.out, absl::StrCat("account-2: answered call ", incoming, "\n"));
  ASSERT_TRUE(json_events->WaitForLines(HasJsonEvent("call-answered", "account-1", outgoing)));
  ASSERT_TRUE(json_events->WaitForLines(HasJsonEvent("call-answered", "account-2", incoming)));

  // The call in status, and in the state `events` prints without --follow.
  CliResult status = Cli({"status", "account-1"});
  ASSERT_EQ(status.exit_code, 0) << status.Describe();
  const Lines status_lines = status.OutLines();
  ASSERT_EQ(status_lines.size(), 3u) << status.Describe();
  EXPECT_TRUE(absl::EndsWith(status_lines[0], ", 1 call")) << status_lines[0];
  EXPECT_EQ(status_lines[1], "CALL  STATE   DIRECTION  PEER");
  EXPECT_EQ(status_lines[2], absl::StrCat(outgoing, "     active  outgoing   3002"));

  CliResult state = Cli({"events"});
  ASSERT_EQ(state.exit_code, 0) << state.Describe();
  ASSERT_EQ(state.OutLines().size(), 2u) << state.Describe();
  EXPECT_TRUE(absl::StrContains(state.OutLines()[0],
                                absl::StrCat("status account-1 registered (200), 1 call; call ",
                                             outgoing, " active outgoing 3002")))
      << state.out;
  CliResult one_account = Cli({"events", "--json", "--account", "account-2"});
  ASSERT_EQ(one_account.exit_code, 0) << one_account.Describe();
  ASSERT_EQ(one_account.OutLines().size(), 1u) << one_account.Describe();
  EXPECT_EQ(Event(one_account.OutLines()[0]).Str("account"), "account-2");
  // A replay: the call's events since the snapshot, then the state now.
  CliResult replay = Cli({"events", "--json", "--after-seq", absl::StrCat(snapshot_seq)});
  ASSERT_EQ(replay.exit_code, 0) << replay.Describe();
  EXPECT_TRUE(HasJsonEvent("call-incoming", "account-2", incoming)(replay.OutLines()))
      << replay.out;
  EXPECT_EQ(Event(replay.OutLines().back()).event(), "status") << replay.out;

  CliResult hangup = Cli({"hangup", "account-1", absl::StrCat(outgoing)});
  ASSERT_EQ(hangup.exit_code, 0) << hangup.Describe();
  EXPECT_EQ(hangup.out, absl::StrCat("account-1: hung up call ", outgoing, "\n"));
  ASSERT_TRUE(json_events->WaitForLines(HasJsonEvent("call-ended", "account-1", outgoing)));
  ASSERT_TRUE(json_events->WaitForLines(HasJsonEvent("call-ended", "account-2", incoming)));
  ASSERT_TRUE(text_events->WaitForLines(
      HasLineContaining(absl::StrCat("call-incoming account-2 call ", incoming, " from 3001"))))
      << text_events->Out();
  ASSERT_TRUE(text_events->WaitForLines(
      HasLineContaining(absl::StrCat("call-ended account-1 call ", outgoing))))
      << text_events->Out();

  // Ctrl-C ends a follower cleanly.
  CliResult followed = json_events->Interrupt();
  EXPECT_EQ(followed.exit_code, 0) << followed.Describe();
  EXPECT_EQ(followed.err, "");
  int64_t last_seq = 0;
  for (const std::string& line : followed.OutLines()) {
    EXPECT_TRUE(IsJsonObject(line)) << line;
    const int64_t seq = Event(line).Int("seq");
    EXPECT_GE(seq, last_seq) << line;  // the snapshot's statuses share one
    last_seq = seq;
  }
  CliResult text = text_events->Interrupt();
  EXPECT_EQ(text.exit_code, 0) << text.Describe();
}

TEST_F(TelestraCliTest, LoginTakesThePasswordFromTheEnvironmentOrStdinNeverFromArgv) {
  StartCliGateway({{Account("account-1", 3001), Account("account-2", 3002, false)}}, {"account-1"});
  const std::vector<std::string> login = {"login", "account-2", "--user",
                                          "3002",  "--server",  kamailio().server()};
  std::vector<std::string> with_flag = login;
  with_flag.insert(with_flag.end(), {"--password", "sip3002"});
  CliResult refused = Cli(with_flag);
  EXPECT_EQ(refused.exit_code, 2) << refused.Describe();
  EXPECT_TRUE(absl::StrContains(refused.err, "--password is not accepted")) << refused.err;
  EXPECT_TRUE(absl::StrContains(refused.err, "usage: telestra login ACCOUNT")) << refused.err;

  CliResult no_password = Cli(login);  // stdin is /dev/null, no TELESTRA_PASSWORD
  EXPECT_EQ(no_password.exit_code, 2) << no_password.Describe();
  EXPECT_TRUE(absl::StrContains(no_password.err, "no password")) << no_password.err;
  EXPECT_EQ(WaitForContacts(kamailio(), "3002", 0), 0);

  CliResult from_env = Cli(login, {{"TELESTRA_PASSWORD", "sip3002"}});
  ASSERT_EQ(from_env.exit_code, 0) << from_env.Describe();
  EXPECT_TRUE(absl::StartsWith(from_env.out, "account-2: logging in as 3002 at ")) << from_env.out;
  EXPECT_FALSE(absl::StrContains(from_env.out + from_env.err, "sip3002"));
  EXPECT_EQ(WaitForAccountStatus(*client_, "account-2", 200), 200);
  EXPECT_EQ(WaitForContacts(kamailio(), "3002", 1), 1);

  CliResult logout = Cli({"logout", "account-2"});
  ASSERT_EQ(logout.exit_code, 0) << logout.Describe();
  EXPECT_EQ(logout.out, "account-2: logged out\n");
  CliResult status = Cli({"status", "account-2"});
  EXPECT_TRUE(absl::StartsWith(status.out, "account-2: logged out (0)")) << status.Describe();
  EXPECT_TRUE(absl::EndsWith(status.out, ", no calls\n")) << status.Describe();

  CliResult from_stdin = Cli(login, {}, "sip3002\n");
  ASSERT_EQ(from_stdin.exit_code, 0) << from_stdin.Describe();
  EXPECT_EQ(WaitForAccountStatus(*client_, "account-2", 200), 200);
}

TEST_F(TelestraCliTest, RefusedCommandsExitOneWithTheGatewaysError) {
  StartCliGateway(TwoAccounts(kamailio().server()));
  CliResult unknown = Cli({"status", "nobody"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.Describe();
  EXPECT_EQ(unknown.err, "telestra: Unknown account: nobody (NOT_FOUND)\n");
  EXPECT_EQ(unknown.out, "");

  const std::string never_recorded = TestTempDir() + "/never.wav";
  struct Case {
    std::vector<std::string> args;
    std::string error;
  } cases[] = {
      {{"hangup", "account-1", "12345"}, "Unknown call id 12345"},
      {{"answer", "account-1", "12345"}, "Unknown call id 12345"},
      {{"call", "account-1", "3002@evil;x=1"}, "Invalid number"},
      {{"dtmf", "account-1", "12345", "5"}, "12345"},
      {{"transfer", "account-1", "12345", "3003"}, "12345"},
      {{"logout", "nobody"}, "Unknown account: nobody"},
      {{"audio", "account-1", "12345", "--record", never_recorded}, "NOT_FOUND"},
      {{"events", "--account", "nobody"}, "nobody"},
      {{"events", "--follow", "--account", "nobody"}, "nobody"},
  };
  for (const Case& c : cases) {
    CliResult result = Cli(c.args);
    EXPECT_EQ(result.exit_code, 1) << c.args[0] << "\n" << result.Describe();
    EXPECT_TRUE(absl::StartsWith(result.err, "telestra: ")) << result.err;
    EXPECT_TRUE(absl::StrContains(result.err, c.error)) << result.err;
    EXPECT_EQ(result.out, "") << c.args[0];
  }
  EXPECT_EQ(FileSize(never_recorded), -1);  // a refused stream leaves no file
}

TEST_F(TelestraCliTest, UsageErrorsExitTwoWithTheCommandsUsage) {
  CliResult few = RunCli({"call", "account-1"});
  EXPECT_EQ(few.exit_code, 2) << few.Describe();
  EXPECT_TRUE(absl::StartsWith(few.err, "telestra: too few arguments for telestra call"))
      << few.err;
  EXPECT_TRUE(absl::StrContains(few.err, "usage: telestra call ACCOUNT NUM")) << few.err;
  EXPECT_EQ(few.out, "");

  CliResult nothing = RunCli({});
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(nothing.err, "usage: telestra [options] COMMAND")) << nothing.err;
  CliResult unknown = RunCli({"dial", "3002"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_TRUE(absl::StartsWith(unknown.err, "telestra: unknown command 'dial'")) << unknown.err;
  CliResult bad_flag = RunCli({"status", "account-1", "--follow"});
  EXPECT_EQ(bad_flag.exit_code, 2);
  CliResult missing_file =
      RunCli({"audio", "account-1", "0", "--play", TestTempDir() + "/missing.wav"});
  EXPECT_EQ(missing_file.exit_code, 2) << missing_file.Describe();
  EXPECT_TRUE(absl::StrContains(missing_file.err, "missing.wav")) << missing_file.err;

  CliResult help = RunCli({"help", "events"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(help.out, "usage: telestra events")) << help.out;
}

TEST_F(TelestraCliTest, AnUnreachableGatewayExitsThreeNamingTheAddress) {
  const std::string address = GrpcAddress(PickFreePort(SOCK_STREAM));  // nobody listens
  const std::string record = TestTempDir() + "/unreachable.wav";
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"accounts"},
                                             {"call", "account-1", "3002"},
                                             {"events"},
                                             {"events", "--follow"},
                                             {"audio", "account-1", "0", "--record", record}}) {
    const absl::Time start = absl::Now();
    CliResult result = RunCli(args, {{"TELESTRA_ADDRESS", address}});
    EXPECT_EQ(result.exit_code, 3) << args[0] << "\n" << result.Describe();
    EXPECT_TRUE(absl::StrContains(result.err, "cannot reach the gateway at " + address))
        << result.err;
    EXPECT_LT(absl::Now() - start, absl::Seconds(6)) << args[0];  // within --timeout (5 s)
  }
}

TEST_F(TelestraCliTest, ABadTokenExitsOneUnauthenticated) {
  GatewayOptions options = OneIdleAccount();
  options.grpc_settings = {"token = s3cret-token"};
  StartCliGateway(options, {});
  CliResult missing = Cli({"accounts"});
  EXPECT_EQ(missing.exit_code, 1) << missing.Describe();
  EXPECT_EQ(missing.err,
            "telestra: Missing bearer token: send metadata 'authorization: Bearer <token>' "
            "(UNAUTHENTICATED)\n");
  CliResult wrong = Cli({"accounts", "--token", "s3cret-tokem"});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.Describe();
  EXPECT_EQ(wrong.err, "telestra: Invalid bearer token (UNAUTHENTICATED)\n");
  CliResult right = Cli({"accounts"}, {{"TELESTRA_TOKEN", "s3cret-token"}});
  EXPECT_EQ(right.exit_code, 0) << right.Describe();
  CliResult flag_wins = Cli({"--token=nope", "accounts"}, {{"TELESTRA_TOKEN", "s3cret-token"}});
  EXPECT_EQ(flag_wins.exit_code, 1) << flag_wins.Describe();
  CliResult stream = Cli({"events", "--follow", "--token", "nope"});
  EXPECT_EQ(stream.exit_code, 1) << stream.Describe();
  EXPECT_TRUE(absl::StrContains(stream.err, "Invalid bearer token")) << stream.err;
}

TEST_F(TelestraCliTest, TlsTrustsTheCaFromTheFlagOrTheEnvironment) {
  auto cert = MakeSelfSignedCertificate(TestTempDir(), "cli");
  ASSERT_TRUE(cert.ok()) << cert.status();
  GatewayOptions options = OneIdleAccount();
  options.grpc_settings = {"cert = " + cert->cert_path, "key = " + cert->key_path};
  StartCliGateway(options, {});
  CliResult flag = Cli({"--ca", cert->cert_path, "status", "account-1"});
  EXPECT_EQ(flag.exit_code, 0) << flag.Describe();
  EXPECT_TRUE(absl::StartsWith(flag.out, "account-1: ")) << flag.out;
  CliResult env = Cli({"accounts"}, {{"TELESTRA_CA", cert->cert_path}});
  EXPECT_EQ(env.exit_code, 0) << env.Describe();
  CliResult plaintext = Cli({"accounts"});
  EXPECT_EQ(plaintext.exit_code, 3) << plaintext.Describe();
  CliResult no_file = Cli({"--ca", TestTempDir() + "/none.pem", "accounts"});
  EXPECT_EQ(no_file.exit_code, 2) << no_file.Describe();
  EXPECT_TRUE(absl::StrContains(no_file.err, "none.pem")) << no_file.err;
}

TEST_F(TelestraCliTest, AudioRecordsWhatTheCallHearsAndPlaysAFileIntoIt) {
  GatewayOptions options = TwoAccounts(kamailio().server());
  options.account_settings["account-1"] = {"audio = tone:440"};
  StartCliGateway(options);
  CliResult call = Cli({"--json", "call", "account-1", "3002"});
  ASSERT_EQ(call.exit_code, 0) << call.Describe();
  const std::string outgoing = absl::StrCat(Event(call.OutLines().at(0)).Int("call_id"));
  const std::string incoming = absl::StrCat(WaitForIncoming("account-2"));
  CliResult answer = Cli({"answer", "account-2", incoming});
  ASSERT_EQ(answer.exit_code, 0) << answer.Describe();
  ASSERT_TRUE(client_->WaitFor(IsEventOf("call-answered", "account-2")).has_value());

  // Record account-2's call for a second: account-1's 440 Hz; Ctrl-C ends it.
  const std::string heard = TestTempDir() + "/heard.wav";
  std::unique_ptr<CliProcess> recorder =
      StartCli({"audio", "account-2", incoming, "--record", heard});
  ASSERT_NE(recorder, nullptr);
  ASSERT_TRUE(recorder->WaitForLines(
      HasLineContaining(absl::StrCat("audio of account-2 call ", incoming, ": "))))
      << recorder->Out() << recorder->Err();
  EXPECT_TRUE(absl::StrContains(recorder->Out(), ", 8000 Hz, listening"))
      << recorder->Out() << recorder->Err();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (FileSize(heard) < 44 + 2 * 8000 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  CliResult recorded = recorder->Interrupt();
  EXPECT_EQ(recorded.exit_code, 0) << recorded.Describe();
  EXPECT_TRUE(HasLineContaining("recorded ")(recorded.OutLines())) << recorded.out;
  auto wav = backend::testing::ReadWav(heard);
  ASSERT_TRUE(wav.has_value());
  EXPECT_EQ(wav->rate, 8000);
  EXPECT_EQ(wav->channels, 1);
  ASSERT_GE(wav->samples.size(), 8000u);
  absl::Span<const int16_t> tail(wav->samples.data() + wav->samples.size() - 4000, 4000);
  EXPECT_GT(backend::testing::GoertzelPower(tail, 440, 8000),
            20 * backend::testing::GoertzelPower(tail, 700, 8000));

  // Play 1.5 s of 700 Hz (a 44.1 kHz stereo file) from account-1 at 16 kHz
  // while account-2 records (JSON events); the player ends when all of it
  // went out, the recorder when the call ends.
  const std::string tone = TestTempDir() + "/tone700.wav";
  ASSERT_TRUE(backend::testing::WriteToneWav(tone, 44100, 2, 700, 1.5));
  const std::string heard_16k = TestTempDir() + "/heard-16k.wav";
  std::unique_ptr<CliProcess> recorder_16k = StartCli(
      {"--json", "audio", "account-2", incoming, "--record", heard_16k, "--rate", "16000"});
  ASSERT_NE(recorder_16k, nullptr);
  ASSERT_TRUE(recorder_16k->WaitForLines(HasLines(1))) << recorder_16k->Err();
  CliResult played = Cli({"audio", "account-1", outgoing, "--play", tone, "--rate", "16000"});
  EXPECT_EQ(played.exit_code, 0) << played.Describe();
  EXPECT_TRUE(HasLineContaining(absl::StrCat("played ", tone, " (1.5 s)"))(played.OutLines()))
      << played.out;
  CliResult hangup = Cli({"hangup", "account-1", outgoing});
  ASSERT_EQ(hangup.exit_code, 0) << hangup.Describe();
  CliResult ended = recorder_16k->Wait();
  EXPECT_EQ(ended.exit_code, 0) << ended.Describe();
  Lines events = ended.OutLines();
  ASSERT_GE(events.size(), 2u) << ended.Describe();
  for (const std::string& line : events) EXPECT_TRUE(IsJsonObject(line)) << line;
  EXPECT_EQ(Event(events.front()).event(), "audio-started");
  EXPECT_EQ(Event(events.front()).Int("sample_rate"), 16000);
  EXPECT_EQ(Event(events.back()).event(), "audio-stopped");
  EXPECT_EQ(Event(events.back()).Str("reason"), "Call ended");

  auto wav_16k = backend::testing::ReadWav(heard_16k);
  ASSERT_TRUE(wav_16k.has_value());
  EXPECT_EQ(wav_16k->rate, 16000);
  // Some 200 ms of the recording is the played tone rather than the source's.
  int tone_windows = 0;
  for (size_t at = 0; at + 3200 <= wav_16k->samples.size(); at += 3200) {
    absl::Span<const int16_t> window(wav_16k->samples.data() + at, 3200);
    if (backend::testing::GoertzelPower(window, 700, 16000) >
        20 * backend::testing::GoertzelPower(window, 440, 16000)) {
      ++tone_windows;
    }
  }
  EXPECT_GE(tone_windows, 5) << "of " << wav_16k->samples.size() / 3200;
}

}  // namespace
}  // namespace telestra::testing
