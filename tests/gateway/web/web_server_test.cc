// The web front end in-process, with a fake backend and the real EventHub:
// the opening snapshot and the live events that follow it lose nothing,
// even while events are being published as fast as possible.
#include "gateway/web/web_server.h"

#include <simdjson.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "absl/strings/match.h"
#include "gateway/metrics/metrics.h"
#include "gtest/gtest.h"
#include "tests/integration/web_client.h"

namespace telestra::gateway {
namespace {

using telestra::testing::NativeEvent;
using telestra::testing::WebClient;

// One account whose account_status counts the events published about it.
// Like GatewayBackend, the state changes and the event is published under
// one lock, so that state and events stay in the same order.
class CountingBackend : public backend::Backend {
 public:
  explicit CountingBackend(backend::EventHub* hub) : hub_(hub) {}

  void Bump() {
    absl::MutexLock lock(&mu_);
    ++count_;
    telestra::v1::Event event;
    event.mutable_account_status()->set_account("counter");
    event.mutable_account_status()->set_account_status(count_);
    hub_->Broadcast(std::move(event));
  }

  absl::Status Login(const telestra::v1::LoginCommand&) override {
    return absl::UnimplementedError("no");
  }
  absl::Status Logout(absl::string_view) override { return absl::UnimplementedError("no"); }
  absl::StatusOr<int64_t> MakeCall(absl::string_view, absl::string_view,
                                   absl::FunctionRef<void(int64_t)>) override {
    return absl::UnimplementedError("Calls are not supported yet");
  }
  absl::Status AnswerCall(absl::string_view, int64_t) override {
    return absl::UnimplementedError("no");
  }
  absl::Status SwitchCall(absl::string_view, int64_t) override {
    return absl::UnimplementedError("no");
  }
  absl::Status HangupCall(absl::string_view, int64_t) override {
    return absl::UnimplementedError("no");
  }
  absl::Status TransferCall(absl::string_view, int64_t, absl::string_view,
                            std::optional<int64_t>) override {
    return absl::UnimplementedError("no");
  }
  absl::Status OpenCallAudio(absl::string_view, int64_t,
                             std::shared_ptr<backend::CallAudioTap>) override {
    return absl::UnimplementedError("no");
  }
  absl::Status SendDtmf(absl::string_view, int64_t, absl::string_view, int, DtmfDone) override {
    return absl::UnimplementedError("no");
  }
  absl::StatusOr<telestra::v1::Status> GetStatus(absl::string_view account) const override {
    if (account != "counter") return absl::NotFoundError("Unknown account: x");
    return ListAccounts()[0];
  }
  std::vector<telestra::v1::Status> ListAccounts() const override {
    absl::MutexLock lock(&mu_);
    telestra::v1::Status status;
    status.set_account("counter");
    status.set_account_status(count_);
    return {status};
  }

 private:
  backend::EventHub* const hub_;
  mutable absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

class WebServerTest : public ::testing::Test {
 protected:
  // The server's options (port 0 in any case).
  virtual WebServer::Options Options() { return {}; }

  void SetUp() override {
    WebServer::Options options = Options();
    options.port = 0;
    server_ = std::make_unique<WebServer>(options, io_, &backend_, &dispatcher_, &hub_);
    ASSERT_TRUE(server_->Start().ok());
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  // The value of `family` in the server's metrics, labelled
  // front_end="websocket" when `front_end` is set (-1: absent).
  double Metric(const std::string& family, bool front_end) {
    MetricsWriter out;
    server_->ExportMetrics(out);
    for (const prometheus::MetricFamily& f : out.Take()) {
      if (f.name != family) continue;
      for (const prometheus::ClientMetric& m : f.metric) {
        const bool labelled = !m.label.empty() && m.label[0].name == "front_end" &&
                              m.label[0].value == "websocket";
        if (labelled != front_end) continue;
        return f.type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value;
      }
    }
    return -1;
  }

  void TearDown() override {
    server_->Stop();
    work_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
  }

  backend::EventHub hub_{100000};
  CountingBackend backend_{&hub_};
  backend::CommandDispatcher dispatcher_{&backend_, &hub_};
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::unique_ptr<WebServer> server_;
  std::vector<std::thread> threads_;
};

int64_t SnapshotCount(const NativeEvent& snapshot) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  int64_t count = -1;
  if (parser.parse(snapshot.json).get(doc) != simdjson::SUCCESS) return -1;
  if (doc["accounts"].at(0)["account_status"].get(count) != simdjson::SUCCESS) return -1;
  return count;
}

TEST_F(WebServerTest, SnapshotThenLiveEventsLoseNothingWhileEventsPour) {
  std::atomic<bool> publishing{true};
  // As fast as a client can follow (faster, and it is dropped as too slow).
  std::thread publisher([&] {
    while (publishing) {
      for (int i = 0; i < 10; ++i) backend_.Bump();
      absl::SleepFor(absl::Microseconds(200));
    }
  });
  for (int round = 0; round < 20; ++round) {
    auto client = WebClient::Connect(server_->port());
    ASSERT_TRUE(client.ok()) << client.status();
    auto snapshot = (*client)->Next();
    ASSERT_TRUE(snapshot.has_value());
    ASSERT_EQ(snapshot->event(), "snapshot") << snapshot->json;
    const int64_t seq = snapshot->Int("seq");
    const int64_t count = SnapshotCount(*snapshot);
    // The state includes at least every event up to the snapshot's seq
    // (here each event is one count).
    EXPECT_GE(count, seq) << "round " << round;
    int64_t previous_seq = seq;
    int64_t previous_count = -1;
    for (int i = 0; i < 200; ++i) {
      auto event = (*client)->Next();
      ASSERT_TRUE(event.has_value()) << "round " << round << " event " << i;
      ASSERT_EQ(event->event(), "account-status");
      // Consecutive: nothing lost between the snapshot and the live events,
      // nothing repeated among the live ones.
      EXPECT_EQ(event->Int("seq"), previous_seq + 1) << "round " << round << " event " << i;
      if (i == 0) {
        EXPECT_LE(event->Int("account_status"), count + 1) << "lost an event after the snapshot";
      } else {
        EXPECT_EQ(event->Int("account_status"), previous_count + 1);
      }
      previous_seq = event->Int("seq");
      previous_count = event->Int("account_status");
    }
  }
  publishing = false;
  publisher.join();
}

TEST_F(WebServerTest, ResumeReplaysExactlyTheEventsAfterSeq) {
  auto first = WebClient::Connect(server_->port());
  ASSERT_TRUE(first.ok());
  auto snapshot = (*first)->Next();
  ASSERT_TRUE(snapshot.has_value());
  const std::string instance = snapshot->Str("instance");
  EXPECT_EQ(instance, hub_.instance());  // the gateway's one instance id
  for (int i = 0; i < 10; ++i) backend_.Bump();
  (*first)->Close();
  telestra::testing::WebClientOptions options;
  options.target = "/ws?after_seq=4&instance=" + instance;
  auto back = WebClient::Connect(server_->port(), options);
  ASSERT_TRUE(back.ok());
  auto resumed = (*back)->Next();
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->json,
            R"({"event":"resumed","instance":")" + instance + R"(","after_seq":4,"replayed":6})");
  for (int64_t seq = 5; seq <= 10; ++seq) {
    auto event = (*back)->Next();
    ASSERT_TRUE(event.has_value());
    EXPECT_EQ(event->Int("seq"), seq);
  }
  backend_.Bump();
  auto live = (*back)->Next();
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->Int("seq"), 11);
}

TEST_F(WebServerTest, StopClosesSessionsWithGoingAwayAndRefusesNewOnes) {
  auto client = WebClient::Connect(server_->port());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Next().has_value());
  const int port = server_->port();
  server_->Stop();
  EXPECT_FALSE((*client)->Next(absl::Seconds(5)).has_value());
  EXPECT_TRUE((*client)->closed());
  EXPECT_EQ((*client)->close_code(), 1001);
  EXPECT_FALSE(WebClient::Connect(port).ok());
  // The session leaves the registry once its close handshake completed.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (server_->stats().sessions != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(server_->stats().sessions, 0u);
}

class WebServerTwoSessionsTest : public WebServerTest {
 protected:
  WebServer::Options Options() override {
    WebServer::Options options;
    options.max_sessions = 2;
    return options;
  }
};

TEST_F(WebServerTwoSessionsTest, AdmitsUpToMaxSessionsOnTheSharedRegistryAndRefusesTheNext) {
  auto first = WebClient::Connect(server_->port());
  auto second = WebClient::Connect(server_->port());
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE((*first)->Next().has_value());  // the snapshots: both admitted
  ASSERT_TRUE((*second)->Next().has_value());
  auto third = WebClient::Connect(server_->port());
  ASSERT_TRUE(third.ok());
  std::optional<NativeEvent> fail = (*third)->Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_TRUE(absl::StrContains(fail->json, "Too many sessions (max-sessions is 2)")) << fail->json;
  EXPECT_FALSE((*third)->Next().has_value());
  EXPECT_EQ((*third)->close_code(), 1013);
  // The registry's families, labelled with the front end, and the web
  // server's own names for the same figures.
  EXPECT_EQ(Metric("telestra_sessions", true), 2);
  EXPECT_EQ(Metric("telestra_sessions_admitted_total", true), 2);
  EXPECT_EQ(Metric("telestra_sessions_refused_total", true), 1);
  EXPECT_EQ(Metric("telestra_web_sessions", false), 2);
  EXPECT_EQ(Metric("telestra_web_sessions_refused_total", false), 1);
  EXPECT_EQ(server_->stats().sessions_accepted, 2u);
  // A slot freed by a client that leaves admits the next one.
  (*first)->Close();
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (server_->stats().sessions != 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  auto fourth = WebClient::Connect(server_->port());
  ASSERT_TRUE(fourth.ok());
  std::optional<NativeEvent> snapshot = (*fourth)->Next();
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->Str("event"), "snapshot");
}

TEST_F(WebServerTest, CloseAllWritesOutQueuedEventsThenEmptiesTheRegistry) {
  auto client = WebClient::Connect(server_->port());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Next().has_value());  // the snapshot
  for (int i = 0; i < 50; ++i) backend_.Bump();
  hub_.AwaitDelivered(absl::Now() + absl::Seconds(5));
  server_->Stop(absl::Now() + absl::Seconds(5));
  EXPECT_TRUE(server_->WaitForFlush(absl::Now() + absl::Seconds(5)));
  EXPECT_EQ(server_->stats().sessions, 0u);
  EXPECT_EQ(Metric("telestra_sessions", true), 0);
  // Every event published before the close-all reached the client, then 1001.
  int64_t last = 0;
  while (std::optional<NativeEvent> event = (*client)->Next()) last = event->Int("seq");
  EXPECT_EQ(last, 50);
  EXPECT_EQ((*client)->close_code(), 1001);
  EXPECT_EQ(Metric("telestra_undelivered_events_total", true), 0);
}

}  // namespace
}  // namespace telestra::gateway
