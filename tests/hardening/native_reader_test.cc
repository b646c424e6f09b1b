// Who reads the native port's commands (docs/native-api.md, "Threads"):
// by default the SIP thread, so that a command that leads to SIP wakes one
// thread of the gateway, not two; with --native_on_sip_thread=false the API
// threads. Each test runs in both modes: framing, bad input, half-closed
// clients, connect/disconnect cycles, and which thread is woken. No
// registrar is needed: the account does not register.
#include <sys/socket.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/hardening/hardening_support.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"

namespace telestra::testing {
namespace {

class NativeReaderTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    GatewayOptions options = OneIdleAccount();
    options.tcp_settings = {"max-clients = 2"};
    options.extra_args = {absl::StrCat("--native_on_sip_thread=", OnSipThread())};
    auto gateway = GatewayProcess::Start(options);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = *std::move(gateway);
  }

  bool OnSipThread() const { return GetParam(); }

  std::unique_ptr<NativeClient> Connect() {
    auto client = NativeClient::Connect(gateway_->native_port());
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // Waits until the gateway counts `want` native clients (its metrics
  // port may open a moment after the native port).
  bool WaitForClients(int want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      absl::StatusOr<std::string> metrics = HttpGet(gateway_->metrics_port(), "/metrics");
      if (metrics.ok() && MetricValue(*metrics, "telestra_native_clients") == want) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  std::unique_ptr<GatewayProcess> gateway_;
};

constexpr char kStatus[] = R"({"cmd":"get-status","account":"account-1"})";

TEST_P(NativeReaderTest, FramesCommandsHoweverTheyArrive) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  // One byte at a time.
  const std::string command = std::string(kStatus) + '\0';
  for (char c : command) ASSERT_TRUE(client->SendRaw(std::string(1, c)));
  auto status = client->Next();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->event(), "status");
  // Two pretty-printed, line-framed messages in one write, as in the
  // vendor document.
  client->SendRaw(
      "{\n    \"cmd\": \"get-status\",\n    \"account\": \"account-1\"\n}\n"
      "{\n    \"cmd\": \"get-status\",\n    \"account\": \"nobody\"\n}\n");
  auto first = client->Next();
  auto second = client->Next();
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(first->event(), "status");
  EXPECT_EQ(second->Str("error"), "Unknown account: nobody");
  // A thousand in one write (more than one read's buffer), answered in order.
  for (int i = 0; i < 1000; ++i) {
    client->Queue(
        absl::StrCat(R"({"cmd":"get-status","account":"account-1","token":"t)", i, R"("})"));
  }
  ASSERT_TRUE(client->Flush());
  for (int i = 0; i < 1000; ++i) {
    auto reply = client->Next();
    ASSERT_TRUE(reply.has_value()) << "reply " << i;
    ASSERT_EQ(reply->Str("token"), absl::StrCat("t", i));
  }
}

TEST_P(NativeReaderTest, BadInputGetsFailAndTheConnectionGoesOn) {
  auto client = Connect();
  auto other = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_NE(other, nullptr);
  client->SendRaw(std::string("{\"cmd\":\"get-status\",\"account\":}\0", 32));
  auto malformed = client->Next();
  ASSERT_TRUE(malformed.has_value());
  EXPECT_TRUE(absl::StartsWith(malformed->Str("error"), "Malformed JSON")) << malformed->json;
  client->SendRaw(std::string("{\"cmd\":\"") + std::string(70000, 'x') + "\"}" + '\0');
  auto too_large = client->Next();
  ASSERT_TRUE(too_large.has_value());
  EXPECT_EQ(too_large->Str("error"), "Message too large");
  ASSERT_TRUE(client->Send(kStatus));
  auto status = client->Next();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->event(), "status");
  // None of it reached the other client.
  EXPECT_FALSE(other->Next(absl::Milliseconds(300)).has_value());
  EXPECT_FALSE(other->closed());
}

// A client that shuts down its sending side right after its last command
// (as `nc -q1` does) still gets the reply; the gateway frees its slot at
// once and closes the connection after the linger (3 s).
TEST_P(NativeReaderTest, HalfClosedClientGetsItsReplyThenIsClosed) {
  auto raw = RawConnection::Connect(gateway_->native_port());
  ASSERT_TRUE(raw.ok()) << raw.status();
  ASSERT_TRUE((*raw)->Send(std::string(kStatus) + '\0'));
  ASSERT_EQ(shutdown((*raw)->fd(), SHUT_WR), 0);
  EXPECT_TRUE(WaitForClients(0)) << "the half-closed client still counts";
  bool closed = false;
  const absl::Time start = absl::Now();
  std::string bytes = (*raw)->ReadUntilClosed(absl::Seconds(10), &closed);
  EXPECT_TRUE(closed);
  EXPECT_GE(absl::Now() - start, absl::Seconds(2));
  std::vector<std::string> events = SplitEvents(bytes);
  ASSERT_EQ(events.size(), 1u) << bytes;
  EXPECT_TRUE(absl::StartsWith(events[0], R"({"event":"status")")) << events[0];
}

// Clients that come and go (closing with FIN or RST, with or without a
// command in flight) leave no session and no descriptor behind.
TEST_P(NativeReaderTest, ClientsThatComeAndGoLeaveNothingBehind) {
  auto keeper = Connect();
  ASSERT_NE(keeper, nullptr);
  ASSERT_TRUE(WaitForClients(1));
  const int pid = gateway_->process().pid();
  auto descriptors = [pid] { return CountOpenFds(pid); };
  // The RTP engine opens its port pool in the background at start-up, and
  // the harness's readiness probe lingers: let both settle.
  absl::SleepFor(absl::Seconds(4));
  const int before = descriptors();
  for (int i = 0; i < 200; ++i) {
    auto raw = RawConnection::Connect(gateway_->native_port());
    ASSERT_TRUE(raw.ok()) << raw.status();
    if (i % 2 == 0) ASSERT_TRUE((*raw)->Send(std::string(kStatus) + '\0'));
    if (i % 4 < 2) (*raw)->Reset();  // RST; the others close with FIN
  }
  EXPECT_TRUE(WaitForClients(1));
  // The keeper is served as ever.
  ASSERT_TRUE(keeper->Send(kStatus));
  auto status = keeper->Next();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->event(), "status");
  // Half the FIN-closed ones linger 3 s before their socket is closed.
  const absl::Time deadline = absl::Now() + absl::Seconds(8);
  while (descriptors() > before && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_LE(descriptors(), before);
}

// With max-clients = 2 and one slot taken, a client that closes its
// connection and connects again at once is admitted every time, although
// the end of its old connection may not have been read yet (the reader
// and the acceptor are different threads).
TEST_P(NativeReaderTest, AClientThatReconnectsAtOnceGetsTheSlotItFreed) {
  auto keeper = Connect();
  ASSERT_NE(keeper, nullptr);
  for (int i = 0; i < 20; ++i) {
    auto client = Connect();
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->Send(kStatus));
    auto status = client->Next();
    ASSERT_TRUE(status.has_value()) << "cycle " << i;
    ASSERT_EQ(status->event(), "status") << "cycle " << i << ": " << status->json;
  }  // each client closes as the next one connects
  EXPECT_FALSE(absl::StrContains(gateway_->ReadLog(), "max-clients")) << "a client was refused";
}

// The thread that reads a command is woken for the commands (at most once
// each; fewer when a slow build finds the next one waiting already); the
// other one is not woken at all (the reply is written by the reader). 200
// sequential get-status round trips.
TEST_P(NativeReaderTest, OneThreadIsWokenPerCommand) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send(kStatus));
  ASSERT_TRUE(client->Next().has_value());
  const int pid = gateway_->process().pid();
  std::map<std::string, int64_t> before = ThreadSwitches(pid);
  ASSERT_TRUE(before.count("telestra-sip")) << "no thread named telestra-sip";
  ASSERT_TRUE(before.count("telestra-io-0")) << "no thread named telestra-io-0";
  constexpr int kCommands = 200;
  for (int i = 0; i < kCommands; ++i) {
    ASSERT_TRUE(client->Send(kStatus));
    auto status = client->Next();
    ASSERT_TRUE(status.has_value());
    ASSERT_EQ(status->event(), "status");
  }
  std::map<std::string, int64_t> after = ThreadSwitches(pid);
  const int64_t sip = after["telestra-sip"] - before["telestra-sip"];
  const int64_t io = after["telestra-io-0"] - before["telestra-io-0"];
  const int64_t reader = OnSipThread() ? sip : io;
  const int64_t other = OnSipThread() ? io : sip;
  EXPECT_GE(reader, kCommands / 10) << "sip " << sip << ", io " << io;
  EXPECT_LE(reader, kCommands + kCommands / 10) << "sip " << sip << ", io " << io;
  EXPECT_LT(other, kCommands / 10) << "sip " << sip << ", io " << io;
}

INSTANTIATE_TEST_SUITE_P(Readers, NativeReaderTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "SipThread" : "ApiThreads";
                         });

}  // namespace
}  // namespace telestra::testing
