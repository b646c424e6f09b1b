#include "tests/integration/gateway_fixture.h"

#include <simdjson.h>
#include <sys/socket.h>

#include <atomic>
#include <iostream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/ports.h"

namespace telestra::testing {

TestAccount DemoAccount(const std::string& name, int user, const std::string& server,
                        bool register_on_start) {
  return {name, absl::StrCat(user), absl::StrCat("sip", user), server, register_on_start};
}

GatewayOptions OneIdleAccount() {
  GatewayOptions options;
  options.accounts = {DemoAccount("account-1", 3001, "127.0.0.1:9", false)};
  return options;
}

std::unique_ptr<GatewayProcess> StartGatewayProcess(const GatewayOptions& options) {
  auto gateway = GatewayProcess::Start(options);
  EXPECT_TRUE(gateway.ok()) << gateway.status();
  return gateway.ok() ? *std::move(gateway) : nullptr;
}

std::unique_ptr<GatewayProcess> StartWebGateway(const GatewayOptions& options) {
  auto gateway = StartGatewayProcess(options);
  if (gateway == nullptr) return nullptr;
  EXPECT_TRUE(WaitForTcpPort(gateway->web_port(), absl::Seconds(10))) << gateway->ReadLog();
  return gateway;
}

absl::StatusOr<GatewayAndRegistrar> StartWithOwnRegistrar(GatewayOptions options) {
  GatewayAndRegistrar started;
  auto kamailio = KamailioProcess::Start();
  if (!kamailio.ok()) return kamailio.status();
  started.kamailio = *std::move(kamailio);
  auto gateway = GatewayProcess::Start(TwoAccounts(started.kamailio->server(), std::move(options)));
  if (!gateway.ok()) return gateway.status();
  started.gateway = *std::move(gateway);
  return started;
}

std::unique_ptr<NativeClient> ConnectNative(const GatewayProcess& gateway) {
  auto client = NativeClient::Connect(gateway.native_port());
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

int WaitForContacts(KamailioProcess& kamailio, const std::string& user, int want) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  int count = -1;
  while (absl::Now() < deadline) {
    count = kamailio.CountRegistered(user).value_or(-1);
    if (count == want) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return count;
}

NativeEvent CallInStatus(NativeClient& client, const std::string& account, int64_t id) {
  static std::atomic<int64_t> next{0};
  const std::string token = absl::StrCat("call-", next++);
  client.Send(absl::StrCat(R"({"cmd":"get-status","account":")", account, R"(","token":")", token,
                           R"("})"));
  auto status = client.WaitFor(
      [&](const NativeEvent& e) { return e.event() == "status" && e.Str("token") == token; });
  if (!status) return {"{}"};
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array calls;
  if (parser.parse(status->json).get(doc) || doc["calls"].get(calls)) return {"{}"};
  for (simdjson::dom::element call : calls) {
    int64_t call_id = -1;
    if (!call["call_id"].get(call_id) && call_id == id) return {simdjson::minify(call)};
  }
  return {"{}"};
}

std::string CallState(NativeClient& client, const std::string& account, int64_t id) {
  static std::atomic<int64_t> next{0};
  const std::string token = absl::StrCat("state-", next++);
  client.Send(absl::StrCat(R"({"cmd":"get-status","account":")", account, R"(","token":")", token,
                           R"("})"));
  auto status = client.WaitFor(
      [&](const NativeEvent& e) { return e.event() == "status" && e.Str("token") == token; });
  if (!status) return "no status";
  const std::string marker = absl::StrCat("\"call_id\":", id, ",\"state\":\"");
  size_t at = status->json.find(marker);
  if (at == std::string::npos) return "";
  at += marker.size();
  return status->json.substr(at, status->json.find('"', at) - at);
}

std::string WaitForCallState(NativeClient& client, const std::string& account, int64_t id,
                             const std::string& want, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string state;
  while (absl::Now() < deadline) {
    state = CallState(client, account, id);
    if (state == want) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return state;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  auto client = NativeClient::Connect(port);
  if (!client.ok()) return client.status();
  if (!(*client)->SendRaw(absl::StrCat(
          "GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))) {
    return absl::UnavailableError("send failed");
  }
  const std::string response = (*client)->ReadUntilClosed(absl::Seconds(10));
  const size_t body = response.find("\r\n\r\n");
  if (!absl::StartsWith(response, "HTTP/1.1 200") || body == std::string::npos) {
    return absl::UnavailableError(absl::StrCat("GET ", path, ": ", response.substr(0, 200)));
  }
  return response.substr(body + 4);
}

std::optional<double> MetricValue(const std::string& exposition, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (!absl::ConsumePrefix(&line, name) || !absl::ConsumePrefix(&line, " ")) continue;
    double value = 0;
    if (absl::SimpleAtod(absl::StripAsciiWhitespace(line), &value)) return value;
  }
  return std::nullopt;
}

double Metric(const GatewayProcess& gateway, const std::string& name) {
  absl::StatusOr<std::string> metrics = HttpGet(gateway.metrics_port(), "/metrics");
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  if (!metrics.ok()) return -1;
  return MetricValue(*metrics, name).value_or(-1);
}

NativeMatch IsCallEvent(const std::string& event, const std::string& account, int64_t id) {
  return [=](const NativeEvent& e) {
    return e.event() == event && e.Str("account") == account && e.Int("call_id") == id;
  };
}

NativeMatch IsEventOf(const std::string& event, const std::string& account) {
  return [=](const NativeEvent& e) { return e.event() == event && e.Str("account") == account; };
}

NativeMatch IsEvent(const std::string& event) {
  return [=](const NativeEvent& e) { return e.event() == event; };
}

KamailioProcess* GatewayTest::kamailio_ = nullptr;

void GatewayTest::SetUpTestSuite() {
  auto kamailio = KamailioProcess::Start();
  ASSERT_TRUE(kamailio.ok()) << kamailio.status();
  kamailio_ = kamailio->release();
}

void GatewayTest::TearDownTestSuite() {
  delete kamailio_;
  kamailio_ = nullptr;
}

void GatewayTest::SetUp() { ASSERT_NE(kamailio_, nullptr) << "Kamailio did not start"; }

void GatewayTest::TearDown() {
  if (!HasFailure()) return;
  if (gateway_) std::cerr << "gateway log:\n" << gateway_->ReadLog();
  for (const auto& other : other_gateways_) {
    if (other->process) std::cerr << "other gateway's log:\n" << other->process->ReadLog();
  }
  std::cerr << FailureDetails();
}

KamailioProcess& GatewayTest::kamailio() { return *kamailio_; }

TestAccount GatewayTest::Account(const std::string& name, int user, bool register_on_start) {
  return DemoAccount(name, user, kamailio_->server(), register_on_start);
}

void GatewayTest::StartGateway(const GatewayOptions& options,
                               const std::vector<std::string>& registered) {
  StopGateway();
  gateway_ = StartGatewayProcess(options);
  ASSERT_NE(gateway_, nullptr);
  client_ = ConnectNative(*gateway_);
  ASSERT_NE(client_, nullptr);
  for (const std::string& account : registered) {
    ASSERT_EQ(WaitForAccountStatus(*client_, account, 200), 200) << account;
  }
}

int64_t GatewayTest::MakeCall(const std::string& account, const std::string& number) {
  client_->Send(absl::StrCat(R"({"cmd":"make-call","account":")", account, R"(","num":")", number,
                             R"("})"));
  auto call_return = client_->WaitFor(IsEventOf("call-return", account));
  EXPECT_TRUE(call_return.has_value()) << "no call-return";
  return call_return ? call_return->Int("call_id") : -1;
}

void GatewayTest::Command(const std::string& cmd, const std::string& account, int64_t id) {
  client_->Send(
      absl::StrCat(R"({"cmd":")", cmd, R"(","account":")", account, R"(","call_id":)", id, "}"));
}

void GatewayTest::StopGateway() {
  client_.reset();
  gateway_.reset();
}

GatewayTest::OtherGateway* GatewayTest::StartOtherGateway(
    const GatewayOptions& options, const std::vector<std::string>& registered) {
  auto other = std::make_unique<OtherGateway>();
  other->process = StartGatewayProcess(options);
  if (other->process == nullptr) return nullptr;
  other->client = ConnectNative(*other->process);
  // Kept from here on, so that its log is printed if the test fails.
  other_gateways_.push_back(std::move(other));
  OtherGateway* started = other_gateways_.back().get();
  if (started->client == nullptr) return nullptr;
  for (const std::string& account : registered) {
    const int status = WaitForAccountStatus(*started->client, account, 200);
    EXPECT_EQ(status, 200) << account;
    if (status != 200) return nullptr;
  }
  return started;
}

std::string SipPeerTest::FailureDetails() {
  std::string details;
  for (const auto& sipp : sipps_) absl::StrAppend(&details, sipp->Describe());
  return details;
}

void SipPeerTest::StartTwoAccounts(GatewayOptions options) {
  options = TwoAccounts(kamailio().server(), std::move(options));
  options.tcp_settings.push_back("extended-events = true");
  StartGateway(options);
}

SippProcess* SipPeerTest::StartUas(const std::string& scenario, std::vector<std::string> args) {
  int port = PickFreePort(SOCK_DGRAM);
  EXPECT_TRUE(SippRegister(kamailio().server(), kSippUser, port));
  SippProcess::Options options;
  options.scenario = SippProcess::Scenario(scenario);
  options.port = port;
  options.args = {"-s", kSippUser};
  options.args.insert(options.args.end(), args.begin(), args.end());
  SippProcess* sipp = Track(SippProcess::Start(options));
  // Calls must not reach the port before sipp listens on it.
  if (sipp != nullptr) {
    EXPECT_TRUE(sipp->WaitUntilListening(absl::Seconds(5)));
  }
  return sipp;
}

SippProcess* SipPeerTest::StartUac(const std::string& scenario, const std::string& user,
                                   std::vector<std::string> args) {
  SippProcess::Options options;
  options.scenario = SippProcess::Scenario(scenario);
  options.args = {"-s",      user,      "-key",
                  "caller",  kSippUser, "-au",
                  kSippUser, "-ap",     absl::StrCat("sip", kSippUser)};
  options.args.insert(options.args.end(), args.begin(), args.end());
  options.remote = kamailio().server();
  return Track(SippProcess::Start(options));
}

SippProcess* SipPeerTest::Track(absl::StatusOr<std::unique_ptr<SippProcess>> sipp) {
  EXPECT_TRUE(sipp.ok()) << sipp.status();
  if (!sipp.ok()) return nullptr;
  sipps_.push_back(*std::move(sipp));
  return sipps_.back().get();
}

void SipPeerTest::ExpectSippSucceeds(SippProcess& sipp) {
  absl::StatusOr<int> status = sipp.Wait(absl::Seconds(25));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0) << "sipp failed";
}

}  // namespace telestra::testing
