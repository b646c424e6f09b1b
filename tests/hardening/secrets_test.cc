// Secrets and exposure (issue 6, docs/reliability.md):
//  - passwords and tokens never appear in the log (at debug level, sofia's
//    own log included), in events, in metrics or in error messages, for
//    successful and failed logins and for plan errors;
//  - the native port listens on 127.0.0.1 unless the plan says otherwise;
//  - [tcp-settings] allow admits only the listed networks (127.0.0.2 is the
//    second loopback source); others get fail "Address not allowed" and are
//    closed, counted and logged.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/hardening/hardening_support.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

// Reads events until `match` (or the timeout), keeping every event's JSON.
std::optional<NativeEvent> WaitAndKeep(NativeClient& client,
                                       const std::function<bool(const NativeEvent&)>& match,
                                       std::vector<std::string>* all,
                                       absl::Duration timeout = absl::Seconds(15)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::optional<NativeEvent> event = client.Next(deadline - absl::Now());
    if (!event) return std::nullopt;
    all->push_back(event->json);
    if (match(*event)) return event;
  }
  return std::nullopt;
}

TEST(SecretsTest, PasswordsAndTokensNeverAppearInLogsEventsMetricsOrErrors) {
  auto kamailio = KamailioProcess::Start();
  ASSERT_TRUE(kamailio.ok()) << kamailio.status();
  // Unique secrets: the one that registers is added to Kamailio's users.
  const std::string good = UniqueString("Pw-good-");
  const std::string wrong_in_plan = UniqueString("Pw-plan-wrong-");
  const std::string wrong_login = UniqueString("Pw-login-wrong-");
  const std::string malformed = UniqueString("Pw-malformed-");
  const std::string missing_server = UniqueString("Pw-missing-");
  const std::string unknown_account = UniqueString("Pw-unknown-");
  const std::string unreachable = UniqueString("Pw-unreachable-");
  const std::string grpc_token = UniqueString("Tok-grpc-");
  const std::string web_token = UniqueString("Tok-web-");
  const std::vector<std::string> secrets = {good,        wrong_in_plan,  wrong_login,
                                            malformed,   missing_server, unknown_account,
                                            unreachable, grpc_token,     web_token};
  // ("s:" makes kamcmd pass the key as a string.)
  auto added = (*kamailio)->Kamcmd({"htable.sets", "users", "s:3009", good});
  ASSERT_TRUE(added.ok() && absl::StrContains(*added, "Key set")) << added.status();

  GatewayOptions options;
  options.accounts = {{"secret-1", "3009", good, (*kamailio)->server(), true},
                      {"secret-2", "3003", wrong_in_plan, (*kamailio)->server(), true}};
  options.grpc_settings = {"token = " + grpc_token};
  options.web_settings = {"token = " + web_token};
  auto gateway = GatewayProcess::Start(options);  // --log_level=debug
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  auto client = NativeClient::Connect((*gateway)->native_port());
  ASSERT_TRUE(client.ok());
  NativeClient& c = **client;
  std::vector<std::string> events;
  c.Send(R"({"cmd":"subscribe","extended":true})");
  ASSERT_EQ(WaitForAccountStatus(c, "secret-1", 200), 200) << (*gateway)->ReadLog();
  const int plan_failure = WaitForAccountStatus(c, "secret-2", 401);
  EXPECT_TRUE(plan_failure == 401 || plan_failure == 403) << plan_failure;

  auto login = [&](const std::string& account, const std::string& pass, const std::string& server) {
    c.Send(absl::StrCat(R"({"cmd":"login","account":")", account, R"(","user":"3003","pass":")",
                        pass, R"(","server":")", server, R"("})"));
  };
  auto is_fail = [](const std::string& error) {
    return [error](const NativeEvent& e) { return e.event() == "fail" && e.Str("error") == error; };
  };
  // A wrong password: 401, broadcast fail.
  login("secret-2", wrong_login, (*kamailio)->server());
  EXPECT_TRUE(WaitAndKeep(c, is_fail("Failed to log in to account: secret-2"), &events));
  // Rejected commands that carry a password.
  c.Send(absl::StrCat(R"({"cmd":"login","account":"secret-2","user":"3003","pass":")",
                      missing_server, R"("})"));
  EXPECT_TRUE(WaitAndKeep(c, is_fail("Missing field: server"), &events));
  c.SendRaw(absl::StrCat(R"({"cmd":"login","account":"secret-2","user":"3003","pass":")", malformed,
                         R"(","server":)", std::string(1, '\0')));
  EXPECT_TRUE(WaitAndKeep(
      c, [](const NativeEvent& e) { return absl::StartsWith(e.Str("error"), "Malformed JSON"); },
      &events));
  c.Send(absl::StrCat(R"({"cmd":"login","account":"nobody","user":"1","pass":")", unknown_account,
                      R"(","server":"127.0.0.1"})"));
  EXPECT_TRUE(WaitAndKeep(c, is_fail("Unknown account: nobody"), &events));
  // A registrar that is not there (port 9, discard: ICMP port unreachable).
  login("secret-2", unreachable, "127.0.0.1:9");
  EXPECT_TRUE(WaitAndKeep(
      c,
      [](const NativeEvent& e) {
        return e.event() == "account-status" && e.Str("account") == "secret-2" &&
               e.Int("account_status") >= 400;
      },
      &events, absl::Seconds(40)));
  // Log out and in again with the right password.
  c.Send(R"({"cmd":"logout","account":"secret-1"})");
  EXPECT_EQ(WaitForAccountStatus(c, "secret-1", 0), 0);
  c.Send(absl::StrCat(R"({"cmd":"login","account":"secret-1","user":"3009","pass":")", good,
                      R"(","server":")", (*kamailio)->server(), R"("})"));
  EXPECT_EQ(WaitForAccountStatus(c, "secret-1", 200), 200);
  for (const char* account : {"secret-1", "secret-2"}) {
    c.Send(absl::StrCat(R"({"cmd":"get-status","account":")", account, R"(","token":"s"})"));
    EXPECT_TRUE(WaitAndKeep(
        c, [](const NativeEvent& e) { return e.event() == "status" && e.Str("token") == "s"; },
        &events));
  }
  for (const NativeEvent& e : c.skipped()) events.push_back(e.json);
  absl::StatusOr<std::string> metrics = HttpGet((*gateway)->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  // The whole run, shutdown included.
  ASSERT_EQ(kill((*gateway)->process().pid(), SIGTERM), 0);
  ASSERT_TRUE((*gateway)->process().WaitForExit(absl::Now() + absl::Seconds(10)).ok());
  const std::string log = (*gateway)->ReadLog();
  ASSERT_TRUE(absl::StrContains(log, "sofia: ")) << "no debug log from sofia";
  ASSERT_GT(events.size(), 10u);

  for (const std::string& secret : secrets) {
    EXPECT_FALSE(absl::StrContains(log, secret)) << secret << " is in the log";
    EXPECT_FALSE(absl::StrContains(*metrics, secret)) << secret << " is in the metrics";
    for (const std::string& event : events) {
      EXPECT_FALSE(absl::StrContains(event, secret)) << secret << " is in an event: " << event;
    }
  }
}

// A plan that is rejected because of a line that holds a secret names the
// file, the line and the key, never the value.
TEST(SecretsTest, PlanErrorsNeverEchoASecret) {
  const std::string secret = UniqueString("Pw-plan-error-");
  const std::vector<std::string> plans = {
      "[acc]\nuser = 1\npass = S\npass-env = HOME\nserver = h\n",
      "[acc]\nuser = 1\npass = S\npass = S\nserver = h\n",
      "[tcp-settings]\npass = S\n\n[acc]\nuser = 1\nserver = h\n",
      "[acc]\nuser = 1\npass S\nserver = h\n",
      "[acc]\npass = S\nserver = h\n",
      "[grpc-settings]\ntoken = S\ntoken-env = HOME\n\n[acc]\nuser = 1\nserver = h\n",
      "[web-settings]\ntoken = S\ncert = /nonexistent.pem\n\n[acc]\nuser = 1\nserver = h\n",
      "[web-settings]\ntoken S\n\n[acc]\nuser = 1\nserver = h\n",
      "[acc]\nuser = 1\npass = S\nserver = h\n[acc]\nuser = 2\nserver = h\n",
      "pass = S\n[acc]\nuser = 1\nserver = h\n",
  };
  for (size_t i = 0; i < plans.size(); ++i) {
    std::string text = plans[i];
    for (size_t at = text.find(" S"); at != std::string::npos; at = text.find(" S", at + 1)) {
      text.replace(at + 1, 1, secret);
    }
    const std::string path = absl::StrCat(TestTempDir(), "/secret-plan-", i, ".ini");
    const std::string log = absl::StrCat(TestTempDir(), "/secret-plan-", i, ".log");
    std::ofstream(path) << text;
    auto process = Subprocess::Start(
        {Runfile("gateway/telestra_gateway"), "--plan=" + path, "--log_level=trace"}, log);
    ASSERT_TRUE(process.ok()) << process.status();
    auto status = (*process)->WaitForExit(absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(*status, 2) << text;
    const std::string output = ReadFileText(log);
    EXPECT_TRUE(absl::StrContains(output, path + ":")) << output;
    EXPECT_FALSE(absl::StrContains(output, secret)) << text << "\n" << output;
  }
}

// The listening sockets of the process's network namespace in
// /proc/net/tcp that use `port`: their local addresses ("0100007F" is
// 127.0.0.1).
std::vector<std::string> ListeningAddresses(int port) {
  std::vector<std::string> addresses;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      char local[64] = {0}, remote[64] = {0};
      int state = 0;
      unsigned local_port = 0;
      if (std::sscanf(line.c_str(), " %*d: %63[0-9A-Fa-f]:%x %63s %x", local, &local_port, remote,
                      &state) == 4 &&
          static_cast<int>(local_port) == port && state == 0x0A) {
        addresses.push_back(local);
      }
    }
  }
  return addresses;
}

TEST(ExposureTest, NativePortListensOnLoopbackOnlyByDefault) {
  const int native = PickFreePort(SOCK_STREAM);
  const std::string plan = absl::StrFormat(
      "[tcp-settings]\nport = %d\n\n[grpc-settings]\nport = %d\n\n[web-settings]\nport = %d\n\n"
      "[metrics-settings]\nport = 0\n\n[sip-settings]\nport = 0\n\n"
      "[account-1]\nuser = 3001\nserver = 127.0.0.1:9\nregister = false\n",
      native, PickFreePort(SOCK_STREAM), PickFreePort(SOCK_STREAM));
  const std::string path = TestTempDir() + "/default-bind.ini";
  std::ofstream(path) << plan;
  auto process = Subprocess::Start({Runfile("gateway/telestra_gateway"), "--plan=" + path},
                                   TestTempDir() + "/default-bind.log");
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_TRUE(WaitForTcpPort(native, absl::Seconds(10)))
      << ReadFileText(TestTempDir() + "/default-bind.log");
  // Served (so started, its signal handler included).
  auto client = NativeClient::Connect(native);
  ASSERT_TRUE(client.ok());
  ASSERT_EQ(WaitForAccountStatus(**client, "account-1", 0), 0);
  EXPECT_EQ(ListeningAddresses(native), std::vector<std::string>{"0100007F"});
  // Not reachable on another local address.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in other{};
  other.sin_family = AF_INET;
  other.sin_port = htons(static_cast<uint16_t>(native));
  other.sin_addr.s_addr = htonl(0x7F000002);  // 127.0.0.2
  EXPECT_NE(connect(fd, reinterpret_cast<sockaddr*>(&other), sizeof(other)), 0);
  close(fd);
  auto exit_status = (*process)->Terminate(absl::Seconds(5));
  ASSERT_TRUE(exit_status.ok());
  EXPECT_EQ(*exit_status, 0);
}

// One client from `source` sends get-status: the events it gets, and
// whether the gateway closed the connection (within 500 ms of the first
// event; 5 s at most in all).
std::vector<std::string> TryFrom(const GatewayProcess& gateway, const std::string& source,
                                 bool* closed) {
  RawConnection::Options options;
  options.source = source;
  auto connection = RawConnection::Connect(gateway.native_port(), options);
  EXPECT_TRUE(connection.ok()) << connection.status();
  if (!connection.ok()) return {};
  (*connection)
      ->Send(std::string(R"({"cmd":"get-status","account":"account-1"})") + std::string(1, '\0'));
  std::string bytes;
  *closed = false;
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  bool got_one = false;
  while (!*closed && absl::Now() < deadline) {
    bytes += (*connection)->ReadUntilClosed(absl::Milliseconds(50), closed);
    if (!got_one && bytes.find('\0') != std::string::npos) {
      got_one = true;
      deadline = std::min(deadline, absl::Now() + absl::Milliseconds(500));
    }
  }
  return SplitEvents(bytes);
}

constexpr char kNotAllowed[] = R"({"event":"fail","account":"","error":"Address not allowed"})";
constexpr char kStatus[] =
    R"({"event":"status","account":"account-1","account_status":0,"calls":[]})";

std::unique_ptr<GatewayProcess> StartWithAllow(const std::string& allow, int max_clients = 16) {
  GatewayOptions options = OneIdleAccount();
  options.tcp_settings = {"allow = " + allow, absl::StrCat("max-clients = ", max_clients)};
  auto gateway = GatewayProcess::Start(options);
  EXPECT_TRUE(gateway.ok()) << gateway.status();
  return gateway.ok() ? *std::move(gateway) : nullptr;
}

TEST(ExposureTest, AllowListAdmitsListedSourcesAndRefusesOthers) {
  auto gateway = StartWithAllow("127.0.0.1/32");
  ASSERT_NE(gateway, nullptr);
  bool closed = false;
  EXPECT_EQ(TryFrom(*gateway, "127.0.0.1", &closed), std::vector<std::string>{kStatus});
  EXPECT_FALSE(closed);
  EXPECT_EQ(TryFrom(*gateway, "127.0.0.2", &closed), std::vector<std::string>{kNotAllowed});
  EXPECT_TRUE(closed);
  const std::string log = gateway->ReadLog();
  EXPECT_TRUE(absl::StrContains(log, "refused a client from 127.0.0.2: address not allowed"))
      << log;
  absl::StatusOr<std::string> metrics = HttpGet(gateway->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(MetricValue(*metrics, "telestra_native_not_allowed_total").value_or(-1), 1);
  EXPECT_EQ(MetricValue(*metrics, "telestra_native_refused_total").value_or(-1), 0);
}

TEST(ExposureTest, AllowListOfTheSecondLoopbackAddressRefusesTheFirst) {
  auto gateway = StartWithAllow("127.0.0.2");
  ASSERT_NE(gateway, nullptr);
  bool closed = false;
  EXPECT_EQ(TryFrom(*gateway, "127.0.0.2", &closed), std::vector<std::string>{kStatus});
  EXPECT_FALSE(closed);
  EXPECT_EQ(TryFrom(*gateway, "127.0.0.1", &closed), std::vector<std::string>{kNotAllowed});
  EXPECT_TRUE(closed);
}

TEST(ExposureTest, AllowListWithANetworkAdmitsEveryAddressInIt) {
  auto gateway = StartWithAllow("10.0.0.0/8, 127.0.0.0/8, ::1");
  ASSERT_NE(gateway, nullptr);
  for (const char* source : {"127.0.0.1", "127.0.0.2", "127.1.2.3"}) {
    bool closed = false;
    EXPECT_EQ(TryFrom(*gateway, source, &closed), std::vector<std::string>{kStatus}) << source;
    EXPECT_FALSE(closed) << source;
  }
}

// Refused addresses do not take client slots: with max-clients = 1 taken,
// a refused source still hears "Address not allowed", not "Too many clients".
TEST(ExposureTest, RefusedAddressesDoNotCountAgainstMaxClients) {
  auto gateway = StartWithAllow("127.0.0.1", /*max_clients=*/1);
  ASSERT_NE(gateway, nullptr);
  auto admitted = NativeClient::Connect(gateway->native_port());
  ASSERT_TRUE(admitted.ok());
  ASSERT_EQ(WaitForAccountStatus(**admitted, "account-1", 0), 0);
  bool closed = false;
  EXPECT_EQ(TryFrom(*gateway, "127.0.0.2", &closed), std::vector<std::string>{kNotAllowed});
  EXPECT_TRUE(closed);
  EXPECT_EQ(WaitForAccountStatus(**admitted, "account-1", 0), 0);
}

}  // namespace
}  // namespace telestra::testing
