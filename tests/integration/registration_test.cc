// The gateway binary against a real Kamailio registrar (digest auth) on
// loopback, driven through the native port as a legacy client would.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"

namespace telestra::testing {
namespace {

class RegistrationTest : public GatewayTest {};

bool IsFailFor(const NativeEvent& e, const std::string& account) {
  return e.event() == "fail" && e.Str("account") == account;
}

TEST_F(RegistrationTest, PlanAccountsReachRegisteredAndSeedStatusShape) {
  auto gateway = StartGatewayProcess({{Account("account-1", 3001), Account("account-2", 3002)}});
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectNative(*gateway);
  EXPECT_EQ(WaitForAccountStatus(*client, "account-1", 200), 200);
  EXPECT_EQ(WaitForAccountStatus(*client, "account-2", 200), 200);
  EXPECT_EQ(WaitForContacts(kamailio(), "3001", 1), 1);
  EXPECT_EQ(WaitForContacts(kamailio(), "3002", 1), 1);

  // The exact legacy shape of the issue's example.
  client->Send(R"({"cmd":"get-status","account":"account-1"})");
  auto status = client->Next();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->json,
            R"({"event":"status","account":"account-1","account_status":200,"calls":[]})");
}

TEST_F(RegistrationTest, WrongPasswordGives401AndFailReachesEveryClient) {
  auto gateway = StartGatewayProcess({{Account("account-3", 3003, /*register_on_start=*/false)}});
  ASSERT_NE(gateway, nullptr);
  auto a = ConnectNative(*gateway);
  auto b = ConnectNative(*gateway);
  EXPECT_EQ(WaitForAccountStatus(*a, "account-3", 0), 0);
  a->Send(absl::StrCat(R"({"cmd":"login","account":"account-3","user":"3003",)",
                       R"("pass":"wrong-secret","server":")", kamailio().server(), R"("})"));
  auto fail_a = a->WaitFor([](const NativeEvent& e) { return IsFailFor(e, "account-3"); });
  auto fail_b = b->WaitFor([](const NativeEvent& e) { return IsFailFor(e, "account-3"); });
  ASSERT_TRUE(fail_a.has_value());
  ASSERT_TRUE(fail_b.has_value());
  EXPECT_EQ(fail_a->Str("error"), "Failed to log in to account: account-3");
  EXPECT_EQ(fail_b->json, fail_a->json);
  int status = WaitForAccountStatus(*a, "account-3", 401);
  EXPECT_TRUE(status == 401 || status == 403) << status;
  // The password never shows in the log.
  EXPECT_FALSE(absl::StrContains(gateway->ReadLog(), "wrong-secret"));
  EXPECT_FALSE(absl::StrContains(gateway->ReadLog(), "sip3003"));
}

TEST_F(RegistrationTest, LogoutUnregistersAndLoginRegistersAgain) {
  auto gateway = StartGatewayProcess({{Account("account-4", 3004)}});
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectNative(*gateway);
  ASSERT_EQ(WaitForAccountStatus(*client, "account-4", 200), 200);
  ASSERT_EQ(WaitForContacts(kamailio(), "3004", 1), 1);

  client->Send(R"({"cmd":"logout","account":"account-4"})");
  EXPECT_EQ(WaitForAccountStatus(*client, "account-4", 0), 0);
  EXPECT_EQ(WaitForContacts(kamailio(), "3004", 0), 0);

  client->Send(absl::StrCat(R"({"cmd":"login","account":"account-4","user":"3004",)",
                            R"("pass":"sip3004","server":")", kamailio().server(), R"("})"));
  EXPECT_EQ(WaitForAccountStatus(*client, "account-4", 200), 200);
  EXPECT_EQ(WaitForContacts(kamailio(), "3004", 1), 1);
}

TEST_F(RegistrationTest, LoginWithOtherUserMovesTheRegistration) {
  auto gateway = StartGatewayProcess({{Account("account-5", 3005)}});
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectNative(*gateway);
  ASSERT_EQ(WaitForAccountStatus(*client, "account-5", 200), 200);
  client->Send(absl::StrCat(R"({"cmd":"login","account":"account-5","user":"3006",)",
                            R"("pass":"sip3006","server":")", kamailio().server(), R"("})"));
  EXPECT_EQ(WaitForContacts(kamailio(), "3006", 1), 1);
  EXPECT_EQ(WaitForContacts(kamailio(), "3005", 0), 0);
  EXPECT_EQ(WaitForAccountStatus(*client, "account-5", 200), 200);
}

TEST_F(RegistrationTest, StatusGoesOnlyToRequesterWithItsToken) {
  auto gateway = StartGatewayProcess({{Account("account-1", 3001, false)}});
  ASSERT_NE(gateway, nullptr);
  auto a = ConnectNative(*gateway);
  auto b = ConnectNative(*gateway);
  a->Send(R"({"cmd":"get-status","account":"account-1","token":"req-7"})");
  auto reply = a->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->event(), "status");
  EXPECT_EQ(reply->Str("token"), "req-7");
  // b receives nothing from a's request: its first event is its own reply.
  b->Send(R"({"cmd":"get-status","account":"account-1","token":"mine"})");
  auto first = b->Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->Str("token"), "mine");
}

TEST_F(RegistrationTest, MalformedMessageGetsFailAndConnectionKeepsWorking) {
  auto gateway = StartGatewayProcess({{Account("account-1", 3001, false)}});
  ASSERT_NE(gateway, nullptr);
  auto a = ConnectNative(*gateway);
  auto b = ConnectNative(*gateway);
  a->SendRaw(std::string("{\"cmd\":\"get-status\",\"account\":}\0", 32));
  auto fail = a->Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->event(), "fail");
  EXPECT_TRUE(absl::StartsWith(fail->Str("error"), "Malformed JSON")) << fail->json;
  a->SendRaw(std::string("\x01\x02garbage\0", 10));
  auto garbage = a->Next();
  ASSERT_TRUE(garbage.has_value());
  EXPECT_EQ(garbage->event(), "fail");
  a->Send(R"({"cmd":"dial","account":"account-1"})");
  auto unknown = a->Next();
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->Str("error"), "Unknown command: dial");
  EXPECT_EQ(unknown->Str("account"), "account-1");
  // Same connection still serves a good command.
  a->Send(R"({"cmd":"get-status","account":"account-1"})");
  auto status = a->Next();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->event(), "status");
  // None of a's garbage reached b.
  EXPECT_FALSE(b->Next(absl::Milliseconds(300)).has_value());
  EXPECT_FALSE(b->closed());
}

TEST_F(RegistrationTest, PrettyPrintedLineFramedSeedExamplesWork) {
  auto gateway = StartGatewayProcess({{Account("account-1", 3001, false)}});
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectNative(*gateway);
  // As in the vendor document: pretty-printed, newline-terminated, two in one send.
  client->SendRaw(
      "{\n    \"cmd\": \"get-status\",\n    \"account\": \"account-1\"\n}\n"
      "{\n    \"cmd\": \"get-status\",\n    \"account\": \"nobody\"\n}\n");
  auto first = client->Next();
  auto second = client->Next();
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(first->event(), "status");
  EXPECT_EQ(second->Str("error"), "Unknown account: nobody");
}

TEST_F(RegistrationTest, ClientsOverMaxClientsAreRefusedWithFail) {
  GatewayOptions options{{Account("account-1", 3001, false)}};
  options.tcp_settings = {"max-clients = 2"};
  auto gateway = StartGatewayProcess(options);
  ASSERT_NE(gateway, nullptr);
  auto a = ConnectNative(*gateway);
  auto b = ConnectNative(*gateway);
  // Make sure both are accepted before the third arrives.
  EXPECT_EQ(WaitForAccountStatus(*a, "account-1", 0), 0);
  EXPECT_EQ(WaitForAccountStatus(*b, "account-1", 0), 0);
  auto c = ConnectNative(*gateway);
  auto refused = c->Next();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->event(), "fail");
  EXPECT_TRUE(absl::StrContains(refused->Str("error"), "Too many clients")) << refused->json;
  EXPECT_FALSE(c->Next(absl::Seconds(5)).has_value());
  EXPECT_TRUE(c->closed());
  // The others are unaffected.
  EXPECT_EQ(WaitForAccountStatus(*a, "account-1", 0), 0);
}

TEST_F(RegistrationTest, ExtendedEventsOnlyAfterSubscribe) {
  auto gateway = StartGatewayProcess({{Account("account-7", 3007, false)}});
  ASSERT_NE(gateway, nullptr);
  auto legacy = ConnectNative(*gateway);
  auto modern = ConnectNative(*gateway);
  modern->Send(R"({"cmd":"subscribe","extended":true})");
  modern->Send(absl::StrCat(R"({"cmd":"login","account":"account-7","user":"3007",)",
                            R"("pass":"sip3007","server":")", kamailio().server(), R"("})"));
  auto registered = modern->WaitFor([](const NativeEvent& e) {
    return e.event() == "account-status" && e.Int("account_status") == 200;
  });
  ASSERT_TRUE(registered.has_value());
  EXPECT_GT(registered->Int("seq"), 0);
  // The legacy client saw no extended event: its next event is its own reply.
  legacy->Send(R"({"cmd":"get-status","account":"account-7"})");
  auto first = legacy->Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->event(), "status");
  EXPECT_FALSE(first->Has("seq"));
}

TEST_F(RegistrationTest, SigtermUnregistersAndExitsZeroWithinFiveSeconds) {
  auto gateway = StartGatewayProcess({{Account("account-8", 3008)}});
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectNative(*gateway);
  ASSERT_EQ(WaitForAccountStatus(*client, "account-8", 200), 200);
  ASSERT_EQ(WaitForContacts(kamailio(), "3008", 1), 1);
  absl::Time start = absl::Now();
  ASSERT_EQ(kill(gateway->process().pid(), SIGTERM), 0);
  auto exit_status = gateway->process().WaitForExit(start + absl::Seconds(5));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(WaitForContacts(kamailio(), "3008", 0), 0);
  // The client was closed.
  EXPECT_FALSE(client->Next(absl::Seconds(2)).has_value());
  EXPECT_TRUE(client->closed());
}

TEST_F(RegistrationTest, OversizeMessageGetsFailAndNextMessageWorks) {
  GatewayOptions options{{Account("account-1", 3001, false)}};
  options.tcp_settings = {"max-message-bytes = 256"};
  auto gateway = StartGatewayProcess(options);
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectNative(*gateway);
  client->Send(absl::StrCat(R"({"cmd":"get-status","account":")", std::string(300, 'x'), R"("})"));
  client->Send(R"({"cmd":"get-status","account":"account-1"})");
  auto fail = client->Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->Str("error"), "Message too large");
  auto status = client->Next();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->event(), "status");
}

TEST_F(RegistrationTest, RegistrationIsRefreshedBeforeItExpires) {
  GatewayOptions options{{Account("account-2", 3002)}};
  options.sip_settings = {"register-expires = 10"};  // Kamailio's minimum
  auto gateway = StartGatewayProcess(options);
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectNative(*gateway);
  ASSERT_EQ(WaitForAccountStatus(*client, "account-2", 200), 200);
  // Well past the first expiry the binding is still there.
  absl::SleepFor(absl::Seconds(13));
  EXPECT_EQ(kamailio().CountRegistered("3002").value_or(-1), 1);
  EXPECT_EQ(WaitForAccountStatus(*client, "account-2", 200, absl::Seconds(1)), 200);
}

TEST_F(RegistrationTest, MetricsExposeAccountsAndClientsButNoPassword) {
  auto gateway =
      StartGatewayProcess({{Account("account-1", 3001), Account("account-2", 3002, false)}});
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectNative(*gateway);
  ASSERT_EQ(WaitForAccountStatus(*client, "account-1", 200), 200);
  std::string metrics = HttpGet(gateway->metrics_port(), "/metrics").value_or("");
  EXPECT_TRUE(absl::StrContains(metrics, "telestra_account_status{account=\"account-1\"} 200"))
      << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, "telestra_account_status{account=\"account-2\"} 0"));
  EXPECT_TRUE(absl::StrContains(metrics, "telestra_native_clients 1"));
  EXPECT_TRUE(absl::StrContains(metrics, "telestra_native_slow_disconnects_total 0"));
  EXPECT_TRUE(absl::StrContains(metrics, "telestra_media_discarded_datagrams_total 0"));
  EXPECT_TRUE(absl::StrContains(metrics, "telestra_media_frames_skipped_total "));
  EXPECT_FALSE(absl::StrContains(metrics, "sip3001"));
}

// The nice value (field 19 of /proc/PID/task/TID/stat) of each of `pid`'s
// threads, by thread name.
std::map<std::string, int> ThreadNiceValues(int pid) {
  std::map<std::string, int> values;
  for (const auto& [name, fields] : ThreadStats(pid)) {
    if (fields.size() > 16) values[name] = std::stoi(fields[16]);
  }
  return values;
}

// The SIP thread's old wake-up knobs (issue 18) still start the gateway:
// each is named in a deprecation warning and has no effect. thread-nice
// still sets the SIP thread's nice value, and only that thread's.
TEST(GatewayStartupTest, RetiredSipTuningKnobsStartTheGatewayWithAWarningAndNoEffect) {
  GatewayOptions options = OneIdleAccount();
  options.sip_settings = {"thread-nice = 5", "busy-poll-us = 100", "answer-poll-us = 500"};
  auto gateway = GatewayProcess::Start(options);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  // The API threads name themselves as they start, maybe just after the
  // ports are open.
  std::map<std::string, int> nice;
  for (int i = 0; i < 100; ++i) {
    nice = ThreadNiceValues((*gateway)->process().pid());
    if (nice.count("telestra-io-0")) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(nice.count("telestra-sip")) << "no thread named telestra-sip";
  EXPECT_EQ(nice["telestra-sip"], 5) << "thread-nice = 5 not applied";
  ASSERT_TRUE(nice.count("telestra-io-0"));
  ASSERT_TRUE(nice.count("telestra-media"));
  EXPECT_EQ(nice["telestra-io-0"], getpriority(PRIO_PROCESS, 0));
  EXPECT_EQ(nice["telestra-media"], getpriority(PRIO_PROCESS, 0));
  std::string log = (*gateway)->ReadLog();
  EXPECT_FALSE(absl::StrContains(log, "thread-nice is deprecated")) << log;
  for (const char* knob : {"busy-poll-us", "answer-poll-us"}) {
    EXPECT_TRUE(absl::StrContains(
        log, absl::StrCat("[sip-settings] ", knob, " is deprecated and ignored")))
        << knob << " not named in a warning:\n" << log;
  }
}

TEST(GatewayStartupTest, AllocatesWithJemallocUnlessSanitized) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizer builds use the sanitizer's malloc (.bazelrc --custom_malloc)";
#endif
  GatewayOptions options = OneIdleAccount();
  auto gateway = GatewayProcess::Start(options);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  std::ifstream maps(absl::StrCat("/proc/", (*gateway)->process().pid(), "/maps"));
  std::stringstream text;
  text << maps.rdbuf();
  EXPECT_TRUE(absl::StrContains(text.str(), "libjemalloc")) << "gateway/BUILD.bazel malloc";
}

// gateway/main.cc asks jemalloc for transparent huge pages. Where the
// kernel gives them only on request ("madvise" mode), jemalloc's memory
// must carry that request: the "hg" flag in smaps (set by
// madvise(MADV_HUGEPAGE) whether or not huge pages were free to use).
TEST(GatewayStartupTest, AsksForTransparentHugePagesUnlessSanitized) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizer builds use the sanitizer's malloc (.bazelrc --custom_malloc)";
#endif
  std::ifstream mode_file("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode((std::istreambuf_iterator<char>(mode_file)), std::istreambuf_iterator<char>());
  if (!absl::StrContains(mode, "[madvise]")) {
    GTEST_SKIP() << "transparent huge pages are not in madvise mode here: " << mode;
  }
  GatewayOptions options = OneIdleAccount();
  auto gateway = GatewayProcess::Start(options);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  std::ifstream smaps(absl::StrCat("/proc/", (*gateway)->process().pid(), "/smaps"));
  int advised = 0;
  for (std::string line; std::getline(smaps, line);) {
    if (absl::StartsWith(line, "VmFlags:") && absl::StrContains(absl::StrCat(line, " "), " hg ")) {
      ++advised;
    }
  }
  EXPECT_GT(advised, 0) << "no mapping of the gateway asks for huge pages (malloc_conf thp)";
}

TEST(GatewayStartupTest, RefusesToStartOnBadPlanNamingFileLineAndKey) {
  std::string dir = getenv("TEST_TMPDIR");
  std::string plan = dir + "/bad-plan.ini";
  FILE* file = fopen(plan.c_str(), "w");
  ASSERT_NE(file, nullptr);
  fputs("[tcp-settings]\nport = 3550\n\n[account-1]\nuser = 3001\nusr = x\nserver = h\n", file);
  fclose(file);
  std::string log = dir + "/bad-plan.log";
  auto process = Subprocess::Start({Runfile("gateway/telestra_gateway"), "--plan=" + plan}, log);
  ASSERT_TRUE(process.ok()) << process.status();
  auto status = (*process)->WaitForExit(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 2);
  FILE* in = fopen(log.c_str(), "r");
  ASSERT_NE(in, nullptr);
  char text[4096] = {0};
  fread(text, 1, sizeof(text) - 1, in);
  fclose(in);
  EXPECT_TRUE(absl::StrContains(text, "bad-plan.ini:6: [account-1] unknown key 'usr'")) << text;
}

}  // namespace
}  // namespace telestra::testing

namespace telestra::testing {
namespace {

// The plan file's text without section `[name]` (its header and keys).
std::string WithoutSection(const std::string& plan, const std::string& name) {
  std::istringstream in(plan);
  std::string out;
  std::string line;
  bool skipping = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '[') skipping = line == "[" + name + "]";
    if (!skipping) out += line + "\n";
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// Waits (10 s) until the gateway's log holds `text`.
bool WaitForLog(GatewayProcess& gateway, const std::string& text) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!absl::StrContains(gateway.ReadLog(), text)) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

TEST_F(RegistrationTest, SighupReloadsThePlansAccounts) {
  auto gateway = StartGatewayProcess({{Account("account-7", 3007), Account("account-8", 3008)}});
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectNative(*gateway);
  ASSERT_EQ(WaitForAccountStatus(*client, "account-7", 200), 200);
  ASSERT_EQ(WaitForAccountStatus(*client, "account-8", 200), 200);
  ASSERT_EQ(WaitForContacts(kamailio(), "3008", 1), 1);

  // account-8 leaves the plan, account-6 joins it, account-7 changes.
  const std::string path = gateway->dir() + "/plan.ini";
  std::string plan = WithoutSection(ReadFile(path), "account-8");
  ASSERT_TRUE(absl::StrContains(plan, "[account-7]"));
  plan.replace(plan.find("[account-7]\n"), 12, "[account-7]\naccept-refer = false\n");
  plan += absl::StrCat("\n[account-6]\nuser = 3006\npass = sip3006\nserver = ",
                       kamailio().server(), "\n");
  WriteFile(path, plan);
  ASSERT_EQ(kill(gateway->process().pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitForLog(
      *gateway,
      "reload: 1 accounts added (account-6), 1 removed (account-8), 1 changed (account-7), 0 "
      "unchanged"))
      << gateway->ReadLog();

  EXPECT_EQ(WaitForAccountStatus(*client, "account-6", 200), 200);
  EXPECT_EQ(WaitForContacts(kamailio(), "3006", 1), 1);
  EXPECT_EQ(WaitForContacts(kamailio(), "3008", 0), 0);
  EXPECT_EQ(WaitForAccountStatus(*client, "account-7", 200), 200);
  client->Send(R"({"cmd":"get-status","account":"account-8"})");
  std::optional<NativeEvent> fail =
      client->WaitFor([](const NativeEvent& e) { return e.Str("event") == "fail"; });
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->Str("error"), "Unknown account: account-8");

  // A plan that does not parse changes nothing.
  WriteFile(path, "[account-6\n");
  ASSERT_EQ(kill(gateway->process().pid(), SIGHUP), 0);
  EXPECT_TRUE(WaitForLog(*gateway, "the running plan stays"));
  EXPECT_EQ(WaitForAccountStatus(*client, "account-6", 200), 200);
  EXPECT_EQ(WaitForContacts(kamailio(), "3006", 1), 1);
}

}  // namespace
}  // namespace telestra::testing
