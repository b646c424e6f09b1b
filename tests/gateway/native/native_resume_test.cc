// The native port's opt-in resume and list-accounts (docs/native-api.md,
// "Resuming"), against a real NativeServer and EventHub on loopback with a
// fake backend: the `subscribed` answer, the replay of the missed
// broadcasts exactly once and in order while events keep being published,
// the gap ("Events lost: A..B", then a status per account) when the
// history was evicted, the instance is another or after_seq is ahead, and
// legacy clients that see no change.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/backend.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "gateway/native/native_server.h"
#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

// Two accounts of a plan, account-1 with one call; nothing else works.
class TwoAccountsBackend : public backend::Backend {
 public:
  absl::Status Login(const telestra::v1::LoginCommand&) override { return Unsupported(); }
  absl::Status Logout(absl::string_view) override { return Unsupported(); }
  absl::StatusOr<int64_t> MakeCall(absl::string_view, absl::string_view,
                                   absl::FunctionRef<void(int64_t)>) override {
    return Unsupported();
  }
  absl::Status AnswerCall(absl::string_view, int64_t) override { return Unsupported(); }
  absl::Status SwitchCall(absl::string_view, int64_t) override { return Unsupported(); }
  absl::Status HangupCall(absl::string_view, int64_t) override { return Unsupported(); }
  absl::Status SendDtmf(absl::string_view, int64_t, absl::string_view, int, DtmfDone) override {
    return Unsupported();
  }
  absl::Status TransferCall(absl::string_view, int64_t, absl::string_view,
                            std::optional<int64_t>) override {
    return Unsupported();
  }
  absl::Status OpenCallAudio(absl::string_view, int64_t,
                             std::shared_ptr<backend::CallAudioTap>) override {
    return Unsupported();
  }
  absl::StatusOr<telestra::v1::Status> GetStatus(absl::string_view account) const override {
    for (const telestra::v1::Status& status : ListAccounts()) {
      if (status.account() == account) return status;
    }
    return absl::NotFoundError(absl::StrCat("Unknown account: ", account));
  }
  std::vector<telestra::v1::Status> ListAccounts() const override {
    std::vector<telestra::v1::Status> accounts(2);
    accounts[0].set_account("account-1");
    accounts[0].set_account_status(200);
    accounts[0].set_user("3001");
    auto* call = accounts[0].add_calls();
    call->set_call_id(0);
    call->set_state(telestra::v1::CALL_STATE_ACTIVE);
    call->set_direction(telestra::v1::CALL_DIRECTION_OUTGOING);
    call->set_peer("3005");
    accounts[1].set_account("account-2");
    accounts[1].set_account_status(0);
    accounts[1].set_user("3002");
    return accounts;
  }

 private:
  static absl::Status Unsupported() { return absl::UnimplementedError("not in this test"); }
};

// One parsed frame.
struct Frame {
  std::string json;
  std::string Str(const char* key) const {
    simdjson::dom::parser parser;
    std::string_view value;
    if (parser.parse(json).at_key(key).get(value) != simdjson::SUCCESS) return "";
    return std::string(value);
  }
  // -1 when absent.
  int64_t Int(const char* key) const {
    simdjson::dom::parser parser;
    uint64_t value;
    if (parser.parse(json).at_key(key).get(value) != simdjson::SUCCESS) return -1;
    return static_cast<int64_t>(value);
  }
  bool Has(const char* key) const {
    simdjson::dom::parser parser;
    return parser.parse(json).at_key(key).error() == simdjson::SUCCESS;
  }
  std::string event() const { return Str("event"); }
};

// A blocking client of the native port. Thread: one.
class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval timeout{0, 200000};  // Next() keeps its own deadline
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~Client() { Close(); }
  bool connected() const { return connected_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool Send(const std::string& json) {
    const std::string framed = json + '\0';
    return send(fd_, framed.data(), framed.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(framed.size());
  }
  // The next frame; nullopt at the deadline or when the connection closed.
  std::optional<Frame> Next(absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      const size_t end = buffer_.find('\0');
      if (end != std::string::npos) {
        Frame frame{buffer_.substr(0, end)};
        buffer_.erase(0, end + 1);
        return frame;
      }
      if (absl::Now() > deadline) return std::nullopt;
      char chunk[65536];
      const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n == 0) return std::nullopt;
      if (n > 0) buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  // True if nothing arrives within `wait` (for "no reply" checks).
  bool Quiet(absl::Duration wait = absl::Milliseconds(300)) { return !Next(wait).has_value(); }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

telestra::v1::Event Incoming(int64_t call_id) {
  telestra::v1::Event event;
  event.mutable_call_incoming()->set_account("account-2");
  event.mutable_call_incoming()->set_call_id(call_id);
  event.mutable_call_incoming()->set_caller("3001");
  return event;
}

telestra::v1::Event Held(int64_t call_id) {
  telestra::v1::Event event;
  event.mutable_call_held()->set_account("account-1");
  event.mutable_call_held()->set_call_id(call_id);
  return event;
}

class NativeResumeTest : public ::testing::Test {
 protected:
  // `history`: the hub's [tcp-settings] history-events.
  void Start(size_t history = 4096) {
    hub_ = std::make_unique<backend::EventHub>(history);
    dispatcher_ = std::make_unique<backend::CommandDispatcher>(&backend_, hub_.get());
    hub_->StartDeliveryThread();
    NativeServer::Options options;
    options.bind = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<NativeServer>(options, io_, dispatcher_.get(), hub_.get());
    ASSERT_TRUE(server_->Start().ok());
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  void TearDown() override {
    clients_.clear();
    if (server_) server_->Stop();
    work_.reset();
    io_.stop();
    for (std::thread& thread : threads_) thread.join();
  }

  // A client, connected and attached to the hub (it gets broadcasts): a
  // session reads commands only once it is attached, so the answer to one
  // proves it (frames before that answer are skipped).
  Client& Connect() {
    clients_.push_back(std::make_unique<Client>(server_->port()));
    Client& client = *clients_.back();
    EXPECT_TRUE(client.connected());
    client.Send(R"({"cmd":"get-status","account":"account-2","token":"attached"})");
    for (;;) {
      std::optional<Frame> frame = client.Next();
      EXPECT_TRUE(frame.has_value()) << "no answer to get-status";
      if (!frame || frame->Str("token") == "attached") break;
    }
    return client;
  }

  void Publish(int n) {
    for (int i = 0; i < n; ++i) hub_->Broadcast(Incoming(next_call_++));
  }

  TwoAccountsBackend backend_;
  std::unique_ptr<backend::EventHub> hub_;
  std::unique_ptr<backend::CommandDispatcher> dispatcher_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::unique_ptr<NativeServer> server_;
  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<Client>> clients_;
  int64_t next_call_ = 0;
};

// Subscribe with after_seq, then the frames until `subscribed` included.
std::optional<Frame> Resume(Client& client, uint64_t after_seq, const std::string& instance,
                            const std::string& token = "") {
  std::string command =
      absl::StrCat(R"({"cmd":"subscribe","extended":true,"after_seq":)", after_seq);
  if (!instance.empty()) absl::StrAppend(&command, R"(,"instance":")", instance, R"(")");
  if (!token.empty()) absl::StrAppend(&command, R"(,"token":")", token, R"(")");
  client.Send(command + "}");
  for (;;) {
    std::optional<Frame> frame = client.Next();
    if (!frame || frame->event() == "subscribed") return frame;
  }
}

TEST_F(NativeResumeTest, LegacySubscribeIsUnchanged) {
  Start();
  Client& legacy = Connect();
  legacy.Send(R"({"cmd":"subscribe","extended":false})");
  EXPECT_TRUE(legacy.Quiet());  // no answer, as before
  hub_->Broadcast(Held(0));     // extended-only: not for it
  Publish(1);
  std::optional<Frame> frame = legacy.Next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->json,
            R"({"event":"call-incoming","account":"account-2","call_id":0,"caller":"3001",)"
            R"("caller_name":""})");
}

TEST_F(NativeResumeTest, ExtendedSubscribeIsAnsweredWithTheInstanceAndTheLastSeq) {
  Start();
  Client& client = Connect();
  Publish(3);  // they reach the client before its subscribe
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.Next().has_value());
  const uint64_t last = hub_->last_seq();
  client.Send(R"({"cmd":"subscribe","extended":true,"token":"s"})");
  std::optional<Frame> subscribed = client.Next();
  ASSERT_TRUE(subscribed.has_value());
  EXPECT_EQ(subscribed->json, absl::StrCat(R"({"event":"subscribed","instance":")",
                                           hub_->instance(), R"(","token":"s","seq":)", last, "}"));
  Publish(1);
  std::optional<Frame> live = client.Next();
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->Int("seq"), static_cast<int64_t>(last) + 1);  // extended from now on
}

TEST_F(NativeResumeTest, ResumeReplaysEachMissedEventOnceInOrderWhilePublishing) {
  Start(/*history=*/100000);
  // Published until 200 more have gone out after the client had its resume
  // answered (so that some come live after the replay, however fast or slow
  // the machine), at most 90,000 (the history holds them all).
  constexpr int64_t kMaxEvents = 90000;
  std::atomic<bool> go{false};
  std::atomic<bool> answered{false};
  std::thread publisher([&] {
    while (!go) std::this_thread::yield();
    int64_t after_answer = 0;
    for (int64_t i = 0; i < kMaxEvents && after_answer < 200; ++i) {
      hub_->Broadcast(i % 3 == 0 ? Held(i) : Incoming(i));  // extended-only ones too
      if (answered) ++after_answer;
    }
  });
  // A client follows the stream for a while, then drops.
  Client& first = Connect();
  first.Send(R"({"cmd":"subscribe","extended":true})");
  std::optional<Frame> subscribed = first.Next();
  ASSERT_TRUE(subscribed.has_value());
  const std::string instance = subscribed->Str("instance");
  go = true;
  int64_t last_seen = subscribed->Int("seq");
  for (int i = 0; i < 300; ++i) {
    std::optional<Frame> frame = first.Next();
    ASSERT_TRUE(frame.has_value());
    ASSERT_EQ(frame->Int("seq"), last_seen + 1) << frame->json;
    last_seen = frame->Int("seq");
  }
  first.Close();
  // It comes back while the events keep coming.
  Client& back = Connect();
  std::optional<Frame> resumed = Resume(back, static_cast<uint64_t>(last_seen), instance);
  answered = true;
  publisher.join();
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->Str("instance"), instance);
  EXPECT_LT(resumed->Int("seq"), static_cast<int64_t>(hub_->last_seq()))
      << "every event was published before the resume: nothing came live after it";
  // The broadcasts after last_seen (the history holds them all; the replies
  // to `back` have seqs too, and are not among them), each once, in order:
  // the replay, then what came live.
  std::vector<int64_t> want;
  for (const backend::EventPtr& event : hub_->EventsAfter(last_seen).events) {
    want.push_back(static_cast<int64_t>(event->seq()));
  }
  std::vector<int64_t> got;
  while (got.size() < want.size()) {
    std::optional<Frame> frame = back.Next();
    ASSERT_TRUE(frame.has_value()) << got.size() << " of " << want.size();
    ASSERT_NE(frame->event(), "fail") << frame->json;
    got.push_back(frame->Int("seq"));
  }
  EXPECT_EQ(got, want);
  EXPECT_TRUE(back.Quiet());
  EXPECT_EQ(server_->stats().resume_gaps, 0u);
}

TEST_F(NativeResumeTest, EvictedEventsAreAGapFollowedByEveryAccountsStatus) {
  Start(/*history=*/16);
  Client& client = Connect();
  Publish(40);  // the history keeps the newest 16
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(client.Next().has_value());
  const std::string last = absl::StrCat(hub_->last_seq());
  std::optional<Frame> subscribed = Resume(client, 1, hub_->instance(), "r");
  ASSERT_TRUE(subscribed.has_value());
  EXPECT_EQ(subscribed->json, absl::StrCat(R"({"event":"subscribed","instance":")",
                                           hub_->instance(), R"(","token":"r","seq":)", last, "}"));
  std::optional<Frame> fail = client.Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->json, absl::StrCat(R"({"event":"fail","account":"","error":"Events lost: 2..)",
                                     last, R"(","token":"r","seq":)", last, "}"));
  std::optional<Frame> one = client.Next();
  std::optional<Frame> two = client.Next();
  ASSERT_TRUE(one.has_value() && two.has_value());
  EXPECT_EQ(
      one->json,
      absl::StrCat(R"({"event":"status","account":"account-1","account_status":200,"user":"3001",)"
                   R"("server":"","calls":[{"call_id":0,"state":"active","direction":"outgoing",)"
                   R"("peer":"3005","peer_name":"","codec":"","sip_call_id":"","remote_uri":"",)"
                   R"("packets_received":0,"packets_lost":0,"jitter_ms":0.0}],"token":"r","seq":)",
                   last, "}"));
  EXPECT_EQ(two->Str("account"), "account-2");
  EXPECT_EQ(two->Int("seq"), one->Int("seq"));
  Publish(1);
  std::optional<Frame> live = client.Next();
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->event(), "call-incoming");
  EXPECT_EQ(live->Int("seq"), one->Int("seq") + 1);
  EXPECT_EQ(server_->stats().resume_gaps, 1u);
}

TEST_F(NativeResumeTest, ResumeFromBeforeTheOldestKeptEventIsComplete) {
  Start(/*history=*/16);
  Client& client = Connect();
  Publish(40);  // the history keeps the newest 16, all broadcasts
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(client.Next().has_value());
  const int64_t last = static_cast<int64_t>(hub_->last_seq());
  ASSERT_TRUE(Resume(client, last - 16, hub_->instance()).has_value());
  for (int64_t seq = last - 15; seq <= last; ++seq) {
    std::optional<Frame> frame = client.Next();
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame->Int("seq"), seq) << frame->json;
  }
  EXPECT_TRUE(client.Quiet());
}

TEST_F(NativeResumeTest, AnotherInstanceOrAnAfterSeqAheadLosesThisInstancesEvents) {
  Start();
  Client& client = Connect();
  Publish(5);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client.Next().has_value());
  const int64_t last = static_cast<int64_t>(hub_->last_seq());
  // after_seq does not count in this numbering: 1..last are lost to the client.
  for (const auto& [after_seq, instance] :
       std::vector<std::pair<int64_t, std::string>>{{3, "0000000000000000"}, {last + 4, ""}}) {
    std::optional<Frame> subscribed = Resume(client, after_seq, instance);
    ASSERT_TRUE(subscribed.has_value());
    EXPECT_EQ(subscribed->Str("instance"), hub_->instance());
    EXPECT_EQ(subscribed->Int("seq"), last);
    std::optional<Frame> fail = client.Next();
    ASSERT_TRUE(fail.has_value());
    EXPECT_EQ(fail->Str("error"), absl::StrCat("Events lost: 1..", last)) << after_seq;
    for (const char* account : {"account-1", "account-2"}) {
      std::optional<Frame> status = client.Next();
      ASSERT_TRUE(status.has_value());
      EXPECT_EQ(status->event(), "status");
      EXPECT_EQ(status->Str("account"), account);
    }
  }
  EXPECT_EQ(server_->stats().resume_gaps, 2u);
}

TEST_F(NativeResumeTest, NothingMissedIsAnEmptyReplay) {
  Start();
  Client& client = Connect();
  Publish(2);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(client.Next().has_value());
  const int64_t last = static_cast<int64_t>(hub_->last_seq());
  std::optional<Frame> subscribed = Resume(client, last, "");  // no instance: not checked
  ASSERT_TRUE(subscribed.has_value());
  EXPECT_EQ(subscribed->Int("seq"), last);
  Publish(1);
  std::optional<Frame> live = client.Next();
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->Int("seq"), last + 1);
}

TEST_F(NativeResumeTest, BadResumeFieldsAreNamed) {
  Start();
  Client& client = Connect();
  client.Send(R"({"cmd":"subscribe","extended":true,"after_seq":"5","token":"b"})");
  std::optional<Frame> fail = client.Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->json,
            R"({"event":"fail","account":"","error":"Field after_seq must be a non-negative )"
            R"(integer","token":"b"})");
  client.Send(R"({"cmd":"subscribe","extended":false,"after_seq":5})");
  fail = client.Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->Str("error"), "Field after_seq requires extended to be true");
  client.Send(R"({"cmd":"subscribe","extended":true,"after_seq":5,"instance":5})");
  fail = client.Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->Str("error"), "Field instance must be a string");
}

TEST_F(NativeResumeTest, ListAccountsAnswersTheRequesterOnly) {
  Start();
  Client& legacy = Connect();
  Client& other = Connect();
  legacy.Send(R"({"cmd":"list-accounts","token":"l"})");
  std::optional<Frame> accounts = legacy.Next();
  ASSERT_TRUE(accounts.has_value());
  EXPECT_EQ(accounts->json,
            R"({"event":"accounts","accounts":[)"
            R"({"event":"status","account":"account-1","account_status":200,)"
            R"("calls":[{"call_id":0,"state":"active","direction":"outgoing","peer":"3005",)"
            R"("peer_name":""}]},)"
            R"({"event":"status","account":"account-2","account_status":0,"calls":[]}],)"
            R"("token":"l"})");
  EXPECT_TRUE(other.Quiet());
  // An extended client gets each status extended, with the reply's seq.
  other.Send(R"({"cmd":"subscribe","extended":true})");
  ASSERT_TRUE(other.Next().has_value());  // subscribed
  other.Send(R"({"cmd":"list-accounts"})");
  accounts = other.Next();
  ASSERT_TRUE(accounts.has_value());
  EXPECT_EQ(accounts->event(), "accounts");
  EXPECT_TRUE(accounts->Has("seq"));
  EXPECT_NE(accounts->json.find(R"("user":"3001")"), std::string::npos) << accounts->json;
}

}  // namespace
}  // namespace telestra::gateway
