// The gateway binary's WebSocket (/ws) against a real Kamailio registrar:
// snapshot on connect, commands and events, resume after a seq, limits.
// docs/websocket-api.md is the contract.
#include <signal.h>
#include <simdjson.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/web_client.h"
#include "tests/support/kamailio.h"
#include "tests/support/ports.h"

namespace telestra::testing {
namespace {

// Fields of a JSON message that NativeEvent does not reach (arrays).
struct Snapshot {
  std::string instance;
  int64_t seq = -1;
  std::vector<std::pair<std::string, int64_t>> accounts;  // name, account_status
};

std::optional<Snapshot> ParseSnapshot(const NativeEvent& event) {
  if (event.event() != "snapshot") return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(event.json).get(doc) != simdjson::SUCCESS) return std::nullopt;
  Snapshot snapshot;
  std::string_view instance;
  if (doc["instance"].get(instance) != simdjson::SUCCESS) return std::nullopt;
  snapshot.instance = std::string(instance);
  if (doc["seq"].get(snapshot.seq) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::array accounts;
  if (doc["accounts"].get(accounts) != simdjson::SUCCESS) return std::nullopt;
  for (simdjson::dom::element account : accounts) {
    std::string_view name, kind;
    int64_t status = -1;
    if (account["event"].get(kind) != simdjson::SUCCESS || kind != "status") return std::nullopt;
    if (account["account"].get(name) != simdjson::SUCCESS) return std::nullopt;
    if (account["account_status"].get(status) != simdjson::SUCCESS) return std::nullopt;
    snapshot.accounts.emplace_back(std::string(name), status);
  }
  return snapshot;
}

int64_t HealthCounter(int port, const std::string& name) {
  auto health = HttpRequest(port, "GET", "/healthz");
  if (!health.ok()) return -1;
  return NativeEvent{health->body}.Int(name);
}

class WebSocketTest : public GatewayTest {
 protected:
  std::unique_ptr<WebClient> Connect(const GatewayProcess& gateway,
                                     const WebClientOptions& options = {}) {
    auto client = WebClient::Connect(gateway.web_port(), options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // Connects and reads the opening snapshot.
  std::unique_ptr<WebClient> ConnectWithSnapshot(const GatewayProcess& gateway,
                                                 Snapshot* snapshot = nullptr) {
    auto client = Connect(gateway);
    if (!client) return nullptr;
    auto first = client->Next();
    EXPECT_TRUE(first.has_value());
    if (!first) return nullptr;
    auto parsed = ParseSnapshot(*first);
    EXPECT_TRUE(parsed.has_value()) << first->json;
    if (snapshot != nullptr && parsed) *snapshot = *parsed;
    return client;
  }

  // Asks for the status until account_status is `want`; returns the last seen.
  int64_t WaitForStatus(WebClient& client, const std::string& account, int want) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    int64_t last = -1;
    int n = 0;
    while (absl::Now() < deadline) {
      const std::string token = absl::StrCat("wait-", n++);
      client.Send(absl::StrCat(R"({"cmd":"get-status","account":")", account, R"(","token":")",
                               token, R"("})"));
      auto status = client.WaitFor(
          [&](const NativeEvent& e) { return e.event() == "status" && e.Str("token") == token; },
          absl::Seconds(5));
      if (status) last = status->Int("account_status");
      if (last == want) return last;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return last;
  }
};

TEST_F(WebSocketTest, SnapshotOnConnectListsEveryAccountInPlanOrder) {
  auto gateway = StartWebGateway({{Account("account-1", 3001), Account("account-2", 3002, false)}});
  ASSERT_NE(gateway, nullptr);
  auto waiter = ConnectWithSnapshot(*gateway);
  ASSERT_NE(waiter, nullptr);
  ASSERT_EQ(WaitForStatus(*waiter, "account-1", 200), 200);

  Snapshot snapshot;
  auto client = ConnectWithSnapshot(*gateway, &snapshot);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(snapshot.instance.size(), 16u);
  EXPECT_GT(snapshot.seq, 0);  // account-1's registration events came first
  ASSERT_EQ(snapshot.accounts.size(), 2u);
  EXPECT_EQ(snapshot.accounts[0], std::make_pair(std::string("account-1"), int64_t{200}));
  EXPECT_EQ(snapshot.accounts[1], std::make_pair(std::string("account-2"), int64_t{0}));
  // Every session of one gateway sees the same instance.
  Snapshot other;
  ASSERT_NE(ConnectWithSnapshot(*gateway, &other), nullptr);
  EXPECT_EQ(other.instance, snapshot.instance);
}

TEST_F(WebSocketTest, CommandsGetDirectRepliesWithTokenAndExtendedSeq) {
  auto gateway = StartWebGateway({{Account("account-1", 3001, false)}});
  ASSERT_NE(gateway, nullptr);
  Snapshot snapshot;
  auto a = ConnectWithSnapshot(*gateway, &snapshot);
  auto b = ConnectWithSnapshot(*gateway);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  a->Send(R"({"cmd":"get-status","account":"account-1","token":"t-1"})");
  auto reply = a->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->event(), "status");
  EXPECT_EQ(reply->Str("token"), "t-1");
  EXPECT_GT(reply->Int("seq"), snapshot.seq);
  // The extended status: the account's user and server too.
  EXPECT_TRUE(absl::StartsWith(
      reply->json, R"({"event":"status","account":"account-1","account_status":0,"user":"3001",)"))
      << reply->json;
  EXPECT_TRUE(absl::StrContains(reply->json, R"(,"calls":[],)")) << reply->json;
  // The reply is private: b's next message is its own.
  b->Send(R"({"cmd":"get-status","account":"nobody","token":"t-2"})");
  auto fail = b->Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->event(), "fail");
  EXPECT_EQ(fail->Str("error"), "Unknown account: nobody");
  EXPECT_EQ(fail->Str("token"), "t-2");
  // subscribe is accepted and changes nothing (extended is always on).
  a->Send(R"({"cmd":"subscribe","extended":false})");
  a->Send(R"({"cmd":"get-status","account":"account-1"})");
  auto again = a->Next();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->event(), "status");
  EXPECT_TRUE(again->Has("seq"));
}

TEST_F(WebSocketTest, RegistrationEventsReachEverySessionAndTheNativePortInOrder) {
  auto gateway = StartWebGateway({{Account("account-3", 3003, false)}});
  ASSERT_NE(gateway, nullptr);
  auto a = ConnectWithSnapshot(*gateway);
  auto b = ConnectWithSnapshot(*gateway);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto native = NativeClient::Connect(gateway->native_port());
  ASSERT_TRUE(native.ok());
  a->Send(absl::StrCat(R"({"cmd":"login","account":"account-3","user":"3003",)",
                       R"("pass":"sip3003","server":")", kamailio().server(), R"("})"));
  auto registered = [](const NativeEvent& e) {
    return e.event() == "account-status" && e.Int("account_status") == 200;
  };
  auto at_a = a->WaitFor(registered);
  auto at_b = b->WaitFor(registered);
  ASSERT_TRUE(at_a.has_value());
  ASSERT_TRUE(at_b.has_value());
  EXPECT_EQ(at_a->json, at_b->json);
  // The "registering" step came first, in seq order.
  ASSERT_FALSE(a->skipped().empty());
  const NativeEvent& registering = a->skipped().back();
  EXPECT_EQ(registering.Int("account_status"), 100) << registering.json;
  EXPECT_LT(registering.Int("seq"), at_a->Int("seq"));
  // The native port serves the same backend.
  EXPECT_EQ(WaitForAccountStatus(**native, "account-3", 200), 200);

  // A wrong password: the fail is broadcast to every session.
  b->Send(absl::StrCat(R"({"cmd":"login","account":"account-3","user":"3003",)",
                       R"("pass":"wrong","server":")", kamailio().server(), R"("})"));
  auto failed = [](const NativeEvent& e) { return e.event() == "fail"; };
  auto fail_a = a->WaitFor(failed);
  ASSERT_TRUE(fail_a.has_value());
  EXPECT_EQ(fail_a->Str("error"), "Failed to log in to account: account-3");
  EXPECT_FALSE(absl::StrContains(gateway->ReadLog(), "sip3003"));
}

TEST_F(WebSocketTest, MalformedTextGetsFailAndTheSessionKeepsWorking) {
  auto gateway = StartWebGateway({{Account("account-1", 3001, false)}});
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectWithSnapshot(*gateway);
  ASSERT_NE(client, nullptr);
  client->Send(R"({"cmd":"get-status","account":})");
  auto malformed = client->Next();
  ASSERT_TRUE(malformed.has_value());
  EXPECT_EQ(malformed->event(), "fail");
  EXPECT_TRUE(absl::StartsWith(malformed->Str("error"), "Malformed JSON")) << malformed->json;
  client->Send("not json at all");
  auto garbage = client->Next();
  ASSERT_TRUE(garbage.has_value());
  EXPECT_TRUE(absl::StartsWith(garbage->Str("error"), "Malformed JSON")) << garbage->json;
  client->Send("");
  auto empty = client->Next();
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->event(), "fail");
  // Two objects in one message are not two commands.
  client->Send(R"({"cmd":"get-status","account":"account-1"}{"cmd":"logout"})");
  auto two = client->Next();
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(two->event(), "fail");
  client->SendBinary(R"({"cmd":"get-status","account":"account-1"})");
  auto binary = client->Next();
  ASSERT_TRUE(binary.has_value());
  EXPECT_EQ(binary->event(), "fail");
  EXPECT_TRUE(absl::StrContains(binary->Str("error"), "binary")) << binary->json;
  client->Send(R"({"cmd":"dial","account":"account-1","token":"x"})");
  auto unknown = client->Next();
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->Str("error"), "Unknown command: dial");
  EXPECT_EQ(unknown->Str("account"), "account-1");
  EXPECT_EQ(unknown->Str("token"), "x");
  client->Send(R"({"cmd":"get-status","account":"account-1"})");
  auto status = client->Next();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->event(), "status");
  EXPECT_FALSE(client->closed());
}

TEST_F(WebSocketTest, OversizeMessageClosesWith1009AndOthersAreUnaffected) {
  GatewayOptions options{{Account("account-1", 3001, false)}};
  options.extra_args = {"--web_max_message_bytes=1024"};
  auto gateway = StartWebGateway(options);
  ASSERT_NE(gateway, nullptr);
  auto big = ConnectWithSnapshot(*gateway);
  auto other = ConnectWithSnapshot(*gateway);
  ASSERT_NE(big, nullptr);
  ASSERT_NE(other, nullptr);
  // Exactly at the limit is fine.
  std::string at_limit = R"({"cmd":"get-status","account":"account-1","pad":")";
  at_limit += std::string(1024 - at_limit.size() - 2, 'x') + "\"}";
  ASSERT_EQ(at_limit.size(), 1024u);
  big->Send(at_limit);
  auto ok = big->Next();
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->event(), "status");

  big->Send(std::string(R"({"cmd":"get-status","account":")") + std::string(2000, 'x') + "\"}");
  EXPECT_FALSE(big->Next(absl::Seconds(5)).has_value());
  EXPECT_TRUE(big->closed());
  EXPECT_EQ(big->close_code(), 1009) << big->close_error();
  EXPECT_EQ(HealthCounter(gateway->web_port(), "oversize_closes"), 1);

  other->Send(R"({"cmd":"get-status","account":"account-1"})");
  auto status = other->Next();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->event(), "status");
}

TEST_F(WebSocketTest, StalledClientIsDroppedWithoutDelayingAnother) {
  GatewayOptions options{{Account("account-1", 3001, false)}};
  options.extra_args = {"--web_max_queued_bytes=65536"};
  auto gateway = StartWebGateway(options);
  ASSERT_NE(gateway, nullptr);
  WebClientOptions small_window;
  small_window.receive_buffer_bytes = 4096;
  auto stalled = Connect(*gateway, small_window);
  ASSERT_NE(stalled, nullptr);
  ASSERT_TRUE(stalled->Next().has_value());  // the snapshot
  stalled->PauseReading();
  auto healthy = ConnectWithSnapshot(*gateway);
  ASSERT_NE(healthy, nullptr);

  // The stalled client asks and asks but never reads its replies.
  const std::string ask = R"({"cmd":"get-status","account":"account-1"})";
  absl::Duration slowest = absl::ZeroDuration();
  bool dropped = false;
  for (int i = 0; i < 50000 && !dropped; ++i) {
    if (!stalled->Send(ask, absl::Seconds(2))) break;
    if (i % 500 == 0) {
      // Meanwhile another client's round trip stays quick.
      absl::Time start = absl::Now();
      healthy->Send(
          absl::StrCat(R"({"cmd":"get-status","account":"account-1","token":"h)", i, R"("})"));
      auto reply = healthy->WaitFor(
          [&](const NativeEvent& e) { return e.Str("token") == absl::StrCat("h", i); });
      ASSERT_TRUE(reply.has_value()) << "round " << i;
      slowest = std::max(slowest, absl::Now() - start);
      dropped = HealthCounter(gateway->web_port(), "slow_disconnects") > 0;
    }
  }
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!dropped && absl::Now() < deadline) {
    dropped = HealthCounter(gateway->web_port(), "slow_disconnects") > 0;
    if (!dropped) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(dropped);
  EXPECT_LT(slowest, absl::Milliseconds(500));
  EXPECT_EQ(HealthCounter(gateway->web_port(), "slow_disconnects"), 1);
  EXPECT_GT(HealthCounter(gateway->web_port(), "undelivered_events"), 0);
  EXPECT_TRUE(absl::StrContains(gateway->ReadLog(), "is not reading")) << gateway->ReadLog();
  // The healthy client carries on.
  healthy->Send(R"({"cmd":"get-status","account":"account-1","token":"after"})");
  auto after = healthy->WaitFor([](const NativeEvent& e) { return e.Str("token") == "after"; });
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(HealthCounter(gateway->web_port(), "sessions"), 1);
}

TEST_F(WebSocketTest, ResumeAfterSeqReplaysTheMissedBroadcastsOnly) {
  auto gateway = StartWebGateway({{Account("account-4", 3004)}});
  ASSERT_NE(gateway, nullptr);
  Snapshot first;
  auto client = ConnectWithSnapshot(*gateway, &first);
  ASSERT_NE(client, nullptr);
  ASSERT_EQ(WaitForStatus(*client, "account-4", 200), 200);
  // The client's last seq: the newest message it received.
  client->Send(R"({"cmd":"get-status","account":"account-4","token":"last"})");
  auto last = client->WaitFor([](const NativeEvent& e) { return e.Str("token") == "last"; });
  ASSERT_TRUE(last.has_value());
  const int64_t after_seq = last->Int("seq");
  client->Close();

  // While it is away: a logout (broadcast) and another client's reply
  // (private: never replayed).
  auto other = ConnectWithSnapshot(*gateway);
  ASSERT_NE(other, nullptr);
  other->Send(R"({"cmd":"get-status","account":"account-4","token":"private"})");
  ASSERT_TRUE(other->Next().has_value());
  other->Send(R"({"cmd":"logout","account":"account-4"})");
  auto logged_out = other->WaitFor([](const NativeEvent& e) {
    return e.event() == "account-status" && e.Int("account_status") == 0;
  });
  ASSERT_TRUE(logged_out.has_value());

  WebClientOptions resume;
  resume.target = absl::StrCat("/ws?after_seq=", after_seq, "&instance=", first.instance);
  auto back = Connect(*gateway, resume);
  ASSERT_NE(back, nullptr);
  auto resumed = back->Next();
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->event(), "resumed") << resumed->json;
  EXPECT_EQ(resumed->Int("after_seq"), after_seq);
  EXPECT_EQ(resumed->Str("instance"), first.instance);
  const int64_t replayed = resumed->Int("replayed");
  ASSERT_GE(replayed, 1);
  int64_t previous = after_seq;
  bool saw_logout = false;
  for (int64_t i = 0; i < replayed; ++i) {
    auto event = back->Next();
    ASSERT_TRUE(event.has_value());
    EXPECT_GT(event->Int("seq"), previous) << event->json;
    previous = event->Int("seq");
    EXPECT_NE(event->Str("token"), "private");
    if (event->json == logged_out->json) saw_logout = true;
  }
  EXPECT_TRUE(saw_logout);
  // Then live events, newer than everything replayed.
  back->Send(R"({"cmd":"get-status","account":"account-4","token":"live"})");
  auto live = back->Next();
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->Str("token"), "live");
  EXPECT_GT(live->Int("seq"), previous);
  EXPECT_EQ(live->Int("account_status"), 0);
}

TEST_F(WebSocketTest, ResumeThatCannotBeServedReportsTheGapThenSendsASnapshot) {
  auto gateway = StartWebGateway({{Account("account-1", 3001, false)}});
  ASSERT_NE(gateway, nullptr);
  Snapshot current;
  ASSERT_NE(ConnectWithSnapshot(*gateway, &current), nullptr);
  struct Case {
    std::string query;
    std::string reason_part;
  };
  for (const Case& c : {Case{"after_seq=0&instance=0123456789abcdef", "restarted"},
                        Case{"after_seq=999999", "ahead"}}) {
    WebClientOptions options;
    options.target = "/ws?" + c.query;
    auto client = Connect(*gateway, options);
    ASSERT_NE(client, nullptr);
    auto gap = client->Next();
    ASSERT_TRUE(gap.has_value());
    EXPECT_EQ(gap->event(), "gap") << gap->json;
    EXPECT_TRUE(absl::StrContains(gap->Str("reason"), c.reason_part)) << gap->json;
    auto snapshot = client->Next();
    ASSERT_TRUE(snapshot.has_value());
    auto parsed = ParseSnapshot(*snapshot);
    ASSERT_TRUE(parsed.has_value()) << snapshot->json;
    EXPECT_EQ(parsed->instance, current.instance);
    EXPECT_EQ(parsed->accounts.size(), 1u);
  }
  EXPECT_EQ(HealthCounter(gateway->web_port(), "gaps"), 2);
  // A malformed after_seq is refused at the handshake.
  WebClientOptions bad;
  bad.target = "/ws?after_seq=-3";
  auto refused = WebClient::Connect(gateway->web_port(), bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "HTTP 400")) << refused.status();
}

TEST_F(WebSocketTest, SessionsOverTheLimitGetFailAndClose1013) {
  GatewayOptions options{{Account("account-1", 3001, false)}};
  options.extra_args = {"--web_max_sessions=2"};
  auto gateway = StartWebGateway(options);
  ASSERT_NE(gateway, nullptr);
  auto a = ConnectWithSnapshot(*gateway);
  auto b = ConnectWithSnapshot(*gateway);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto c = Connect(*gateway);
  ASSERT_NE(c, nullptr);
  auto refused = c->Next();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->event(), "fail");
  EXPECT_EQ(refused->Str("error"), "Too many sessions (max-sessions is 2)");
  EXPECT_FALSE(c->Next(absl::Seconds(5)).has_value());
  EXPECT_TRUE(c->closed());
  EXPECT_EQ(c->close_code(), 1013) << c->close_error();
  EXPECT_EQ(HealthCounter(gateway->web_port(), "sessions_refused"), 1);
  // A place frees up when one leaves.
  a->Close();
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (HealthCounter(gateway->web_port(), "sessions") != 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_NE(ConnectWithSnapshot(*gateway), nullptr);
}

TEST_F(WebSocketTest, PingsKeepAnAnsweringClientAndAnIdleOneIsClosed) {
  GatewayOptions options{{Account("account-1", 3001, false)}};
  options.extra_args = {"--web_idle_timeout_seconds=1"};
  auto gateway = StartWebGateway(options);
  ASSERT_NE(gateway, nullptr);
  auto answering = ConnectWithSnapshot(*gateway);
  auto silent = ConnectWithSnapshot(*gateway);
  ASSERT_NE(answering, nullptr);
  ASSERT_NE(silent, nullptr);
  silent->PauseReading();  // no pongs from here on
  // Reading (and so answering pings) for three idle periods keeps it open.
  EXPECT_FALSE(answering->Next(absl::Seconds(3)).has_value());
  EXPECT_FALSE(answering->closed());
  answering->Send(R"({"cmd":"get-status","account":"account-1"})");
  auto status = answering->Next();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->event(), "status");
  EXPECT_GE(HealthCounter(gateway->web_port(), "idle_timeouts"), 1);
  EXPECT_EQ(HealthCounter(gateway->web_port(), "sessions"), 1);
}

TEST_F(WebSocketTest, ShutdownClosesSessionsWithGoingAway) {
  auto gateway = StartWebGateway({{Account("account-1", 3001, false)}});
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectWithSnapshot(*gateway);
  ASSERT_NE(client, nullptr);
  ASSERT_EQ(kill(gateway->process().pid(), SIGTERM), 0);
  EXPECT_FALSE(
      client->WaitFor([](const NativeEvent&) { return false; }, absl::Seconds(8)).has_value());
  EXPECT_TRUE(client->closed());
  EXPECT_EQ(client->close_code(), 1001) << client->close_error();
  auto exit_status = gateway->process().WaitForExit(absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);
}

// Two calls from account-1 to account-2 over the WebSocket: call-return with
// the token, call-incoming, answer, switch between them (call-held /
// call-resumed), hang up (call-ended with the extended code and reason).
// Skipped while make-call answers "Calls are not supported yet".
TEST_F(WebSocketTest, CallsAnswerSwitchAndHangupOverTheWebSocket) {
  auto gateway = StartWebGateway({{Account("account-1", 3001), Account("account-2", 3002)}});
  ASSERT_NE(gateway, nullptr);
  auto caller = ConnectWithSnapshot(*gateway);
  auto callee = ConnectWithSnapshot(*gateway);
  ASSERT_NE(caller, nullptr);
  ASSERT_NE(callee, nullptr);
  ASSERT_EQ(WaitForStatus(*caller, "account-1", 200), 200);
  ASSERT_EQ(WaitForStatus(*caller, "account-2", 200), 200);

  int64_t outgoing[2];
  int64_t incoming[2];
  for (int i = 0; i < 2; ++i) {
    const std::string token = absl::StrCat("dial-", i);
    caller->Send(absl::StrCat(R"({"cmd":"make-call","account":"account-1","num":"3002",)",
                              R"("token":")", token, R"("})"));
    auto reply = caller->WaitFor([&](const NativeEvent& e) { return e.Str("token") == token; });
    ASSERT_TRUE(reply.has_value());
    if (reply->event() == "fail" && reply->Str("error") == "Calls are not supported yet") {
      GTEST_SKIP() << "calls are not implemented yet";
    }
    ASSERT_EQ(reply->event(), "call-return") << reply->json;
    outgoing[i] = reply->Int("call_id");
    auto ring = callee->WaitFor([](const NativeEvent& e) {
      return e.event() == "call-incoming" && e.Str("account") == "account-2";
    });
    ASSERT_TRUE(ring.has_value());
    EXPECT_EQ(ring->Str("caller"), "3001");
    incoming[i] = ring->Int("call_id");
    callee->Send(
        absl::StrCat(R"({"cmd":"answer-call","account":"account-2","call_id":)", incoming[i], "}"));
    auto answered = caller->WaitFor([&](const NativeEvent& e) {
      return e.event() == "call-answered" && e.Int("call_id") == outgoing[i];
    });
    ASSERT_TRUE(answered.has_value());
  }

  auto is = [](const std::string& event, int64_t call_id) {
    return [event, call_id](const NativeEvent& e) {
      return e.event() == event && e.Int("call_id") == call_id;
    };
  };
  // Switch to the second call: the first is held.
  caller->Send(
      absl::StrCat(R"({"cmd":"switch-call","account":"account-1","call_id":)", outgoing[1], "}"));
  ASSERT_TRUE(caller->WaitFor(is("call-held", outgoing[0])).has_value());
  // And back: the first resumes, the second is held.
  caller->Send(
      absl::StrCat(R"({"cmd":"switch-call","account":"account-1","call_id":)", outgoing[0], "}"));
  // Each event follows its own call's re-INVITE answer: either may be first.
  bool resumed = false, held = false;
  while (!(resumed && held)) {
    auto e = caller->WaitFor([&](const NativeEvent& e) {
      return is("call-resumed", outgoing[0])(e) || is("call-held", outgoing[1])(e);
    });
    ASSERT_TRUE(e.has_value()) << "resumed " << resumed << ", held " << held;
    (e->event() == "call-resumed" ? resumed : held) = true;
  }

  for (int i = 0; i < 2; ++i) {
    caller->Send(
        absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", outgoing[i], "}"));
    ASSERT_TRUE(caller->WaitFor(is("call-ended", outgoing[i])).has_value());
    auto ended = callee->WaitFor(is("call-ended", incoming[i]));
    ASSERT_TRUE(ended.has_value());
    EXPECT_TRUE(ended->Has("code")) << ended->json;  // extended
    EXPECT_TRUE(ended->Has("reason")) << ended->json;
  }
}

}  // namespace
}  // namespace telestra::testing
