#include "gateway/plan/plan.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_files.h"

namespace telestra::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// The example plan of the spec (shared/spec/sip-plan.md), verbatim.
constexpr char kSpecPlan[] = R"ini(# examples/plan.ini
[tcp-settings]          ; native null-terminated JSON port
port = 3550
bind = 127.0.0.1        ; 0.0.0.0 to serve other hosts
extended-events = false
max-clients = 1024
max-message-bytes = 65536

[grpc-settings]
port = 3551
bind = 127.0.0.1

[web-settings]          ; HTTP: dashboard + WebSocket at /ws
port = 3552
bind = 127.0.0.1

[sip-settings]
bind = 127.0.0.1
port = 5070             ; local SIP port of the service's user agent (0 = any free port)
transport = udp         ; udp | tcp
register-expires = 300

[rtp-settings]
port-min = 20000
port-max = 20999
codecs = PCMU, PCMA

[account-1]             ; every section not named *-settings is an account; its name is the API's "account"
user = 3001
pass = sip3001          ; or pass-env = VAR_NAME to read it from the environment
server = 127.0.0.1:5060 ; SIP registrar/proxy, host[:port]
display-name = account-1
register = true         ; false: keep the account logged out until a login command

[account-2]
user = 3002
pass = sip3002
server = 127.0.0.1:5060
)ini";

// A valid account to append after settings sections under test.
constexpr char kAccount[] = "[acc]\nuser = 1\nserver = sip.example\n";

// Parses `text` as "plan.ini", expects InvalidArgument and returns the message.
std::string ErrorOf(const std::string& text) {
  absl::StatusOr<Plan> plan = ParsePlan(text, "plan.ini");
  EXPECT_FALSE(plan.ok()) << "plan parsed but should not:\n" << text;
  if (plan.ok()) return "";
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(plan.status().message());
}

Plan ParseOk(const std::string& text) {
  absl::StatusOr<Plan> plan = ParsePlan(text, "plan.ini");
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *plan : Plan();
}

// ---- Valid plans ------------------------------------------------------------

TEST(PlanParserTest, ParsesSpecExamplePlanToItsValues) {
  Plan plan = ParseOk(kSpecPlan);
  EXPECT_EQ(plan.tcp.port, 3550);
  EXPECT_EQ(plan.tcp.bind, "127.0.0.1");
  EXPECT_FALSE(plan.tcp.extended_events);
  EXPECT_EQ(plan.tcp.max_clients, 1024);
  EXPECT_EQ(plan.tcp.max_message_bytes, 65536);
  EXPECT_EQ(plan.grpc.port, 3551);
  EXPECT_EQ(plan.grpc.bind, "127.0.0.1");
  EXPECT_EQ(plan.grpc.token, "");
  EXPECT_EQ(plan.web.port, 3552);
  EXPECT_EQ(plan.web.bind, "127.0.0.1");
  EXPECT_EQ(plan.sip.bind, "127.0.0.1");
  EXPECT_EQ(plan.sip.port, 5070);
  EXPECT_EQ(plan.sip.transport, "udp");
  EXPECT_EQ(plan.sip.register_expires, 300);
  EXPECT_EQ(plan.rtp.port_min, 20000);
  EXPECT_EQ(plan.rtp.port_max, 20999);
  EXPECT_THAT(plan.rtp.codecs, ElementsAre("PCMU", "PCMA"));
  ASSERT_EQ(plan.accounts.size(), 2u);
  EXPECT_EQ(plan.accounts[0].name, "account-1");
  EXPECT_EQ(plan.accounts[0].user, "3001");
  EXPECT_EQ(plan.accounts[0].password, "sip3001");
  EXPECT_EQ(plan.accounts[0].server, "127.0.0.1:5060");
  EXPECT_EQ(plan.accounts[0].display_name, "account-1");
  EXPECT_TRUE(plan.accounts[0].register_on_start);
  EXPECT_EQ(plan.accounts[1].name, "account-2");
  EXPECT_EQ(plan.accounts[1].user, "3002");
  EXPECT_EQ(plan.accounts[1].password, "sip3002");
  EXPECT_EQ(plan.accounts[1].server, "127.0.0.1:5060");
  EXPECT_EQ(plan.accounts[1].display_name, "");
  EXPECT_TRUE(plan.accounts[1].register_on_start);
}

TEST(PlanParserTest, ExamplesPlanIniLoadsFromRunfiles) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  ASSERT_NE(srcdir, nullptr);
  absl::StatusOr<Plan> plan = LoadPlanFile(std::string(srcdir) + "/telestra/examples/plan.ini");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->accounts.size(), 2u);
  EXPECT_EQ(plan->accounts[0].name, "account-1");
  EXPECT_EQ(plan->accounts[0].user, "3001");
  EXPECT_EQ(plan->accounts[0].password, "sip3001");
  EXPECT_EQ(plan->accounts[1].name, "account-2");
  EXPECT_EQ(plan->accounts[1].user, "3002");
  EXPECT_EQ(plan->accounts[1].password, "sip3002");
  EXPECT_EQ(plan->accounts[1].server, "127.0.0.1:5060");
  EXPECT_EQ(plan->sip.port, 5070);
  EXPECT_EQ(plan->tcp.port, 3550);
}

TEST(PlanParserTest, ExamplesPlanIniEqualsSpecExample) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  ASSERT_NE(srcdir, nullptr);
  const std::string path = std::string(srcdir) + "/telestra/examples/plan.ini";
  std::FILE* file = std::fopen(path.c_str(), "rb");
  ASSERT_NE(file, nullptr);
  std::string text;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) text.append(buffer, n);
  std::fclose(file);
  EXPECT_EQ(text, kSpecPlan);
}

TEST(PlanParserTest, OmittedSectionsAndKeysTakeStructDefaults) {
  Plan plan = ParseOk("[a]\nuser = u\nserver = s\n");
  const TcpSettings tcp;
  const GrpcSettings grpc;
  const WebSettings web;
  const backend::SipConfig sip;
  const backend::RtpConfig rtp;
  EXPECT_EQ(plan.tcp.bind, tcp.bind);
  EXPECT_EQ(plan.tcp.port, 3550);
  EXPECT_FALSE(plan.tcp.extended_events);
  EXPECT_EQ(plan.tcp.max_clients, 1024);
  EXPECT_EQ(plan.tcp.max_message_bytes, 65536);
  EXPECT_EQ(plan.grpc.bind, grpc.bind);
  EXPECT_EQ(plan.grpc.port, 3551);
  EXPECT_EQ(plan.grpc.token, "");
  EXPECT_EQ(plan.grpc.cert, "");
  EXPECT_EQ(plan.grpc.key, "");
  EXPECT_EQ(plan.web.bind, web.bind);
  EXPECT_EQ(plan.web.port, 3552);
  EXPECT_EQ(plan.web.token, "");
  EXPECT_EQ(plan.sip.bind, sip.bind);
  EXPECT_EQ(plan.sip.port, 5070);
  EXPECT_EQ(plan.sip.transport, "udp");
  EXPECT_EQ(plan.sip.register_expires, 300);
  EXPECT_EQ(plan.rtp.port_min, rtp.port_min);
  EXPECT_EQ(plan.rtp.port_max, rtp.port_max);
  EXPECT_THAT(plan.rtp.codecs, ElementsAre("PCMU", "PCMA"));
}

TEST(PlanParserTest, AccountDefaultsToEmptyDisplayNameAndRegisterOnStart) {
  Plan plan = ParseOk("[alice]\nuser = 1001\nserver = pbx.local\n");
  ASSERT_EQ(plan.accounts.size(), 1u);
  EXPECT_EQ(plan.accounts[0].name, "alice");
  EXPECT_EQ(plan.accounts[0].password, "");
  EXPECT_EQ(plan.accounts[0].display_name, "");
  EXPECT_TRUE(plan.accounts[0].register_on_start);
}

TEST(PlanParserTest, KeepsAccountsInFileOrderAndSettingsMayFollowThem) {
  Plan plan = ParseOk(
      "[zeta]\nuser = 1\nserver = s\n"
      "[tcp-settings]\nport = 4000\n"
      "[alpha]\nuser = 2\nserver = s\n");
  ASSERT_EQ(plan.accounts.size(), 2u);
  EXPECT_EQ(plan.accounts[0].name, "zeta");
  EXPECT_EQ(plan.accounts[1].name, "alpha");
  EXPECT_EQ(plan.tcp.port, 4000);
}

TEST(PlanParserTest, AllowsTwoAccountsWithSameUserAtServer) {
  Plan plan = ParseOk(
      "[a]\nuser = 3001\nserver = 127.0.0.1:5060\n"
      "[b]\nuser = 3001\nserver = 127.0.0.1:5060\n");
  ASSERT_EQ(plan.accounts.size(), 2u);
  EXPECT_EQ(plan.accounts[0].name, "a");
  EXPECT_EQ(plan.accounts[1].name, "b");
}

TEST(PlanParserTest, StripsInlineCommentsAfterWhitespace) {
  Plan plan = ParseOk(
      "[tcp-settings] ; comment after a header\n"
      "port = 4000 ; semicolon comment\n"
      "bind = 0.0.0.0\t# hash comment after a tab\n"
      "[a]  # comment\n"
      "user = 1 ;\n"
      "server = s #\n");
  EXPECT_EQ(plan.tcp.port, 4000);
  EXPECT_EQ(plan.tcp.bind, "0.0.0.0");
  ASSERT_EQ(plan.accounts.size(), 1u);
  EXPECT_EQ(plan.accounts[0].user, "1");
  EXPECT_EQ(plan.accounts[0].server, "s");
}

TEST(PlanParserTest, KeepsSemicolonAndHashNotPrecededByWhitespace) {
  Plan plan = ParseOk("[a]\nuser = 1\nserver = s\npass = ab;cd#ef\n");
  ASSERT_EQ(plan.accounts.size(), 1u);
  EXPECT_EQ(plan.accounts[0].password, "ab;cd#ef");
}

TEST(PlanParserTest, SkipsFullLineCommentsBlankLinesAndCarriageReturns) {
  Plan plan = ParseOk(
      "; leading comment\r\n"
      "   # indented comment\r\n"
      "\r\n"
      "   \t\r\n"
      "[a]\r\n"
      "  user   =   1  \r\n"
      "server=s\r\n"
      "display-name = Alice Smith\r\n");
  ASSERT_EQ(plan.accounts.size(), 1u);
  EXPECT_EQ(plan.accounts[0].user, "1");
  EXPECT_EQ(plan.accounts[0].server, "s");
  EXPECT_EQ(plan.accounts[0].display_name, "Alice Smith");
}

TEST(PlanParserTest, ValueMayContainEqualsSign) {
  Plan plan = ParseOk("[a]\nuser = 1\nserver = s\npass = a=b=c\n");
  EXPECT_EQ(plan.accounts[0].password, "a=b=c");
}

TEST(PlanParserTest, AcceptsEveryBooleanSpelling) {
  const std::vector<std::pair<std::string, bool>> cases = {
      {"true", true}, {"yes", true},  {"1", true},      {"on", true},
      {"TRUE", true}, {"Yes", true},  {"false", false}, {"no", false},
      {"0", false},   {"off", false}, {"False", false}, {"OFF", false},
  };
  for (const auto& [text, value] : cases) {
    Plan plan = ParseOk(absl::StrCat("[tcp-settings]\nextended-events = ", text,
                                     "\n[a]\nuser = 1\nserver = s\nregister = ", text, "\n"));
    EXPECT_EQ(plan.tcp.extended_events, value) << text;
    ASSERT_EQ(plan.accounts.size(), 1u);
    EXPECT_EQ(plan.accounts[0].register_on_start, value) << text;
  }
}

TEST(PlanParserTest, NormalizesCodecsToUpperCaseInGivenOrder) {
  Plan plan = ParseOk(absl::StrCat("[rtp-settings]\ncodecs = pcma ,Pcmu\n", kAccount));
  EXPECT_THAT(plan.rtp.codecs, ElementsAre("PCMA", "PCMU"));
}

TEST(PlanParserTest, AcceptsSingleCodec) {
  Plan plan = ParseOk(absl::StrCat("[rtp-settings]\ncodecs = PCMU\n", kAccount));
  EXPECT_THAT(plan.rtp.codecs, ElementsAre("PCMU"));
}

TEST(PlanParserTest, AcceptsSipPortZeroForAnyFreePortAndTcpTransport) {
  Plan plan = ParseOk(absl::StrCat("[sip-settings]\nport = 0\ntransport = TCP\n", kAccount));
  EXPECT_EQ(plan.sip.port, 0);
  EXPECT_EQ(plan.sip.transport, "tcp");
}

TEST(PlanParserTest, AcceptsMaxMessageBytesBounds) {
  EXPECT_EQ(ParseOk(absl::StrCat("[tcp-settings]\nmax-message-bytes = 256\n", kAccount))
                .tcp.max_message_bytes,
            256);
  EXPECT_EQ(ParseOk(absl::StrCat("[tcp-settings]\nmax-message-bytes = 16777216\n", kAccount))
                .tcp.max_message_bytes,
            16777216);
}

TEST(PlanParserTest, ParsesStateSettingsAndHistoryEvents) {
  const std::string dir = ::testing::TempDir();
  Plan plan = ParseOk(absl::StrCat("[state-settings]\ndir = ", dir,
                                   "\nkeep-calls-on-stop = yes\n[tcp-settings]\n"
                                   "history-events = 16\n",
                                   kAccount));
  EXPECT_EQ(plan.state.dir, dir);
  EXPECT_TRUE(plan.state.keep_calls_on_stop);
  EXPECT_EQ(plan.tcp.history_events, 16);
  Plan defaults = ParseOk(kAccount);
  EXPECT_EQ(defaults.state.dir, "");  // the journal is off by default
  EXPECT_FALSE(defaults.state.keep_calls_on_stop);
  EXPECT_EQ(defaults.tcp.history_events, 4096);
  EXPECT_EQ(ErrorOf(absl::StrCat("[state-settings]\ndir = /nonexistent/dir\n", kAccount)),
            "plan.ini:2: [state-settings] dir: '/nonexistent/dir' is not an existing directory");
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nhistory-events = 15\n", kAccount)),
            "plan.ini:2: [tcp-settings] history-events must be 16..1000000, got 15");
}

TEST(PlanParserTest, ParsesMetricsSettings) {
  Plan plan = ParseOk(absl::StrCat("[metrics-settings]\nport = 9100\nbind = 0.0.0.0\n", kAccount));
  EXPECT_EQ(plan.metrics.port, 9100);
  EXPECT_EQ(plan.metrics.bind, "0.0.0.0");
  EXPECT_EQ(ParseOk(kAccount).metrics.port, 3553);
  EXPECT_EQ(ParseOk(absl::StrCat("[metrics-settings]\nport = 0\n", kAccount)).metrics.port, 0);
}

TEST(PlanParserTest, ParsesMediaKeysAndRejectsBadAudio) {
  Plan plan =
      ParseOk(absl::StrCat("[rtp-settings]\nrtp-timeout = 5\njitter-buffer-ms = 100\n"
                           "[a]\nuser = 1\nserver = s\naudio = tone:440\nrecord = /tmp\n"));
  EXPECT_EQ(plan.rtp.rtp_timeout, 5);
  EXPECT_EQ(plan.rtp.jitter_buffer_ms, 100);
  EXPECT_EQ(plan.accounts[0].audio, "tone:440");
  EXPECT_EQ(plan.accounts[0].record_dir, "/tmp");
  absl::StatusOr<Plan> bad = ParsePlan("[a]\nuser = 1\nserver = s\naudio = beep\n", "plan.ini");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), "plan.ini:4: [a] audio: ")) << bad.status();
  absl::StatusOr<Plan> no_dir =
      ParsePlan("[a]\nuser = 1\nserver = s\nrecord = /nonexistent/dir\n", "plan.ini");
  ASSERT_FALSE(no_dir.ok());
  EXPECT_EQ(no_dir.status().message(),
            "plan.ini:4: [a] record: '/nonexistent/dir' is not an existing directory");
}

TEST(PlanParserTest, ParsesRegisterRetryBounds) {
  Plan plan = ParseOk(
      absl::StrCat("[sip-settings]\nregister-retry-min = 1\nregister-retry-max = 30\n", kAccount));
  EXPECT_EQ(plan.sip.register_retry_min, 1);
  EXPECT_EQ(plan.sip.register_retry_max, 30);
  EXPECT_EQ(ParseOk(kAccount).sip.register_retry_min, 2);
  EXPECT_EQ(ParseOk(kAccount).sip.register_retry_max, 120);
}

// The SIP thread's wake-up knobs are gone from SipConfig: a plan that sets
// them still loads (values checked as before), and each one set is reported
// as deprecated and ignored. thread-nice is a setting (the thread's nice
// value), not deprecated.
TEST(PlanParserTest, AcceptsDeprecatedSipKnobsWithAWarning) {
  EXPECT_TRUE(ParseOk(kAccount).warnings.empty());
  EXPECT_EQ(ParseOk(kAccount).sip.thread_nice, 0);
  Plan plan = ParseOk(absl::StrCat(
      "[sip-settings]\nthread-nice = -5\nbusy-poll-us = 2000\nanswer-poll-us = 0\n", kAccount));
  EXPECT_EQ(plan.sip.thread_nice, -5);
  ASSERT_EQ(plan.warnings.size(), 2u);
  EXPECT_TRUE(absl::StartsWith(plan.warnings[0],
                               "[sip-settings] busy-poll-us is deprecated and ignored: "))
      << plan.warnings[0];
  EXPECT_TRUE(absl::StartsWith(plan.warnings[1],
                               "[sip-settings] answer-poll-us is deprecated and ignored: "))
      << plan.warnings[1];
}

TEST(PlanParserTest, DeprecatedSipKnobsStillRejectValuesOutsideTheirOldRange) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"thread-nice", "-21"},     {"thread-nice", "20"},       {"thread-nice", "high"},
      {"busy-poll-us", "-1"},     {"busy-poll-us", "100001"},  {"busy-poll-us", "fast"},
      {"answer-poll-us", "-1"},   {"answer-poll-us", "100001"}, {"answer-poll-us", "soon"}};
  for (const auto& [key, value] : bad) {
    auto plan = ParsePlan(absl::StrCat("[sip-settings]\n", key, " = ", value, "\n", kAccount),
                          "plan.ini");
    ASSERT_FALSE(plan.ok()) << key << "=" << value;
    EXPECT_TRUE(
        absl::StrContains(plan.status().message(), absl::StrCat("plan.ini:2: [sip-settings] ", key)))
        << plan.status();
  }
}

TEST(PlanParserTest, RejectsRetryMaxBelowRetryMinNamingTheKey) {
  absl::StatusOr<Plan> plan = ParsePlan(
      absl::StrCat("[sip-settings]\nregister-retry-min = 10\nregister-retry-max = 5\n", kAccount),
      "plan.ini");
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "plan.ini:3: [sip-settings] register-retry-max must not be less than "
            "register-retry-min");
}

TEST(PlanParserTest, AcceptsRegisterExpiresBounds) {
  EXPECT_EQ(ParseOk(absl::StrCat("[sip-settings]\nregister-expires = 10\n", kAccount))
                .sip.register_expires,
            10);
  EXPECT_EQ(ParseOk(absl::StrCat("[sip-settings]\nregister-expires = 86400\n", kAccount))
                .sip.register_expires,
            86400);
}

TEST(PlanParserTest, AcceptsSmallestEvenRtpRange) {
  Plan plan =
      ParseOk(absl::StrCat("[rtp-settings]\nport-min = 30000\nport-max = 30001\n", kAccount));
  EXPECT_EQ(plan.rtp.port_min, 30000);
  EXPECT_EQ(plan.rtp.port_max, 30001);
}

TEST(PlanParserTest, AcceptsServerWithoutPortAndBracketedIpv6) {
  Plan plan = ParseOk(
      "[a]\nuser = 1\nserver = pbx.example.com\n"
      "[b]\nuser = 2\nserver = [::1]:5060\n");
  EXPECT_EQ(plan.accounts[0].server, "pbx.example.com");
  EXPECT_EQ(plan.accounts[1].server, "[::1]:5060");
}

TEST(PlanParserTest, ReadsPasswordFromPassEnv) {
  ASSERT_EQ(setenv("TELESTRA_PLAN_TEST_PASS", "from-env", 1), 0);
  Plan plan = ParseOk("[a]\nuser = 1\nserver = s\npass-env = TELESTRA_PLAN_TEST_PASS\n");
  ASSERT_EQ(plan.accounts.size(), 1u);
  EXPECT_EQ(plan.accounts[0].password, "from-env");
  unsetenv("TELESTRA_PLAN_TEST_PASS");
}

TEST(PlanParserTest, ReadsTokensInlineAndFromTokenEnv) {
  ASSERT_EQ(setenv("TELESTRA_PLAN_TEST_TOKEN", "env-token", 1), 0);
  Plan plan =
      ParseOk(absl::StrCat("[grpc-settings]\ntoken = inline-token\n"
                           "[web-settings]\ntoken-env = TELESTRA_PLAN_TEST_TOKEN\n",
                           kAccount));
  EXPECT_EQ(plan.grpc.token, "inline-token");
  EXPECT_EQ(plan.web.token, "env-token");
  unsetenv("TELESTRA_PLAN_TEST_TOKEN");
}

TEST(PlanParserTest, AcceptsCertTogetherWithKey) {
  Plan plan = ParseOk(
      absl::StrCat("[web-settings]\ncert = /etc/t/cert.pem\nkey = /etc/t/key.pem\n", kAccount));
  EXPECT_EQ(plan.web.cert, "/etc/t/cert.pem");
  EXPECT_EQ(plan.web.key, "/etc/t/key.pem");
}

// ---- Errors
// -------------------------------------------------------------------

TEST(PlanParserTest, RejectsUnknownKeyNamingFileLineAndKey) {
  EXPECT_EQ(ErrorOf("[account-1]\nusr = 3001\nserver = s\n"),
            "plan.ini:2: [account-1] unknown key 'usr'");
}

TEST(PlanParserTest, RejectsKeyOfAnotherSection) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nuser = 1\n", kAccount)),
            "plan.ini:2: [tcp-settings] unknown key 'user'");
  EXPECT_EQ(ErrorOf(absl::StrCat("[rtp-settings]\nport = 1\n", kAccount)),
            "plan.ini:2: [rtp-settings] unknown key 'port'");
}

TEST(PlanParserTest, KeysAreCaseSensitive) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nPort = 1\n", kAccount)),
            "plan.ini:2: [tcp-settings] unknown key 'Port'");
}

TEST(PlanParserTest, RejectsUnknownSettingsSection) {
  std::string error = ErrorOf(absl::StrCat("\n[tpc-settings]\nport = 1\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:2: [tpc-settings] unknown section"));
}

TEST(PlanParserTest, RejectsSettingsSectionWithWrongCase) {
  std::string error = ErrorOf(absl::StrCat("[TCP-Settings]\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:1: [TCP-Settings] unknown section"));
}

TEST(PlanParserTest, RejectsDuplicateSection) {
  std::string error = ErrorOf("[a]\nuser = 1\nserver = s\n\n[a]\nuser = 2\n");
  EXPECT_THAT(error, HasSubstr("plan.ini:5: [a] duplicate section"));
  EXPECT_THAT(error, HasSubstr("line 1"));
}

TEST(PlanParserTest, RejectsDuplicateSettingsSection) {
  std::string error = ErrorOf(absl::StrCat("[sip-settings]\n[sip-settings]\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:2: [sip-settings] duplicate section"));
}

TEST(PlanParserTest, RejectsDuplicateKey) {
  std::string error = ErrorOf("[a]\nuser = 1\nserver = s\nuser = 2\n");
  EXPECT_THAT(error, HasSubstr("plan.ini:4: [a] duplicate key 'user'"));
  EXPECT_THAT(error, HasSubstr("line 2"));
}

TEST(PlanParserTest, RejectsMissingUserAtSectionHeaderLine) {
  EXPECT_EQ(ErrorOf("# c\n[account-1]\nserver = s\npass = x\n"),
            "plan.ini:2: [account-1] missing required key 'user'");
}

TEST(PlanParserTest, RejectsMissingServerAtSectionHeaderLine) {
  EXPECT_EQ(ErrorOf("[account-1]\nuser = 1\n\n[account-2]\nuser = 2\nserver = s\n"),
            "plan.ini:1: [account-1] missing required key 'server'");
}

TEST(PlanParserTest, RejectsEmptyUser) {
  EXPECT_EQ(ErrorOf("[a]\nuser =\nserver = s\n"), "plan.ini:2: [a] user must not be empty");
}

TEST(PlanParserTest, RejectsPassAndPassEnvTogether) {
  ASSERT_EQ(setenv("TELESTRA_PLAN_TEST_BOTH", "x", 1), 0);
  std::string error = ErrorOf(
      "[a]\nuser = 1\nserver = s\npass = p\npass-env = "
      "TELESTRA_PLAN_TEST_BOTH\n");
  EXPECT_THAT(error, HasSubstr("plan.ini:5: [a] pass and pass-env are mutually exclusive"));
  unsetenv("TELESTRA_PLAN_TEST_BOTH");
}

TEST(PlanParserTest, RejectsPassEnvNamingUnsetVariable) {
  unsetenv("TELESTRA_PLAN_TEST_UNSET");
  std::string error = ErrorOf("[a]\nuser = 1\nserver = s\npass-env = TELESTRA_PLAN_TEST_UNSET\n");
  EXPECT_THAT(error, HasSubstr("plan.ini:4: [a] pass-env"));
  EXPECT_THAT(error, HasSubstr("'TELESTRA_PLAN_TEST_UNSET'"));
  EXPECT_THAT(error, HasSubstr("not set"));
}

TEST(PlanParserTest, RejectsTokenEnvNamingUnsetVariable) {
  unsetenv("TELESTRA_PLAN_TEST_UNSET_TOKEN");
  std::string error = ErrorOf(
      absl::StrCat("[grpc-settings]\ntoken-env = TELESTRA_PLAN_TEST_UNSET_TOKEN\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:2: [grpc-settings] token-env"));
  EXPECT_THAT(error, HasSubstr("TELESTRA_PLAN_TEST_UNSET_TOKEN"));
}

TEST(PlanParserTest, RejectsTokenAndTokenEnvTogether) {
  ASSERT_EQ(setenv("TELESTRA_PLAN_TEST_TOKEN2", "x", 1), 0);
  std::string error = ErrorOf(
      absl::StrCat("[web-settings]\ntoken-env = TELESTRA_PLAN_TEST_TOKEN2\ntoken = t\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:3: [web-settings] token and token-env are mutually "
                               "exclusive"));
  unsetenv("TELESTRA_PLAN_TEST_TOKEN2");
}

TEST(PlanParserTest, RejectsCertWithoutKey) {
  std::string error = ErrorOf(absl::StrCat("[grpc-settings]\nport = 1\ncert = c.pem\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:3: [grpc-settings] cert is set but key is not"));
}

TEST(PlanParserTest, RejectsKeyWithoutCert) {
  std::string error = ErrorOf(absl::StrCat("[web-settings]\nkey = k.pem\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:2: [web-settings] key is set but cert is not"));
}

// ---- [tcp-settings] token, token-env, cert, key, idle-timeout (issue 17)

TEST(PlanParserTest, NativePortSecurityKeysDefaultToOff) {
  Plan plan = ParseOk(kAccount);
  EXPECT_EQ(plan.tcp.token, "");
  EXPECT_EQ(plan.tcp.cert, "");
  EXPECT_EQ(plan.tcp.key, "");
  EXPECT_EQ(plan.tcp.idle_timeout, 0);
}

TEST(PlanParserTest, ReadsNativePortTokenCertKeyAndIdleTimeout) {
  Plan plan = ParseOk(absl::StrCat(
      "[tcp-settings]\ntoken = native-secret\ncert = /etc/t/cert.pem\nkey = /etc/t/key.pem\n"
      "idle-timeout = 300\n",
      kAccount));
  EXPECT_EQ(plan.tcp.token, "native-secret");
  EXPECT_EQ(plan.tcp.cert, "/etc/t/cert.pem");
  EXPECT_EQ(plan.tcp.key, "/etc/t/key.pem");
  EXPECT_EQ(plan.tcp.idle_timeout, 300);
  ASSERT_EQ(setenv("TELESTRA_PLAN_TEST_NATIVE_TOKEN", "native-env-secret", 1), 0);
  EXPECT_EQ(ParseOk(absl::StrCat("[tcp-settings]\ntoken-env = TELESTRA_PLAN_TEST_NATIVE_TOKEN\n",
                                 kAccount))
                .tcp.token,
            "native-env-secret");
  unsetenv("TELESTRA_PLAN_TEST_NATIVE_TOKEN");
  EXPECT_EQ(ParseOk(absl::StrCat("[tcp-settings]\nidle-timeout = 0\n", kAccount)).tcp.idle_timeout,
            0);
  EXPECT_EQ(
      ParseOk(absl::StrCat("[tcp-settings]\nidle-timeout = 86400\n", kAccount)).tcp.idle_timeout,
      86400);
}

TEST(PlanParserTest, RejectsBadNativePortSecurityKeys) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\ntoken = a\ntoken-env = B\n", kAccount)),
            "plan.ini:3: [tcp-settings] token and token-env are mutually exclusive (token is set "
            "on line 2)");
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\ntoken-env = TELESTRA_PLAN_TEST_UNSET_NATIVE\n",
                                 kAccount)),
            "plan.ini:2: [tcp-settings] token-env names environment variable "
            "'TELESTRA_PLAN_TEST_UNSET_NATIVE', which is not set");
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\ncert = c.pem\n", kAccount)),
            "plan.ini:2: [tcp-settings] cert is set but key is not (TLS needs both cert and key)");
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nkey = k.pem\n", kAccount)),
            "plan.ini:2: [tcp-settings] key is set but cert is not (TLS needs both cert and key)");
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nidle-timeout = -1\n", kAccount)),
            "plan.ini:2: [tcp-settings] idle-timeout must be 0..86400, got -1");
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nidle-timeout = 10s\n", kAccount)),
            "plan.ini:2: [tcp-settings] idle-timeout must be an integer, got '10s'");
  // The secret never appears in an error.
  EXPECT_THAT(ErrorOf(absl::StrCat("[tcp-settings]\ntoken = Sup3r-S3cret\ntoken = Sup3r-S3cret\n",
                                   kAccount)),
              Not(HasSubstr("Sup3r-S3cret")));
}

TEST(PlanParserTest, RejectsTcpPortOutOfRange) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nbind = 127.0.0.1\nport = 70000\n", kAccount)),
            "plan.ini:3: [tcp-settings] port must be 1..65535, got 70000");
}

TEST(PlanParserTest, RejectsTcpPortZero) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nport = 0\n", kAccount)),
            "plan.ini:2: [tcp-settings] port must be 1..65535, got 0");
}

TEST(PlanParserTest, RejectsGrpcAndWebPortOutOfRange) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[grpc-settings]\nport = 0\n", kAccount)),
            "plan.ini:2: [grpc-settings] port must be 1..65535, got 0");
  EXPECT_EQ(ErrorOf(absl::StrCat("[web-settings]\nport = 65536\n", kAccount)),
            "plan.ini:2: [web-settings] port must be 1..65535, got 65536");
}

TEST(PlanParserTest, RejectsSipPortOutOfRange) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[sip-settings]\nport = 65536\n", kAccount)),
            "plan.ini:2: [sip-settings] port must be 0..65535, got 65536");
  EXPECT_EQ(ErrorOf(absl::StrCat("[sip-settings]\nport = -1\n", kAccount)),
            "plan.ini:2: [sip-settings] port must be 0..65535, got -1");
}

TEST(PlanParserTest, RejectsBadInteger) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nport = 35x0\n", kAccount)),
            "plan.ini:2: [tcp-settings] port must be an integer, got '35x0'");
  EXPECT_THAT(ErrorOf(absl::StrCat("[rtp-settings]\nport-min =\n", kAccount)),
              HasSubstr("plan.ini:2: [rtp-settings] port-min must be an integer"));
  EXPECT_THAT(
      ErrorOf(absl::StrCat("[tcp-settings]\nmax-clients = 99999999999999999999\n", kAccount)),
      HasSubstr("plan.ini:2: [tcp-settings] max-clients must be an integer"));
}

TEST(PlanParserTest, RejectsBadBoolean) {
  EXPECT_THAT(ErrorOf(absl::StrCat("[tcp-settings]\nextended-events = maybe\n", kAccount)),
              HasSubstr("plan.ini:2: [tcp-settings] extended-events must be a "
                        "boolean"));
  EXPECT_THAT(ErrorOf("[a]\nuser = 1\nserver = s\nregister = 2\n"),
              HasSubstr("plan.ini:4: [a] register must be a boolean"));
}

TEST(PlanParserTest, SipSecurityKeysHaveSafeDefaultsAndBounds) {
  Plan plan = ParseOk(kAccount);
  EXPECT_TRUE(plan.sip.trusted.empty());
  EXPECT_EQ(plan.sip.ring_timeout, 120);
  EXPECT_EQ(plan.sip.invite_timeout, 180);
  EXPECT_EQ(plan.sip.max_ringing, 16);
  plan = ParseOk(absl::StrCat(
      "[sip-settings]\ntrusted = 10.1.2.3/8, 192.0.2.7, ::1\nring-timeout = 0\n"
      "invite-timeout = 30\nmax-ringing = 2\n",
      kAccount));
  EXPECT_EQ(plan.sip.trusted,
            (std::vector<std::string>{"10.0.0.0/8", "192.0.2.7/32", "::1/128"}));
  EXPECT_EQ(plan.sip.ring_timeout, 0);
  EXPECT_EQ(plan.sip.invite_timeout, 30);
  EXPECT_EQ(plan.sip.max_ringing, 2);
  EXPECT_EQ(ErrorOf(absl::StrCat("[sip-settings]\ntrusted = cucm.example\n", kAccount)),
            "plan.ini:2: [sip-settings] trusted: 'cucm.example' is not an IPv4 or IPv6 network "
            "(CIDR such as 10.0.0.0/8, 127.0.0.1 or ::1/128)");
  EXPECT_EQ(ErrorOf(absl::StrCat("[sip-settings]\ntrusted = ,\n", kAccount)),
            "plan.ini:2: [sip-settings] trusted must list at least one network (leave it out "
            "to trust only the registrars)");
  EXPECT_EQ(ErrorOf(absl::StrCat("[sip-settings]\nmax-ringing = 0\n", kAccount)),
            "plan.ini:2: [sip-settings] max-ringing must be 1..10000, got 0");
  EXPECT_EQ(ErrorOf(absl::StrCat("[sip-settings]\nring-timeout = -1\n", kAccount)),
            "plan.ini:2: [sip-settings] ring-timeout must be 0..86400, got -1");
}

TEST(PlanParserTest, AccountDtmfIsRfc4733ByDefaultOrInfoAndNothingElse) {
  EXPECT_FALSE(ParseOk(kAccount).accounts[0].dtmf_info);
  EXPECT_FALSE(ParseOk(absl::StrCat(kAccount, "dtmf = rfc4733\n")).accounts[0].dtmf_info);
  EXPECT_TRUE(ParseOk(absl::StrCat(kAccount, "dtmf = info\n")).accounts[0].dtmf_info);
  EXPECT_EQ(ErrorOf(absl::StrCat(kAccount, "dtmf = inband\n")),
            "plan.ini:4: [acc] dtmf: 'inband' is not one of rfc4733, info");
  // Exact words: no other case, no empty value.
  EXPECT_EQ(ErrorOf(absl::StrCat(kAccount, "dtmf = INFO\n")),
            "plan.ini:4: [acc] dtmf: 'INFO' is not one of rfc4733, info");
  EXPECT_EQ(ErrorOf(absl::StrCat(kAccount, "dtmf =\n")),
            "plan.ini:4: [acc] dtmf: '' is not one of rfc4733, info");
}

TEST(PlanParserTest, AccountAcceptReferIsTrueByDefaultAndABoolean) {
  EXPECT_TRUE(ParseOk(kAccount).accounts[0].accept_refer);
  EXPECT_TRUE(ParseOk(absl::StrCat(kAccount, "accept-refer = true\n")).accounts[0].accept_refer);
  EXPECT_FALSE(ParseOk(absl::StrCat(kAccount, "accept-refer = false\n")).accounts[0].accept_refer);
  EXPECT_FALSE(ParseOk(absl::StrCat(kAccount, "accept-refer = no\n")).accounts[0].accept_refer);
  EXPECT_EQ(ErrorOf(absl::StrCat(kAccount, "accept-refer = never\n")),
            "plan.ini:4: [acc] accept-refer must be a boolean (true/false, yes/no, 1/0, on/off), "
            "got 'never'");
  // An account key, not a settings one.
  EXPECT_EQ(ErrorOf(absl::StrCat("[sip-settings]\naccept-refer = false\n", kAccount)),
            "plan.ini:2: [sip-settings] unknown key 'accept-refer'");
}

TEST(PlanParserTest, SessionExpiresIs1800ByDefaultZeroForOffOr90To86400) {
  EXPECT_EQ(ParseOk(kAccount).sip.session_expires, 1800);
  for (int seconds : {0, 90, 86400}) {
    EXPECT_EQ(ParseOk(absl::StrCat("[sip-settings]\nsession-expires = ", seconds, "\n", kAccount))
                  .sip.session_expires,
              seconds);
  }
  // Every integer out of range names both ranges and the value.
  for (int seconds : {1, 89, 86401, -1}) {
    EXPECT_EQ(
        ErrorOf(absl::StrCat("[sip-settings]\nsession-expires = ", seconds, "\n", kAccount)),
        absl::StrCat("plan.ini:2: [sip-settings] session-expires must be 0 (off) or 90..86400 "
                     "(RFC 4028), got ",
                     seconds));
  }
  EXPECT_EQ(ErrorOf(absl::StrCat("[sip-settings]\nsession-expires = 30m\n", kAccount)),
            "plan.ini:2: [sip-settings] session-expires must be an integer, got '30m'");
  // A settings key, not an account one.
  EXPECT_EQ(ErrorOf(absl::StrCat(kAccount, "session-expires = 90\n")),
            "plan.ini:4: [acc] unknown key 'session-expires'");
}

TEST(PlanParserTest, AccountUserAndServerHaveTheLoginSyntax) {
  EXPECT_EQ(ErrorOf("[a]\nuser = 30@01\nserver = s\n"),
            "plan.ini:2: [a] user may only contain letters, digits and - _ . ! ~ * ' ( ) + $, "
            "got '30@01'");
  EXPECT_EQ(ErrorOf("[a]\nuser = 1\nserver = s;maddr=x\n"),
            "plan.ini:3: [a] server host may only contain letters, digits, '-' and '.', got "
            "'s;maddr=x'");
  EXPECT_EQ(ParseOk("[a]\nuser = john.doe+1\nserver = pbx-1.example:5080\n").accounts[0].user,
            "john.doe+1");
}

TEST(PlanParserTest, RtpLatchIsOffByDefaultAndParsedAsABoolean) {
  EXPECT_FALSE(ParseOk(kAccount).rtp.latch);
  EXPECT_TRUE(ParseOk(absl::StrCat("[rtp-settings]\nlatch = true\n", kAccount)).rtp.latch);
  EXPECT_FALSE(ParseOk(absl::StrCat("[rtp-settings]\nlatch = off\n", kAccount)).rtp.latch);
  EXPECT_THAT(ErrorOf(absl::StrCat("[rtp-settings]\nlatch = nat\n", kAccount)),
              HasSubstr("plan.ini:2: [rtp-settings] latch must be a boolean"));
}

TEST(PlanParserTest, MaxStreamsPerCallIsFourByDefaultAndBounded) {
  EXPECT_EQ(ParseOk(kAccount).rtp.max_streams_per_call, 4);
  EXPECT_EQ(ParseOk(absl::StrCat("[rtp-settings]\nmax-streams-per-call = 1\n", kAccount))
                .rtp.max_streams_per_call,
            1);
  EXPECT_THAT(ErrorOf(absl::StrCat("[rtp-settings]\nmax-streams-per-call = 0\n", kAccount)),
              HasSubstr("plan.ini:2: [rtp-settings] max-streams-per-call"));
  EXPECT_THAT(ErrorOf(absl::StrCat("[rtp-settings]\nmax-streams-per-call = 65\n", kAccount)),
              HasSubstr("plan.ini:2: [rtp-settings] max-streams-per-call"));
}

TEST(PlanParserTest, QualityIntervalIsFiveSecondsByDefaultZeroForNeverAndBounded) {
  EXPECT_EQ(ParseOk(kAccount).rtp.quality_interval, 5);
  EXPECT_EQ(ParseOk(absl::StrCat("[rtp-settings]\nquality-interval = 0\n", kAccount))
                .rtp.quality_interval,
            0);
  EXPECT_EQ(ParseOk(absl::StrCat("[rtp-settings]\nquality-interval = 3600\n", kAccount))
                .rtp.quality_interval,
            3600);
  EXPECT_THAT(ErrorOf(absl::StrCat("[rtp-settings]\nquality-interval = -1\n", kAccount)),
              HasSubstr("plan.ini:2: [rtp-settings] quality-interval"));
  EXPECT_THAT(ErrorOf(absl::StrCat("[rtp-settings]\nquality-interval = 3601\n", kAccount)),
              HasSubstr("plan.ini:2: [rtp-settings] quality-interval"));
  EXPECT_THAT(ErrorOf(absl::StrCat("[rtp-settings]\nquality-interval = 5s\n", kAccount)),
              HasSubstr("plan.ini:2: [rtp-settings] quality-interval"));
}

TEST(PlanParserTest, WebHostsAreLowerCaseNamesAndOnlyAWebKey) {
  EXPECT_TRUE(ParseOk(kAccount).web.hosts.empty());
  Plan plan = ParseOk(absl::StrCat(
      "[web-settings]\nhosts = Gateway.Example.COM, pbx-1.local., gw_2 ,\n", kAccount));
  EXPECT_EQ(plan.web.hosts,
            (std::vector<std::string>{"gateway.example.com", "pbx-1.local", "gw_2"}));
  EXPECT_EQ(ErrorOf(absl::StrCat("[web-settings]\nhosts = gateway.example:3552\n", kAccount)),
            "plan.ini:2: [web-settings] hosts: 'gateway.example:3552' is not a host name "
            "(letters, digits, '-' and '.', without a port, e.g. gateway.example.com)");
  EXPECT_EQ(ErrorOf(absl::StrCat("[web-settings]\nhosts = a b\n", kAccount)),
            "plan.ini:2: [web-settings] hosts: 'a b' is not a host name (letters, digits, '-' "
            "and '.', without a port, e.g. gateway.example.com)");
  EXPECT_EQ(ErrorOf(absl::StrCat("[web-settings]\nhosts = ,\n", kAccount)),
            "plan.ini:2: [web-settings] hosts must list at least one host name (leave it out to "
            "allow only addresses and localhost)");
  EXPECT_EQ(ErrorOf(absl::StrCat("[grpc-settings]\nhosts = gateway.example\n", kAccount)),
            "plan.ini:2: [grpc-settings] unknown key 'hosts'");
}

TEST(PlanParserTest, GrpcMaxStreamsDefaultsTo1024AndIsOnlyAGrpcKey) {
  EXPECT_EQ(ParseOk(kAccount).grpc.max_streams, 1024);
  EXPECT_EQ(ParseOk(absl::StrCat("[grpc-settings]\nmax-streams = 1\n", kAccount)).grpc.max_streams,
            1);
  EXPECT_EQ(ErrorOf(absl::StrCat("[grpc-settings]\nmax-streams = 0\n", kAccount)),
            "plan.ini:2: [grpc-settings] max-streams must be at least 1, got 0");
  EXPECT_EQ(ErrorOf(absl::StrCat("[web-settings]\nmax-streams = 8\n", kAccount)),
            "plan.ini:2: [web-settings] unknown key 'max-streams'");
}

TEST(PlanParserTest, RejectsBadTransport) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[sip-settings]\ntransport = tls\n", kAccount)),
            "plan.ini:2: [sip-settings] transport must be udp or tcp, got 'tls'");
}

TEST(PlanParserTest, RejectsRegisterExpiresOutOfRange) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[sip-settings]\nregister-expires = 9\n", kAccount)),
            "plan.ini:2: [sip-settings] register-expires must be 10..86400, got 9");
  EXPECT_EQ(ErrorOf(absl::StrCat("[sip-settings]\nregister-expires = 86401\n", kAccount)),
            "plan.ini:2: [sip-settings] register-expires must be 10..86400, "
            "got 86401");
}

TEST(PlanParserTest, RejectsEmptyRtpRange) {
  std::string error =
      ErrorOf(absl::StrCat("[rtp-settings]\nport-min = 30000\nport-max = 29999\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:3: [rtp-settings] port-max 29999 is below "
                               "port-min 30000"));
  EXPECT_THAT(error, HasSubstr("empty"));
}

TEST(PlanParserTest, RejectsEmptyRtpRangeAgainstDefaultPortMax) {
  std::string error = ErrorOf(absl::StrCat("[rtp-settings]\nport-min = 30000\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:2: [rtp-settings] port-max 20999 is below "
                               "port-min 30000"));
}

TEST(PlanParserTest, RejectsOddSizedRtpRange) {
  std::string error =
      ErrorOf(absl::StrCat("[rtp-settings]\nport-min = 20000\nport-max = 20998\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:3: [rtp-settings] port-max 20998"));
  EXPECT_THAT(error, HasSubstr("odd-sized"));
}

TEST(PlanParserTest, RejectsOddRtpPortMin) {
  std::string error =
      ErrorOf(absl::StrCat("[rtp-settings]\nport-min = 20001\nport-max = 21000\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:2: [rtp-settings] port-min must be even"));
  EXPECT_THAT(error, HasSubstr("got 20001"));
}

TEST(PlanParserTest, RejectsRtpPortOutOfRange) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[rtp-settings]\nport-max = 65536\n", kAccount)),
            "plan.ini:2: [rtp-settings] port-max must be 1..65535, got 65536");
}

TEST(PlanParserTest, RejectsUnsupportedCodec) {
  EXPECT_THAT(ErrorOf(absl::StrCat("[rtp-settings]\ncodecs = PCMU, G729\n", kAccount)),
              HasSubstr("plan.ini:2: [rtp-settings] codecs: unsupported codec 'G729'"));
}

TEST(PlanParserTest, RejectsEmptyCodecList) {
  EXPECT_THAT(ErrorOf(absl::StrCat("[rtp-settings]\ncodecs = , \n", kAccount)),
              HasSubstr("plan.ini:2: [rtp-settings] codecs must list at least one"));
}

TEST(PlanParserTest, RejectsMaxClientsBelowOne) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nmax-clients = 0\n", kAccount)),
            "plan.ini:2: [tcp-settings] max-clients must be at least 1, got 0");
}

TEST(PlanParserTest, AllowListsCanonicalNetworksAndDefaultsToEveryone) {
  EXPECT_TRUE(ParseOk(kAccount).tcp.allow.empty());
  Plan plan = ParseOk(absl::StrCat(
      "[tcp-settings]\nallow = 127.0.0.1, 10.1.2.3/8 ,192.168.0.0/16,::1, fd00::1/8,\n", kAccount));
  EXPECT_THAT(plan.tcp.allow,
              ElementsAre("127.0.0.1/32", "10.0.0.0/8", "192.168.0.0/16", "::1/128", "fd00::/8"));
}

TEST(PlanParserTest, RejectsAllowEntriesThatAreNotNetworks) {
  for (const char* bad : {"10.0.0.0/33", "10.0.0", "localhost", "10.0.0.0/", "::1/129",
                          "1.2.3.4/-1", "10.0.0.0/8/8"}) {
    EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nallow = 127.0.0.1, ", bad, "\n", kAccount)),
              absl::StrCat("plan.ini:2: [tcp-settings] allow: '", bad,
                           "' is not an IPv4 or IPv6 network (CIDR such as 10.0.0.0/8, "
                           "127.0.0.1 or ::1/128)"));
  }
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nallow = ,\n", kAccount)),
            "plan.ini:2: [tcp-settings] allow must list at least one network (leave it out "
            "to allow every address)");
}

TEST(PlanParserTest, RejectsMaxMessageBytesOutOfRange) {
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nmax-message-bytes = 255\n", kAccount)),
            "plan.ini:2: [tcp-settings] max-message-bytes must be "
            "256..16777216, got 255");
  EXPECT_EQ(ErrorOf(absl::StrCat("[tcp-settings]\nmax-message-bytes = 16777217\n", kAccount)),
            "plan.ini:2: [tcp-settings] max-message-bytes must be 256..16777216, got "
            "16777217");
}

TEST(PlanParserTest, RejectsServerPortOutOfRange) {
  EXPECT_EQ(ErrorOf("[a]\nuser = 1\nserver = 127.0.0.1:0\n"),
            "plan.ini:3: [a] server port must be 1..65535, got 0");
  EXPECT_EQ(ErrorOf("[a]\nuser = 1\nserver = 127.0.0.1:65536\n"),
            "plan.ini:3: [a] server port must be 1..65535, got 65536");
}

TEST(PlanParserTest, RejectsMalformedServer) {
  EXPECT_THAT(ErrorOf("[a]\nuser = 1\nserver = host:abc\n"),
              HasSubstr("plan.ini:3: [a] server port must be an integer"));
  EXPECT_THAT(ErrorOf("[a]\nuser = 1\nserver = :5060\n"),
              HasSubstr("plan.ini:3: [a] server must be host[:port]"));
  EXPECT_THAT(ErrorOf("[a]\nuser = 1\nserver =\n"),
              HasSubstr("plan.ini:3: [a] server must be host[:port]"));
  EXPECT_THAT(ErrorOf("[a]\nuser = 1\nserver = ::1:5060\n"),
              HasSubstr("plan.ini:3: [a] server must be host[:port]"));
}

TEST(PlanParserTest, RejectsKeyOutsideAnySection) {
  std::string error = ErrorOf(absl::StrCat("# header\nport = 3550\n", kAccount));
  EXPECT_THAT(error, HasSubstr("plan.ini:2: key 'port' outside any section"));
}

TEST(PlanParserTest, RejectsLineWithoutEquals) {
  EXPECT_THAT(ErrorOf("[a]\nuser = 1\nserver s\n"), HasSubstr("plan.ini:3: [a] malformed line"));
}

TEST(PlanParserTest, RejectsLineWithoutKey) {
  EXPECT_THAT(ErrorOf("[a]\nuser = 1\n= s\n"),
              HasSubstr("plan.ini:3: [a] malformed line: missing key"));
}

TEST(PlanParserTest, RejectsUnterminatedSectionHeader) {
  EXPECT_THAT(ErrorOf("[a]\nuser = 1\nserver = s\n[b\n"),
              HasSubstr("plan.ini:4: malformed section header: unterminated '['"));
}

TEST(PlanParserTest, RejectsTextAfterSectionHeader) {
  EXPECT_THAT(ErrorOf("[a];comment\nuser = 1\nserver = s\n"),
              HasSubstr("plan.ini:1: malformed section header"));
}

TEST(PlanParserTest, RejectsEmptySectionName) {
  EXPECT_THAT(ErrorOf("[ ]\nuser = 1\nserver = s\n"),
              HasSubstr("plan.ini:1: malformed section header: empty name"));
}

TEST(PlanParserTest, RejectsPlanWithoutAccounts) {
  std::string error = ErrorOf("[tcp-settings]\nport = 3550\n");
  EXPECT_THAT(error, HasSubstr("plan.ini:2: no accounts"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("plan.ini:1: no accounts"));
}

TEST(PlanParserTest, ErrorsUseTheGivenFileName) {
  absl::StatusOr<Plan> plan = ParsePlan("[a]\nusr = 1\n", "/etc/telestra/site.ini");
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(), "/etc/telestra/site.ini:2: [a] unknown key 'usr'");
}

// Each error shown in docs/configuration.md, made by one edit of the example.
TEST(PlanParserTest, ErrorsShownInDocsComeFromOneEditOfTheExample) {
  auto edited = [](absl::string_view from, absl::string_view to) {
    std::string text = kSpecPlan;
    const size_t at = text.find(std::string(from));
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), std::string(to));
    return text;
  };
  EXPECT_EQ(ErrorOf(edited("user = 3001", "usr = 3001")),
            "plan.ini:29: [account-1] unknown key 'usr'");
  EXPECT_EQ(ErrorOf(edited("port = 3550", "port = 70000")),
            "plan.ini:3: [tcp-settings] port must be 1..65535, got 70000");
  EXPECT_EQ(ErrorOf(edited("pass = sip3002\nserver = 127.0.0.1:5060\n", "pass = sip3002\n")),
            "plan.ini:35: [account-2] missing required key 'server'");
  EXPECT_EQ(ErrorOf(edited("port-max = 20999", "port-max = 20998")),
            "plan.ini:25: [rtp-settings] port-max 20998 makes an odd-sized RTP "
            "port range (20000..20998 holds 999 ports); it must hold an even "
            "number, so port-max must be odd");
}

TEST(PlanParserTest, PasswordNeverAppearsInAnyErrorText) {
  constexpr char kSecret[] = "Sup3r-S3cret";
  ASSERT_EQ(setenv("TELESTRA_PLAN_TEST_SECRET", kSecret, 1), 0);
  const std::vector<std::string> plans = {
      // Errors on the pass line itself.
      "[a]\nuser = 1\nserver = s\npass = x\npass = Sup3r-S3cret\n",
      "[a]\nuser = 1\nserver = s\npass-env = TELESTRA_PLAN_TEST_SECRET\n"
      "pass = Sup3r-S3cret\n",
      "[a]\nuser = 1\nserver = s\npass = Sup3r-S3cret\n"
      "pass-env = TELESTRA_PLAN_TEST_SECRET\n",
      "[a]\nuser = 1\nserver = s\npass Sup3r-S3cret\n",
      "[a]\nuser = 1\nserver = s\npass: Sup3r-S3cret\n",
      "[a]\nuser = 1\nserver = s\npassword = Sup3r-S3cret\n",
      "[tcp-settings]\npass = Sup3r-S3cret\n[a]\nuser = 1\nserver = s\n",
      "pass = Sup3r-S3cret\n[a]\nuser = 1\nserver = s\n",
      "[a]\nuser = 1\nserver = s\n[Sup3r-S3cret\n",
      "Sup3r-S3cret\n[a]\nuser = 1\nserver = s\n",
      // Errors elsewhere in an account holding a password.
      "[a]\nuser = 1\npass = Sup3r-S3cret\n",
      "[a]\nserver = s\npass = Sup3r-S3cret\n",
      "[a]\nuser = 1\npass = Sup3r-S3cret\nserver = s:99999\n",
      "[a]\nuser = 1\npass = Sup3r-S3cret\nserver = s\nregister = maybe\n",
      "[a]\nuser = 1\npass-env = TELESTRA_PLAN_TEST_SECRET\nusr = 1\n",
      "[a]\nuser = 1\npass-env = TELESTRA_PLAN_TEST_SECRET\n",
      // Tokens are secrets too.
      "[grpc-settings]\ntoken = Sup3r-S3cret\ntoken = Sup3r-S3cret\n",
      "[web-settings]\ntoken = Sup3r-S3cret\ntoken-env = "
      "TELESTRA_PLAN_TEST_SECRET\n",
      "[web-settings]\ntoken-env = TELESTRA_PLAN_TEST_SECRET\ncert = c\n",
  };
  for (const std::string& text : plans) {
    absl::StatusOr<Plan> plan = ParsePlan(text, "plan.ini");
    ASSERT_FALSE(plan.ok()) << text;
    EXPECT_THAT(std::string(plan.status().message()), Not(HasSubstr(kSecret))) << text;
    EXPECT_THAT(plan.status().ToString(), Not(HasSubstr(kSecret))) << text;
  }
  unsetenv("TELESTRA_PLAN_TEST_SECRET");
}

TEST(PlanParserTest, LoadPlanFileReportsMissingFileAsNotFoundNamingPath) {
  const std::string path = "/nonexistent/telestra/plan.ini";
  absl::StatusOr<Plan> plan = LoadPlanFile(path);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr(path));
}

TEST(PlanParserTest, LoadPlanFileReportsDirectoryAsNotFound) {
  const std::string tmp = telestra::testing::TestTempDir();
  absl::StatusOr<Plan> plan = LoadPlanFile(tmp);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr(tmp));
}

TEST(PlanParserTest, LoadPlanFileNamesItsPathInParseErrors) {
  const std::string tmp = telestra::testing::TestTempDir();
  const std::string path = tmp + "/bad-plan.ini";
  std::FILE* file = std::fopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  const std::string text = "[a]\nuser = 1\nserver = s\nusr = 2\n";
  ASSERT_EQ(std::fwrite(text.data(), 1, text.size(), file), text.size());
  std::fclose(file);
  absl::StatusOr<Plan> plan = LoadPlanFile(path);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(plan.status().message(), path + ":4: [a] unknown key 'usr'");
}

Plan MinimalPlan() {
  absl::StatusOr<Plan> plan =
      ParsePlan("[tcp-settings]\nport = 4000\n[a]\nuser = 1\nserver = s\n", "p.ini");
  EXPECT_TRUE(plan.ok()) << plan.status();
  return *plan;
}

TEST(CommandLineTest, TheJournalNeedsAFixedSipPort) {
  Plan plan = MinimalPlan();
  plan.state.dir = ::testing::TempDir();
  plan.sip.port = 5070;
  EXPECT_TRUE(ApplyCommandLine({}, &plan).ok());
  CommandLineOverrides flags;
  flags.sip_port = 0;
  absl::Status status = ApplyCommandLine(flags, &plan);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "[state-settings] dir needs a fixed [sip-settings] port: restored calls keep their "
            "dialogs' Contact, and port = 0 picks another port at every start");
  plan.state.dir = "";  // without the journal, any free port is fine
  EXPECT_TRUE(ApplyCommandLine(flags, &plan).ok());
}

TEST(CommandLineTest, UnsetOverridesLeaveThePlanAsItIs) {
  Plan plan = MinimalPlan();
  ASSERT_TRUE(ApplyCommandLine({}, &plan).ok());
  EXPECT_EQ(plan.tcp.port, 4000);
  EXPECT_EQ(plan.tcp.bind, "127.0.0.1");
  EXPECT_EQ(plan.web.max_sessions, 256);
  EXPECT_EQ(plan.grpc.max_queued_events, 8192);
  EXPECT_EQ(plan.process.io_threads, 1);
  EXPECT_EQ(plan.process.shutdown_seconds, 3);
}

TEST(CommandLineTest, SetOverridesReplaceThePlansValues) {
  Plan plan = MinimalPlan();
  CommandLineOverrides flags;
  flags.native_port = 0;  // any free port: allowed on the command line
  flags.native_bind = "0.0.0.0";
  flags.web_port = 0;
  flags.metrics_port = 0;
  flags.web_max_sessions = 2;
  flags.web_max_message_bytes = 1024;
  flags.web_idle_timeout_seconds = 1;
  flags.grpc_max_queued_events = 4;
  flags.io_threads = 2;
  flags.shutdown_seconds = 8;
  flags.sip_thread_nice = -3;
  ASSERT_TRUE(ApplyCommandLine(flags, &plan).ok());
  EXPECT_EQ(plan.sip.thread_nice, -3);
  EXPECT_EQ(plan.tcp.port, 0);
  EXPECT_EQ(plan.tcp.bind, "0.0.0.0");
  EXPECT_EQ(plan.web.port, 0);
  EXPECT_EQ(plan.metrics.port, 0);
  EXPECT_EQ(plan.web.max_sessions, 2);
  EXPECT_EQ(plan.web.max_message_bytes, 1024);
  EXPECT_EQ(plan.web.idle_timeout_seconds, 1);
  EXPECT_EQ(plan.grpc.max_queued_events, 4);
  EXPECT_EQ(plan.process.io_threads, 2);
  EXPECT_EQ(plan.process.shutdown_seconds, 8);
}

TEST(CommandLineTest, OutOfRangeFlagsAreRefusedWithThePlanKeysWording) {
  struct Case {
    CommandLineOverrides flags;
    std::string message;
  };
  std::vector<Case> cases(7);
  cases[6].flags.sip_thread_nice = 20;
  cases[6].message = "--sip_thread_nice must be -20..19, got 20";
  cases[0].flags.web_max_sessions = 0;
  cases[0].message = "--web_max_sessions must be at least 1, got 0";
  cases[1].flags.native_port = 70000;
  cases[1].message = "--native_port must be 0..65535, got 70000";
  cases[2].flags.web_max_message_bytes = 100;
  cases[2].message = "--web_max_message_bytes must be 256..16777216, got 100";
  cases[3].flags.io_threads = 0;
  cases[3].message = "--io_threads must be 1..64, got 0";
  cases[4].flags.grpc_max_queued_events = -5;
  cases[4].message = "--grpc_max_queued_events must be at least 1, got -5";
  cases[5].flags.native_bind = "";
  cases[5].message = "--native_bind must not be empty";
  for (const Case& c : cases) {
    Plan plan = MinimalPlan();
    absl::Status status = ApplyCommandLine(c.flags, &plan);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(status.message(), c.message);
  }
}

TEST(CommandLineTest, ARefusedOverrideLeavesThePlanUnchanged) {
  Plan plan = MinimalPlan();
  CommandLineOverrides flags;
  flags.native_port = 5000;
  flags.web_max_sessions = 0;
  ASSERT_FALSE(ApplyCommandLine(flags, &plan).ok());
  EXPECT_EQ(plan.tcp.port, 4000);
}

TEST(CommandLineTest, PlanKeysAndFlagsShareTheRangeWording) {
  absl::StatusOr<Plan> plan =
      ParsePlan("[tcp-settings]\nmax-clients = 0\n[a]\nuser = 1\nserver = s\n", "p.ini");
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("max-clients must be at least 1, got 0"));
}

}  // namespace
}  // namespace telestra::gateway
