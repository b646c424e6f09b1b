// The gRPC front end in-process: a fake Backend, the real EventHub and
// CommandDispatcher, the real GrpcServer on a loopback port, generated stubs.
#include "gateway/grpc/grpc_server.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backend/backend.h"
#include "backend/command_dispatcher.h"
#include "backend/dtmf.h"
#include "backend/event_hub.h"
#include "backend/gateway_backend.h"
#include "backend/sip_stack.h"
#include "gtest/gtest.h"
#include "proto/telestra_service.grpc.pb.h"
#include "tests/gateway/grpc/grpc_test_client.h"
#include "tests/support/test_certificate.h"
#include "tests/support/test_files.h"

namespace telestra::gateway {
namespace {

using telestra::testing::ChannelOptions;
using telestra::testing::EventStreamReader;
using telestra::testing::MakeChannel;
using telestra::testing::Prepare;
using telestra::v1::Event;

// Two accounts; login/logout broadcast account-status like the real backend;
// calls are kept in a map: outgoing calls start "dialing", number "offline"
// is UNAVAILABLE.
// Thread: any.
class FakeBackend : public backend::Backend {
 public:
  explicit FakeBackend(backend::EventHub* hub) : hub_(hub) {
    status_["account-1"] = 0;
    status_["account-2"] = 0;
  }

  absl::Status Login(const telestra::v1::LoginCommand& login) override {
    if (login.user().empty()) return absl::InvalidArgumentError("Field user must not be empty");
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Check(login.account()); !s.ok()) return s;
    SetStatus(login.account(), 100);
    return absl::OkStatus();
  }
  absl::Status Logout(absl::string_view account) override {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Check(account); !s.ok()) return s;
    SetStatus(std::string(account), 0);
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> MakeCall(absl::string_view account, absl::string_view number,
                                   absl::FunctionRef<void(int64_t)> on_call_id) override {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Check(account); !s.ok()) return s;
    if (number == "offline") return absl::UnavailableError("SIP server unreachable");
    int64_t id = next_call_++;
    on_call_id(id);
    calls_[id] = std::string(account);
    return id;
  }
  absl::Status AnswerCall(absl::string_view account, int64_t call_id) override {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = CheckCall(account, call_id); !s.ok()) return s;
    return absl::FailedPreconditionError("Call is not incoming");
  }
  absl::Status SwitchCall(absl::string_view account, int64_t call_id) override {
    absl::MutexLock lock(&mu_);
    return CheckCall(account, call_id);
  }
  absl::Status HangupCall(absl::string_view account, int64_t call_id) override {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = CheckCall(account, call_id); !s.ok()) return s;
    calls_.erase(call_id);
    return absl::OkStatus();
  }
  absl::Status OpenCallAudio(absl::string_view, int64_t,
                             std::shared_ptr<backend::CallAudioTap>) override {
    return absl::UnimplementedError("no");
  }
  // "3003" is accepted; anything else fails at once (as a backend would).
  absl::Status TransferCall(absl::string_view account, int64_t call_id, absl::string_view number,
                            std::optional<int64_t> to_call_id) override {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = CheckCall(account, call_id); !s.ok()) return s;
    if (!number.empty() && to_call_id) {
      return absl::InvalidArgumentError("Give either num or to_call_id, not both");
    }
    if (to_call_id) return CheckCall(account, *to_call_id);
    return number == "3003" ? absl::OkStatus() : absl::InvalidArgumentError("Invalid number: x");
  }
  // Queued at once; "done" digits are sent, others fail after queuing.
  absl::Status SendDtmf(absl::string_view account, int64_t call_id, absl::string_view digits,
                        int, DtmfDone on_done) override {
    {
      absl::MutexLock lock(&mu_);
      if (absl::Status s = CheckCall(account, call_id); !s.ok()) return s;
    }
    if (on_done) {
      on_done(digits == "done" ? absl::OkStatus()
                               : absl::UnavailableError("DTMF to call failed: 405 Not Allowed"),
              std::string(digits));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<telestra::v1::Status> GetStatus(absl::string_view account) const override {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Check(account); !s.ok()) return s;
    return StatusOf(std::string(account));
  }
  std::vector<telestra::v1::Status> ListAccounts() const override {
    absl::MutexLock lock(&mu_);
    return {StatusOf("account-1"), StatusOf("account-2")};
  }

 private:
  absl::Status Check(absl::string_view account) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (status_.count(std::string(account)) == 0) {
      return absl::NotFoundError(absl::StrCat("Unknown account: ", account));
    }
    return absl::OkStatus();
  }
  absl::Status CheckCall(absl::string_view account, int64_t call_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (absl::Status s = Check(account); !s.ok()) return s;
    auto it = calls_.find(call_id);
    if (it == calls_.end() || it->second != account) {
      return absl::NotFoundError(absl::StrCat("Unknown call: ", call_id));
    }
    return absl::OkStatus();
  }
  void SetStatus(const std::string& account, int status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    status_[account] = status;
    Event event;
    event.mutable_account_status()->set_account(account);
    event.mutable_account_status()->set_account_status(status);
    hub_->Broadcast(std::move(event));  // state first, event last, under the lock
  }
  telestra::v1::Status StatusOf(const std::string& account) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    telestra::v1::Status status;
    status.set_account(account);
    status.set_account_status(status_.at(account));
    for (const auto& [id, owner] : calls_) {
      if (owner != account) continue;
      auto* call = status.add_calls();
      call->set_call_id(id);
      call->set_state(telestra::v1::CALL_STATE_DIALING);
      call->set_direction(telestra::v1::CALL_DIRECTION_OUTGOING);
    }
    return status;
  }

  backend::EventHub* const hub_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> status_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::string> calls_ ABSL_GUARDED_BY(mu_);
  int64_t next_call_ ABSL_GUARDED_BY(mu_) = 1;
};

Event AccountStatusEvent(const std::string& account, int status) {
  Event event;
  event.mutable_account_status()->set_account(account);
  event.mutable_account_status()->set_account_status(status);
  return event;
}

struct ServerSetup {
  size_t history = 4096;
  size_t max_queued_events = 8192;
  std::string token;
  std::string cert_file;
  std::string key_file;
};

class GrpcServerTest : public ::testing::Test {
 protected:
  void Start(const ServerSetup& setup = {}) {
    hub_ = std::make_unique<backend::EventHub>(setup.history);
    backend_ = std::make_unique<FakeBackend>(hub_.get());
    dispatcher_ = std::make_unique<backend::CommandDispatcher>(backend_.get(), hub_.get());
    GrpcServer::Options options;
    options.port = 0;
    options.token = setup.token;
    options.cert_file = setup.cert_file;
    options.key_file = setup.key_file;
    options.max_queued_events = setup.max_queued_events;
    server_ = std::make_unique<GrpcServer>(options, backend_.get(), hub_.get(), dispatcher_.get());
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
    channel_ = MakeChannel(server_->port());
    stub_ = telestra::v1::Telestra::NewStub(channel_);
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  grpc::Status GetStatus(const std::string& account, telestra::v1::Status* out,
                         const std::string& token = "") {
    grpc::ClientContext context;
    Prepare(context, token);
    telestra::v1::GetStatusCommand request;
    request.set_account(account);
    return stub_->GetStatus(&context, request, out);
  }

  std::unique_ptr<EventStreamReader> Subscribe(const telestra::v1::SubscribeRequest& request) {
    return EventStreamReader::Subscribe(stub_.get(), request);
  }

  std::unique_ptr<backend::EventHub> hub_;
  std::unique_ptr<FakeBackend> backend_;
  std::unique_ptr<backend::CommandDispatcher> dispatcher_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<telestra::v1::Telestra::Stub> stub_;
};

bool IsAccountStatus(const Event& e, const std::string& account, int status) {
  return e.has_account_status() && e.account_status().account() == account &&
         e.account_status().account_status() == status;
}

TEST_F(GrpcServerTest, UnaryRpcsReturnBackendResultsAndCanonicalCodes) {
  Start();
  telestra::v1::Status status;
  ASSERT_TRUE(GetStatus("account-1", &status).ok());
  EXPECT_EQ(status.account(), "account-1");
  grpc::Status unknown = GetStatus("nobody", &status);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(unknown.error_message(), "Unknown account: nobody");
  EXPECT_EQ(GetStatus("", &status).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::MakeCallCommand request;
    request.set_account("account-1");
    request.set_num("3002");
    telestra::v1::CallReturn call;
    ASSERT_TRUE(stub_->MakeCall(&context, request, &call).ok());
    EXPECT_EQ(call.account(), "account-1");
    EXPECT_EQ(call.call_id(), 1);
  }
  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::MakeCallCommand request;
    request.set_account("account-1");
    request.set_num("offline");
    telestra::v1::CallReturn call;
    EXPECT_EQ(stub_->MakeCall(&context, request, &call).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::AnswerCallCommand request;
    request.set_account("account-1");
    request.set_call_id(1);
    telestra::v1::AnswerCallResponse response;
    grpc::Status answered = stub_->AnswerCall(&context, request, &response);
    EXPECT_EQ(answered.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(answered.error_message(), "Call is not incoming");
  }
  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::SwitchCallCommand request;
    request.set_account("account-1");
    request.set_call_id(99);
    telestra::v1::SwitchCallResponse response;
    EXPECT_EQ(stub_->SwitchCall(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::HangupCallCommand request;
    request.set_account("account-1");
    request.set_call_id(-4);
    telestra::v1::HangupCallResponse response;
    grpc::Status hangup = stub_->HangupCall(&context, request, &response);
    EXPECT_EQ(hangup.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(hangup.error_message(), "Field call_id is out of range");
  }
  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::ListAccountsResponse response;
    ASSERT_TRUE(stub_->ListAccounts(&context, {}, &response).ok());
    ASSERT_EQ(response.accounts_size(), 2);
    EXPECT_EQ(response.accounts(0).account(), "account-1");
    ASSERT_EQ(response.accounts(0).calls_size(), 1);  // the call made above
    EXPECT_EQ(response.accounts(1).account(), "account-2");
  }
}

TEST_F(GrpcServerTest, SubscribeFiltersByAccountAndKind) {
  Start();
  telestra::v1::SubscribeRequest only_two;
  only_two.add_accounts("account-2");
  auto two = Subscribe(only_two);
  telestra::v1::SubscribeRequest only_fail;
  only_fail.add_kinds(telestra::v1::EVENT_KIND_FAIL);
  auto fails = Subscribe(only_fail);
  auto all = Subscribe({});
  EXPECT_EQ(all->Metadata("telestra-epoch"), server_->epoch());
  EXPECT_EQ(server_->epoch(), hub_->instance());  // the gateway's one instance id
  EXPECT_EQ(all->Metadata("telestra-replay"), "none");

  hub_->Broadcast(AccountStatusEvent("account-1", 200));
  hub_->Broadcast(AccountStatusEvent("account-2", 200));
  hub_->Broadcast(backend::CommandDispatcher::FailEvent(
      "account-1", absl::UnavailableError("Failed to log in to account: account-1"), ""));

  ASSERT_TRUE(all->WaitForCount(3));
  ASSERT_TRUE(two->WaitForCount(1));
  ASSERT_TRUE(fails->WaitForCount(1));
  // Give a wrongly delivered event the time to arrive.
  hub_->Broadcast(AccountStatusEvent("account-2", 0));
  ASSERT_TRUE(all->WaitForCount(4));
  ASSERT_TRUE(two->WaitForCount(2));
  EXPECT_EQ(two->count(), 2u);
  EXPECT_TRUE(IsAccountStatus(two->events()[0], "account-2", 200));
  EXPECT_EQ(fails->count(), 1u);
  EXPECT_EQ(fails->events()[0].fail().kind(), telestra::v1::FAIL_KIND_UNAVAILABLE);
  // Seqs increase strictly.
  auto events = all->events();
  for (size_t i = 1; i < events.size(); ++i) EXPECT_GT(events[i].seq(), events[i - 1].seq());
}

TEST_F(GrpcServerTest, SubscribeRejectsUnknownAccountsAndKinds) {
  Start();
  telestra::v1::SubscribeRequest request;
  request.add_accounts("nobody");
  auto stream = Subscribe(request);
  auto end = stream->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(end->error_message(), "Unknown account: nobody");
  telestra::v1::SubscribeRequest kinds;
  kinds.add_kinds(static_cast<telestra::v1::EventKind>(3));
  auto bad = Subscribe(kinds);
  end = bad->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcServerTest, SnapshotComesFirstCarryingTheSeqItReflects) {
  Start();
  hub_->Broadcast(AccountStatusEvent("account-1", 200));  // seq 1
  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::LoginCommand login;
    login.set_account("account-2");
    login.set_user("3002");
    login.set_server("127.0.0.1");
    telestra::v1::LoginResponse response;
    ASSERT_TRUE(stub_->Login(&context, login, &response).ok());  // seq 2: status 100
  }
  telestra::v1::SubscribeRequest request;
  request.set_snapshot(true);
  auto stream = Subscribe(request);
  ASSERT_TRUE(stream->WaitForCount(2));
  auto events = stream->events();
  EXPECT_TRUE(events[0].has_status());
  EXPECT_EQ(events[0].status().account(), "account-1");
  EXPECT_EQ(events[1].status().account(), "account-2");
  EXPECT_EQ(events[1].status().account_status(), 100);
  EXPECT_EQ(events[0].seq(), 2u);
  EXPECT_EQ(events[1].seq(), 2u);
  hub_->Broadcast(AccountStatusEvent("account-2", 200));
  auto next = stream->WaitFor([](const Event& e) { return e.has_account_status(); });
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->seq(), 3u);
}

TEST_F(GrpcServerTest, ResumeAfterSeqReplaysMissedEventsOnceThenLive) {
  Start();
  std::string epoch;
  uint64_t last_seen = 0;
  {
    auto first = Subscribe({});
    epoch = first->Metadata("telestra-epoch");
    hub_->Broadcast(AccountStatusEvent("account-1", 100));
    auto seen = first->Next();
    ASSERT_TRUE(seen.has_value());
    last_seen = seen->seq();
  }  // disconnected
  for (int i = 0; i < 5; ++i) hub_->Broadcast(AccountStatusEvent("account-1", 200 + i));

  telestra::v1::SubscribeRequest resume;
  resume.set_after_seq(last_seen);
  resume.set_epoch(epoch);
  auto second = Subscribe(resume);
  EXPECT_EQ(second->Metadata("telestra-replay"), "complete");
  hub_->Broadcast(AccountStatusEvent("account-2", 200));
  ASSERT_TRUE(second->WaitForCount(6));
  auto events = second->events();
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq(), last_seen + 1 + i) << telestra::testing::Describe(events[i]);
  }
  EXPECT_TRUE(IsAccountStatus(events[5], "account-2", 200));
}

TEST_F(GrpcServerTest, ResumeBeyondTheHistoryReportsTheGapFirst) {
  ServerSetup setup;
  setup.history = 8;
  Start(setup);
  for (int i = 0; i < 20; ++i) hub_->Broadcast(AccountStatusEvent("account-1", i));
  telestra::v1::SubscribeRequest resume;
  resume.set_after_seq(2);
  auto stream = Subscribe(resume);
  EXPECT_EQ(stream->Metadata("telestra-replay"), "gap");
  ASSERT_TRUE(stream->WaitForCount(9));
  auto events = stream->events();
  EXPECT_EQ(events[0].seq(), 0u);
  EXPECT_EQ(events[0].fail().kind(), telestra::v1::FAIL_KIND_RESOURCE_EXHAUSTED);
  EXPECT_EQ(events[0].fail().error(),
            "Events lost: the history no longer holds every event after seq 2 (the replay "
            "starts at seq 13); take a new snapshot");
  EXPECT_EQ(events[1].seq(), 13u);
  EXPECT_EQ(events[8].seq(), 20u);
  EXPECT_EQ(server_->stats().gaps_reported, 1u);
}

TEST_F(GrpcServerTest, ResumeFromAnotherRunIsAGap) {
  Start();
  hub_->Broadcast(AccountStatusEvent("account-1", 100));
  telestra::v1::SubscribeRequest resume;
  resume.set_after_seq(1);
  resume.set_epoch("0123456789abcdef");  // an earlier run
  auto stream = Subscribe(resume);
  EXPECT_EQ(stream->Metadata("telestra-replay"), "gap");
  auto notice = stream->Next();
  ASSERT_TRUE(notice.has_value());
  EXPECT_TRUE(absl::StartsWith(notice->fail().error(), "Events lost: epoch 0123456789abcdef"));
  auto replayed = stream->Next();  // this run's whole history
  ASSERT_TRUE(replayed.has_value());
  EXPECT_EQ(replayed->seq(), 1u);
}

TEST_F(GrpcServerTest, StalledStreamEndsResourceExhaustedWithoutSlowingOthers) {
  ServerSetup setup;
  setup.max_queued_events = 32;
  Start(setup);
  ChannelOptions small;
  small.small_window = true;
  auto stalled_stub = telestra::v1::Telestra::NewStub(MakeChannel(server_->port(), small));
  auto stalled = EventStreamReader::Subscribe(stalled_stub.get(), {}, "", /*paused=*/true);
  auto fast = Subscribe({});

  // Published in bursts of 16 that the fast reader keeps up with (a burst
  // fits its queue of 32); the stalled one's queue fills and overflows.
  constexpr int kEvents = 3000;
  absl::Time start = absl::Now();
  for (int i = 0; i < kEvents; i += 16) {
    for (int j = i; j < i + 16 && j < kEvents; ++j) {
      hub_->Broadcast(AccountStatusEvent("account-1", j));
    }
    ASSERT_TRUE(fast->WaitForCount(std::min(i + 16, kEvents), absl::Seconds(5))) << i;
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_FALSE(fast->WaitForEnd(absl::Milliseconds(1)).has_value());

  GrpcStats stats = server_->stats();
  EXPECT_EQ(stats.slow_stream_drops, 1u);
  EXPECT_GT(stats.undelivered_events, 0u);
  // When the stalled client reads again it gets what was in flight, then the
  // reason.
  stalled->Resume();
  auto end = stalled->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StartsWith(end->error_message(), "Stream too slow")) << end->error_message();
  EXPECT_LT(stalled->count(), static_cast<size_t>(kEvents));
  // The fast stream is still live.
  hub_->Broadcast(AccountStatusEvent("account-2", 1));
  EXPECT_TRUE(fast->WaitForCount(kEvents + 1));
}

telestra::v1::Command GetStatusCommand(const std::string& account, const std::string& token) {
  telestra::v1::Command command;
  command.set_token(token);
  command.mutable_get_status()->set_account(account);
  return command;
}

TEST_F(GrpcServerTest, SessionRepliesGoToTheSenderWithItsTokenBroadcastsToAll) {
  Start();
  auto a = EventStreamReader::Session(stub_.get());
  auto b = EventStreamReader::Session(stub_.get());
  EXPECT_EQ(a->Metadata("telestra-epoch"), server_->epoch());
  ASSERT_TRUE(a->Send(GetStatusCommand("account-1", "req-1")));
  auto reply = a->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(reply->has_status());
  EXPECT_EQ(reply->token(), "req-1");

  // A failing command: a fail with the token, the kind and the account.
  ASSERT_TRUE(a->Send(GetStatusCommand("nobody", "req-2")));
  auto fail = a->Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->token(), "req-2");
  EXPECT_EQ(fail->fail().error(), "Unknown account: nobody");
  EXPECT_EQ(fail->fail().kind(), telestra::v1::FAIL_KIND_NOT_FOUND);
  ASSERT_TRUE(a->Send(GetStatusCommand("", "req-3")));
  fail = a->Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->fail().error(), "Missing field: account");
  EXPECT_EQ(fail->fail().kind(), telestra::v1::FAIL_KIND_INVALID_ARGUMENT);
  ASSERT_TRUE(a->Send(telestra::v1::Command()));
  fail = a->Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->fail().error(), "Missing field: cmd");

  // A make-call: call-return to the sender only.
  telestra::v1::Command make_call;
  make_call.set_token("call");
  make_call.mutable_make_call()->set_account("account-2");
  make_call.mutable_make_call()->set_num("3001");
  ASSERT_TRUE(a->Send(make_call));
  auto call_return = a->Next();
  ASSERT_TRUE(call_return.has_value());
  EXPECT_TRUE(call_return->has_call_return());
  EXPECT_EQ(call_return->token(), "call");

  // Logout from a: the account-status broadcast reaches b too.
  telestra::v1::Command logout;
  logout.mutable_logout()->set_account("account-1");
  ASSERT_TRUE(a->Send(logout));
  auto seen_by_b = b->Next();
  ASSERT_TRUE(seen_by_b.has_value());
  EXPECT_TRUE(IsAccountStatus(*seen_by_b, "account-1", 0)) << seen_by_b->ShortDebugString();
  EXPECT_TRUE(a->WaitFor([](const Event& e) { return e.has_account_status(); }).has_value());
}

TEST_F(GrpcServerTest, SendDtmfIsUnaryAndOnSessionsRepliesDtmfSentOrFailToTheSender) {
  Start();
  auto a = EventStreamReader::Session(stub_.get());
  auto b = EventStreamReader::Session(stub_.get());
  telestra::v1::Command make_call;
  make_call.mutable_make_call()->set_account("account-1");
  make_call.mutable_make_call()->set_num("3002");
  ASSERT_TRUE(a->Send(make_call));
  auto call_return = a->WaitFor([](const Event& e) { return e.has_call_return(); });
  ASSERT_TRUE(call_return.has_value());
  const int64_t id = call_return->call_return().call_id();

  telestra::v1::Command send;
  send.set_token("d1");
  send.mutable_send_dtmf()->set_account("account-1");
  send.mutable_send_dtmf()->set_call_id(id);
  send.mutable_send_dtmf()->set_digits("done");  // the fake backend: sent
  ASSERT_TRUE(a->Send(send));
  auto sent = a->WaitFor([](const Event& e) { return e.has_dtmf_sent(); });
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->token(), "d1");
  EXPECT_EQ(sent->dtmf_sent().call_id(), id);
  EXPECT_EQ(sent->dtmf_sent().digits(), "done");
  send.mutable_send_dtmf()->set_digits("12");  // the fake backend: refused after queuing
  ASSERT_TRUE(a->Send(send));
  auto fail = a->WaitFor([](const Event& e) { return e.has_fail(); });
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->fail().error(), "DTMF to call failed: 405 Not Allowed");
  EXPECT_EQ(fail->fail().kind(), telestra::v1::FAIL_KIND_UNAVAILABLE);
  send.mutable_send_dtmf()->set_digits("");
  ASSERT_TRUE(a->Send(send));
  fail = a->WaitFor([](const Event& e) { return e.has_fail(); });
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->fail().error(), "Missing field: digits");
  // b saw none of a's replies.
  EXPECT_FALSE(b->WaitFor([](const Event& e) { return e.has_dtmf_sent() || e.has_fail(); },
                          absl::Milliseconds(200))
                   .has_value());

  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::SendDtmfResponse response;
    grpc::Status status = stub_->SendDtmf(&context, send.send_dtmf(), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), "Missing field: digits");
  }
  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::SendDtmfCommand request = send.send_dtmf();
    request.set_digits("5");
    telestra::v1::SendDtmfResponse response;
    EXPECT_TRUE(stub_->SendDtmf(&context, request, &response).ok());
  }
  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::SendDtmfCommand request = send.send_dtmf();
    request.set_digits("5");
    request.set_call_id(id + 1000);
    telestra::v1::SendDtmfResponse response;
    EXPECT_EQ(stub_->SendDtmf(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(GrpcServerTest, TransferCallIsUnaryWithCanonicalCodes) {
  Start();
  auto session = EventStreamReader::Session(stub_.get());
  telestra::v1::Command make_call;
  make_call.mutable_make_call()->set_account("account-1");
  make_call.mutable_make_call()->set_num("3002");
  ASSERT_TRUE(session->Send(make_call));
  auto call_return = session->WaitFor([](const Event& e) { return e.has_call_return(); });
  ASSERT_TRUE(call_return.has_value());
  const int64_t id = call_return->call_return().call_id();
  auto transfer = [&](const telestra::v1::TransferCallCommand& request) {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::TransferCallResponse response;
    return stub_->TransferCall(&context, request, &response);
  };
  telestra::v1::TransferCallCommand request;
  request.set_account("account-1");
  request.set_call_id(id);
  request.set_num("3003");
  EXPECT_TRUE(transfer(request).ok());
  request.set_to_call_id(id);
  grpc::Status both = transfer(request);
  EXPECT_EQ(both.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(both.error_message(), "Give either num or to_call_id, not both");
  request.clear_num();
  request.set_to_call_id(-1);
  grpc::Status range = transfer(request);
  EXPECT_EQ(range.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(range.error_message(), "Field to_call_id is out of range");
  request.set_to_call_id(id + 1000);
  EXPECT_EQ(transfer(request).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcServerTest, SessionCanOptOutOfExtendedEvents) {
  Start();
  auto session = EventStreamReader::Session(stub_.get());
  telestra::v1::Command legacy;
  legacy.mutable_subscribe()->set_extended(false);
  ASSERT_TRUE(session->Send(legacy));
  // The subscribe has no reply; the get-status after it proves it was read.
  ASSERT_TRUE(session->Send(GetStatusCommand("account-1", "sync")));
  ASSERT_TRUE(session->Next().has_value());
  hub_->Broadcast(AccountStatusEvent("account-1", 200));  // extended only
  hub_->Broadcast(backend::CommandDispatcher::FailEvent(
      "account-1", absl::UnavailableError("Failed to log in to account: account-1"), ""));
  auto next = session->Next();
  ASSERT_TRUE(next.has_value());
  EXPECT_TRUE(next->has_fail()) << next->ShortDebugString();
}

// The events of issue 20 as the backend publishes them.
Event TransferProgressEvent(const std::string& account, int64_t call_id, int code) {
  Event event;
  auto* progress = event.mutable_transfer_progress();
  progress->set_account(account);
  progress->set_call_id(call_id);
  progress->set_code(code);
  return event;
}

Event CallStartedEvent(const std::string& account, int64_t call_id, const std::string& num,
                       int64_t transferred_from) {
  Event event;
  auto* started = event.mutable_call_started();
  started->set_account(account);
  started->set_call_id(call_id);
  started->set_num(num);
  started->set_transferred_from(transferred_from);
  return event;
}

Event CallProgressEvent(const std::string& account, int64_t call_id, int code, bool early_media) {
  Event event;
  auto* progress = event.mutable_call_progress();
  progress->set_account(account);
  progress->set_call_id(call_id);
  progress->set_code(code);
  progress->set_early_media(early_media);
  return event;
}

Event DtmfEvent(const std::string& account, int64_t call_id, const std::string& digit) {
  Event event;
  auto* dtmf = event.mutable_dtmf();
  dtmf->set_account(account);
  dtmf->set_call_id(call_id);
  dtmf->set_digit(digit);
  dtmf->set_duration_ms(100);
  dtmf->set_method("rfc4733");
  return event;
}

// `event` without what the hub stamps (seq, time), for comparisons.
std::string Unstamped(Event event) {
  event.clear_seq();
  event.clear_time();
  return event.ShortDebugString();
}

TEST_F(GrpcServerTest, SessionWithoutExtendedEventsStillGetsDtmfButNoTransferOrProgress) {
  Start();
  auto session = EventStreamReader::Session(stub_.get());
  telestra::v1::Command legacy;
  legacy.mutable_subscribe()->set_extended(false);
  ASSERT_TRUE(session->Send(legacy));
  ASSERT_TRUE(session->Send(GetStatusCommand("account-1", "sync")));
  ASSERT_TRUE(session->Next().has_value());
  hub_->Broadcast(CallProgressEvent("account-1", 1, 183, true));
  hub_->Broadcast(TransferProgressEvent("account-1", 1, 100));
  hub_->Broadcast(CallStartedEvent("account-1", 2, "3003", 1));
  hub_->Broadcast(DtmfEvent("account-1", 1, "5"));
  hub_->Broadcast(TransferProgressEvent("account-1", 1, 200));
  hub_->Broadcast(backend::CommandDispatcher::FailEvent(
      "account-1", absl::UnavailableError("Transfer of call 1 failed: 486 Busy Here"), ""));
  auto dtmf = session->Next();
  ASSERT_TRUE(dtmf.has_value());
  EXPECT_EQ(Unstamped(*dtmf), Unstamped(DtmfEvent("account-1", 1, "5")));
  auto fail = session->Next();  // nothing extended in between
  ASSERT_TRUE(fail.has_value());
  EXPECT_TRUE(fail->has_fail()) << fail->ShortDebugString();

  // Extended again: the same events come.
  telestra::v1::Command extended;
  extended.mutable_subscribe()->set_extended(true);
  ASSERT_TRUE(session->Send(extended));
  ASSERT_TRUE(session->Send(GetStatusCommand("account-1", "sync-2")));
  ASSERT_TRUE(session->WaitFor([](const Event& e) { return e.has_status(); }).has_value());
  hub_->Broadcast(TransferProgressEvent("account-1", 1, 180));
  auto progress = session->Next();
  ASSERT_TRUE(progress.has_value());
  EXPECT_TRUE(progress->has_transfer_progress()) << progress->ShortDebugString();
}

TEST_F(GrpcServerTest, TransferProgressCallStartedCallProgressAndDtmfReachSessionsAndSubscribers) {
  Start();
  auto session = EventStreamReader::Session(stub_.get());  // extended by default
  auto all = Subscribe({});
  telestra::v1::SubscribeRequest only_started;
  only_started.add_kinds(telestra::v1::EVENT_KIND_CALL_STARTED);
  auto started = Subscribe(only_started);
  telestra::v1::SubscribeRequest only_two;
  only_two.add_accounts("account-2");
  auto two = Subscribe(only_two);
  const std::vector<Event> published = {
      TransferProgressEvent("account-1", 1, 100),
      CallStartedEvent("account-2", 7, "sip:x@other.example", 3),
      CallProgressEvent("account-2", 7, 183, true),
      CallProgressEvent("account-2", 7, 180, false),
      DtmfEvent("account-1", 1, "#"),
      TransferProgressEvent("account-1", 1, 200),
  };
  for (const Event& event : published) hub_->Broadcast(event);
  for (EventStreamReader* reader : {session.get(), all.get()}) {
    ASSERT_TRUE(reader->WaitForCount(published.size()));
    std::vector<Event> got = reader->events();
    ASSERT_EQ(got.size(), published.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(Unstamped(got[i]), Unstamped(published[i]));
      if (i > 0) {
        EXPECT_GT(got[i].seq(), got[i - 1].seq());
      }
    }
  }
  ASSERT_TRUE(two->WaitForCount(3));
  ASSERT_TRUE(started->WaitForCount(1));
  hub_->Broadcast(CallStartedEvent("account-1", 8, "3004", 1));  // after the rest
  ASSERT_TRUE(started->WaitForCount(2));
  EXPECT_EQ(Unstamped(started->events()[0]), Unstamped(published[1]));
  EXPECT_EQ(started->events()[1].call_started().num(), "3004");
  std::vector<Event> of_two = two->events();
  ASSERT_EQ(of_two.size(), 3u);
  EXPECT_TRUE(of_two[0].has_call_started());
  EXPECT_TRUE(of_two[1].has_call_progress());
  EXPECT_TRUE(of_two[2].has_call_progress());
}

TEST_F(GrpcServerTest, SessionEndsOkAfterTheClientClosesItsSide) {
  Start();
  auto session = EventStreamReader::Session(stub_.get());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(session->Send(GetStatusCommand("account-1", absl::StrCat("t", i))));
  }
  session->SendDone();
  auto end = session->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_TRUE(end->ok()) << end->error_message();
  ASSERT_EQ(session->count(), 20u);  // every reply first
  EXPECT_EQ(session->events()[19].token(), "t19");
}

TEST_F(GrpcServerTest, WrongOrMissingTokenIsUnauthenticatedEverywhere) {
  ServerSetup setup;
  setup.token = "s3cret";
  Start(setup);
  telestra::v1::Status status;
  grpc::Status missing = GetStatus("account-1", &status);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(absl::StartsWith(missing.error_message(), "Missing bearer token"));
  EXPECT_EQ(GetStatus("account-1", &status, "guess").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(GetStatus("account-1", &status, "s3cret").ok());

  auto subscribe = EventStreamReader::Subscribe(stub_.get(), {}, "guess");
  auto end = subscribe->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto session = EventStreamReader::Session(stub_.get());
  end = session->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto good = EventStreamReader::Subscribe(stub_.get(), {}, "s3cret");
  EXPECT_EQ(good->Metadata("telestra-replay"), "none");
  EXPECT_EQ(server_->stats().unauthenticated, 4u);
}

TEST_F(GrpcServerTest, TlsServesTlsClientsOnly) {
  auto cert = telestra::testing::MakeSelfSignedCertificate(telestra::testing::TestTempDir());
  ASSERT_TRUE(cert.ok()) << cert.status();
  ServerSetup setup;
  setup.cert_file = cert->cert_path;
  setup.key_file = cert->key_path;
  Start(setup);
  ChannelOptions tls;
  tls.root_cert_pem = cert->cert_pem;
  auto tls_stub = telestra::v1::Telestra::NewStub(MakeChannel(server_->port(), tls));
  grpc::ClientContext context;
  Prepare(context);
  telestra::v1::GetStatusCommand request;
  request.set_account("account-1");
  telestra::v1::Status status;
  grpc::Status result = tls_stub->GetStatus(&context, request, &status);
  EXPECT_TRUE(result.ok()) << result.error_message();
  // A plaintext client cannot talk to it.
  telestra::v1::Status ignored;
  grpc::ClientContext plain;
  Prepare(plain, "", absl::Seconds(2));
  EXPECT_EQ(stub_->GetStatus(&plain, request, &ignored).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GrpcServerTest, UnreadableCertificateFailsStart) {
  hub_ = std::make_unique<backend::EventHub>();
  backend_ = std::make_unique<FakeBackend>(hub_.get());
  dispatcher_ = std::make_unique<backend::CommandDispatcher>(backend_.get(), hub_.get());
  GrpcServer::Options options;
  options.port = 0;
  options.cert_file = "/nonexistent/cert.pem";
  options.key_file = "/nonexistent/key.pem";
  GrpcServer server(options, backend_.get(), hub_.get(), dispatcher_.get());
  absl::Status status = server.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "/nonexistent/cert.pem"));
}

TEST_F(GrpcServerTest, PortInUseFailsStart) {
  Start();
  GrpcServer::Options options;
  options.port = server_->port();
  GrpcServer second(options, backend_.get(), hub_.get(), dispatcher_.get());
  EXPECT_EQ(second.Start().code(), absl::StatusCode::kUnavailable);
}

TEST_F(GrpcServerTest, HealthAndReflectionServeGenericTools) {
  Start();
  // grpc.health.v1.HealthCheckRequest{service: "telestra.v1.Telestra"}.
  std::string name = "telestra.v1.Telestra";
  std::string request = std::string("\x0a", 1) + static_cast<char>(name.size()) + name;
  auto health = telestra::testing::CallRaw(channel_, "/grpc.health.v1.Health/Check", request);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, std::string("\x08\x01", 2));  // status: SERVING
  auto overall = telestra::testing::CallRaw(channel_, "/grpc.health.v1.Health/Check", "");
  ASSERT_TRUE(overall.ok()) << overall.status();
  EXPECT_EQ(*overall, std::string("\x08\x01", 2));
  // grpc.reflection.v1alpha.ServerReflectionRequest{list_services: ""}.
  auto services = telestra::testing::CallRaw(
      channel_, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      std::string("\x3a\x00", 2));
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_TRUE(absl::StrContains(*services, "telestra.v1.Telestra"));
  EXPECT_TRUE(absl::StrContains(*services, "grpc.health.v1.Health"));
}

TEST_F(GrpcServerTest, StopEndsStreamsWithUnavailableAfterTheirQueuedEvents) {
  Start();
  auto subscriber = Subscribe({});
  auto session = EventStreamReader::Session(stub_.get());
  hub_->Broadcast(AccountStatusEvent("account-1", 200));
  ASSERT_TRUE(subscriber->WaitForCount(1));
  server_->Stop();
  for (auto* stream : {subscriber.get(), session.get()}) {
    auto end = stream->WaitForEnd();
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(end->error_message(), "Gateway shutting down");
  }
  EXPECT_EQ(session->count(), 1u);
  EXPECT_EQ(server_->stats().streams, 0u);
}

// ---------------------------------------------------------------------------
// The same front end over the real GatewayBackend and CommandDispatcher,
// with a SIP stack that only records what it is asked: the checks and texts
// of send_dtmf and transfer_call are the backend's, the same on every front
// end, and this is where gRPC clients meet them.

// Records the backend's requests ("dtmf 1 12AB 100", "transfer 1 3003 -1");
// takes every number and call.
// Thread: any.
class RecordingSipStack : public backend::SipStack {
 public:
  absl::Status Start(backend::SipStackListener*) override { return absl::OkStatus(); }
  void Register(const backend::AccountConfig& account, uint64_t generation) override {
    absl::MutexLock lock(&mu_);
    generations_[account.name] = generation;
  }
  void Unregister(const std::string&, uint64_t) override {}
  absl::Status CheckNumber(const backend::AccountConfig&, const std::string&) const override {
    return absl::OkStatus();
  }
  bool MakeCall(int64_t, const backend::AccountConfig&, const std::string&) override {
    return true;
  }
  void AnswerCall(int64_t) override {}
  void HangupCall(int64_t) override {}
  void HoldCall(int64_t, bool) override {}
  void SendDtmf(int64_t call_id, uint64_t request, const std::string& digits,
                int duration_ms) override {
    absl::MutexLock lock(&mu_);
    last_dtmf_request_ = request;
    requests_.push_back(absl::StrCat("dtmf ", call_id, " ", digits, " ", duration_ms));
  }
  void AttachAudio(int64_t, std::shared_ptr<backend::CallAudioTap>) override {}
  void TransferCall(int64_t call_id, const std::string& number, int64_t to_call_id) override {
    absl::MutexLock lock(&mu_);
    requests_.push_back(absl::StrCat("transfer ", call_id, " ", number, " ", to_call_id));
  }
  void Shutdown(absl::Duration) override {}
  int port() const override { return 5060; }

  uint64_t generation(const std::string& account) const {
    absl::MutexLock lock(&mu_);
    return generations_.at(account);
  }
  uint64_t last_dtmf_request() const {
    absl::MutexLock lock(&mu_);
    return last_dtmf_request_;
  }
  std::vector<std::string> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  mutable absl::Mutex mu_;  // Lock order: a leaf.
  std::map<std::string, uint64_t> generations_ ABSL_GUARDED_BY(mu_);
  uint64_t last_dtmf_request_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

class GrpcOverGatewayBackendTest : public ::testing::Test {
 protected:
  // account-1 registered with two established calls, call_1_ and call_2_.
  void SetUp() override {
    backend::AccountConfig account;
    account.name = "account-1";
    account.user = "3001";
    account.password = "sip3001";
    account.server = "127.0.0.1:5060";
    backend_ = std::make_unique<backend::GatewayBackend>(
        std::vector<backend::AccountConfig>{account}, &stack_, &hub_);
    backend_->Start();
    backend_->OnRegistration("account-1", stack_.generation("account-1"), 200, "OK", false);
    dispatcher_ = std::make_unique<backend::CommandDispatcher>(backend_.get(), &hub_);
    GrpcServer::Options options;
    options.port = 0;
    server_ = std::make_unique<GrpcServer>(options, backend_.get(), &hub_, dispatcher_.get());
    ASSERT_TRUE(server_->Start().ok());
    stub_ = telestra::v1::Telestra::NewStub(MakeChannel(server_->port()));
    call_1_ = EstablishedCall("3002");
    call_2_ = EstablishedCall("3003");
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  int64_t EstablishedCall(const std::string& num) {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::MakeCallCommand request;
    request.set_account("account-1");
    request.set_num(num);
    telestra::v1::CallReturn call;
    EXPECT_TRUE(stub_->MakeCall(&context, request, &call).ok());
    backend_->OnCallEstablished(call.call_id());
    return call.call_id();
  }
  grpc::Status SendDtmf(const std::string& digits, int duration_ms) {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::SendDtmfCommand request;
    request.set_account("account-1");
    request.set_call_id(call_1_);
    request.set_digits(digits);
    request.set_duration_ms(duration_ms);
    telestra::v1::SendDtmfResponse response;
    return stub_->SendDtmf(&context, request, &response);
  }
  grpc::Status TransferCall(const telestra::v1::TransferCallCommand& request) {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::TransferCallResponse response;
    return stub_->TransferCall(&context, request, &response);
  }

  backend::EventHub hub_;
  RecordingSipStack stack_;
  std::unique_ptr<backend::GatewayBackend> backend_;
  std::unique_ptr<backend::CommandDispatcher> dispatcher_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<telestra::v1::Telestra::Stub> stub_;
  int64_t call_1_ = -1;
  int64_t call_2_ = -1;
};

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " ", status.error_message());
}

TEST_F(GrpcOverGatewayBackendTest, SendDtmfRefusesBadDigitsAndDurationsAsInvalidArgument) {
  const int invalid = grpc::StatusCode::INVALID_ARGUMENT;
  EXPECT_EQ(Describe(SendDtmf("12E", 0)), absl::StrCat(invalid, " Invalid DTMF digit: 'E'"));
  EXPECT_EQ(Describe(SendDtmf("1 2", 0)), absl::StrCat(invalid, " Invalid DTMF digit: ' '"));
  EXPECT_EQ(Describe(SendDtmf(std::string(65, '1'), 0)),
            absl::StrCat(invalid, " Too many DTMF digits: 65 (at most 64)"));
  EXPECT_EQ(Describe(SendDtmf("1", 39)),
            absl::StrCat(invalid, " Field duration_ms out of range: 39 (40..2000)"));
  EXPECT_EQ(Describe(SendDtmf("1", 2001)),
            absl::StrCat(invalid, " Field duration_ms out of range: 2001 (40..2000)"));
  EXPECT_EQ(Describe(SendDtmf("1", -100)),
            absl::StrCat(invalid, " Field duration_ms out of range: -100 (40..2000)"));
  EXPECT_TRUE(stack_.requests().empty()) << "a refused request reached the SIP stack";
  // The edges are taken; 0 is the default 100 ms; a-d are A-D.
  EXPECT_TRUE(SendDtmf(std::string(64, '1'), 40).ok());
  EXPECT_TRUE(SendDtmf("*#ab", 2000).ok());
  EXPECT_TRUE(SendDtmf("0", 0).ok());
  EXPECT_EQ(stack_.requests(), (std::vector<std::string>{
                                   absl::StrCat("dtmf ", call_1_, " ", std::string(64, '1'), " 40"),
                                   absl::StrCat("dtmf ", call_1_, " *#AB 2000"),
                                   absl::StrCat("dtmf ", call_1_, " 0 100")}));
}

TEST_F(GrpcOverGatewayBackendTest, TransferCallRefusesBothNumAndToCallIdAndOtherBadRequests) {
  telestra::v1::TransferCallCommand request;
  request.set_account("account-1");
  request.set_call_id(call_1_);
  request.set_num("3004");
  request.set_to_call_id(call_2_);
  const int invalid = grpc::StatusCode::INVALID_ARGUMENT;
  EXPECT_EQ(Describe(TransferCall(request)),
            absl::StrCat(invalid, " Give either num or to_call_id, not both"));
  request.clear_num();
  request.clear_to_call_id();
  EXPECT_EQ(Describe(TransferCall(request)), absl::StrCat(invalid, " Missing field: num"));
  request.set_to_call_id(call_1_);
  EXPECT_EQ(Describe(TransferCall(request)),
            absl::StrCat(invalid, " A call cannot be transferred to itself"));
  request.set_to_call_id(99);
  EXPECT_EQ(TransferCall(request).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(stack_.requests().empty()) << "a refused request reached the SIP stack";
  request.set_to_call_id(call_2_);
  EXPECT_TRUE(TransferCall(request).ok());
  EXPECT_EQ(stack_.requests(),
            (std::vector<std::string>{absl::StrCat("transfer ", call_1_, "  ", call_2_)}));
  // One transfer per call at a time.
  grpc::Status again = TransferCall(request);
  EXPECT_EQ(Describe(again), absl::StrCat(grpc::StatusCode::FAILED_PRECONDITION, " Call ", call_1_,
                                          " is already being transferred"));
}

TEST_F(GrpcOverGatewayBackendTest, SessionSendDtmfRepliesDtmfSentOrFailWithItsToken) {
  auto session = EventStreamReader::Session(stub_.get());
  auto other = EventStreamReader::Session(stub_.get());
  telestra::v1::Command send;
  send.set_token("d1");
  send.mutable_send_dtmf()->set_account("account-1");
  send.mutable_send_dtmf()->set_call_id(call_1_);
  send.mutable_send_dtmf()->set_digits("12ab");
  ASSERT_TRUE(session->Send(send));
  send.set_token("d2");
  send.mutable_send_dtmf()->set_digits("1x");
  ASSERT_TRUE(session->Send(send));
  auto refused = session->WaitFor([](const Event& e) { return e.has_fail(); });
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->token(), "d2");
  EXPECT_EQ(refused->fail().error(), "Invalid DTMF digit: 'x'");
  EXPECT_EQ(refused->fail().kind(), telestra::v1::FAIL_KIND_INVALID_ARGUMENT);
  EXPECT_EQ(refused->fail().account(), "account-1");
  send.set_token("d3");
  send.mutable_send_dtmf()->set_digits("9");
  send.mutable_send_dtmf()->set_duration_ms(3000);
  ASSERT_TRUE(session->Send(send));
  refused = session->WaitFor([](const Event& e) { return e.has_fail(); });
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->token(), "d3");
  EXPECT_EQ(refused->fail().error(), "Field duration_ms out of range: 3000 (40..2000)");
  ASSERT_EQ(stack_.requests(),
            (std::vector<std::string>{absl::StrCat("dtmf ", call_1_, " 12AB 100")}));

  // The SIP stack reports the digits out: DtmfSent to the sender only.
  backend_->OnDtmfSent(call_1_, stack_.last_dtmf_request(), 200, "OK");
  auto sent = session->WaitFor([](const Event& e) { return e.has_dtmf_sent(); });
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->token(), "d1");
  EXPECT_EQ(sent->dtmf_sent().account(), "account-1");
  EXPECT_EQ(sent->dtmf_sent().call_id(), call_1_);
  EXPECT_EQ(sent->dtmf_sent().digits(), "12AB");
  // The far end's digits are broadcasts: both sessions get Dtmf.
  backend_->OnDtmfReceived(call_1_, '5', 120, backend::DtmfMethod::kInfo);
  for (EventStreamReader* reader : {session.get(), other.get()}) {
    auto dtmf = reader->WaitFor([](const Event& e) { return e.has_dtmf(); });
    ASSERT_TRUE(dtmf.has_value());
    EXPECT_EQ(Unstamped(*dtmf), Unstamped([&] {
                Event want = DtmfEvent("account-1", call_1_, "5");
                want.mutable_dtmf()->set_duration_ms(120);
                want.mutable_dtmf()->set_method("info");
                return want;
              }()));
  }
  std::vector<Event> seen = other->events();
  for (const Event& e : seen) {
    EXPECT_FALSE(e.has_dtmf_sent() || e.has_fail())
        << "another session's reply: " << e.ShortDebugString();
  }
}

TEST_F(GrpcOverGatewayBackendTest, SessionTransferCallProgressFailureAndTransferredCalls) {
  auto session = EventStreamReader::Session(stub_.get());
  auto subscriber = EventStreamReader::Subscribe(stub_.get(), {});
  telestra::v1::Command transfer;
  transfer.set_token("t1");
  transfer.mutable_transfer_call()->set_account("account-1");
  transfer.mutable_transfer_call()->set_call_id(call_1_);
  transfer.mutable_transfer_call()->set_num("3004");
  transfer.mutable_transfer_call()->set_to_call_id(call_2_);
  ASSERT_TRUE(session->Send(transfer));  // both: refused, to the sender
  auto refused = session->WaitFor([](const Event& e) { return e.has_fail(); });
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->token(), "t1");
  EXPECT_EQ(refused->fail().error(), "Give either num or to_call_id, not both");
  EXPECT_EQ(refused->fail().kind(), telestra::v1::FAIL_KIND_INVALID_ARGUMENT);

  transfer.set_token("t2");
  transfer.mutable_transfer_call()->clear_to_call_id();
  ASSERT_TRUE(session->Send(transfer));  // accepted: no reply of its own
  ASSERT_TRUE(session->Send(GetStatusCommand("account-1", "sync")));
  auto next = session->Next();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->token(), "sync") << next->ShortDebugString();
  EXPECT_EQ(stack_.requests(),
            (std::vector<std::string>{absl::StrCat("transfer ", call_1_, " 3004 -1")}));

  // What the SIP stack reports reaches the session and the subscriber.
  backend_->OnTransferProgress(call_1_, 180);
  backend_->OnTransferFailed(call_1_, 486, "Busy Here");
  const int64_t started = backend_->OnTransferRequested(call_2_, "sip:x@other.example");
  ASSERT_GE(started, 0);
  backend_->OnCallProgress(started, 183, true);
  for (EventStreamReader* reader : {session.get(), subscriber.get()}) {
    auto progress = reader->WaitFor([](const Event& e) { return e.has_transfer_progress(); });
    ASSERT_TRUE(progress.has_value());
    EXPECT_EQ(Unstamped(*progress), Unstamped(TransferProgressEvent("account-1", call_1_, 180)));
    auto failed = reader->WaitFor([](const Event& e) { return e.has_fail(); });
    ASSERT_TRUE(failed.has_value());
    EXPECT_EQ(failed->fail().error(),
              absl::StrCat("Transfer of call ", call_1_, " failed: 486 Busy Here"));
    EXPECT_EQ(failed->token(), "") << "a broadcast";
    auto call_started = reader->WaitFor([](const Event& e) { return e.has_call_started(); });
    ASSERT_TRUE(call_started.has_value());
    EXPECT_EQ(Unstamped(*call_started),
              Unstamped(CallStartedEvent("account-1", started, "sip:x@other.example", call_2_)));
    auto call_progress = reader->WaitFor([](const Event& e) { return e.has_call_progress(); });
    ASSERT_TRUE(call_progress.has_value());
    EXPECT_EQ(Unstamped(*call_progress),
              Unstamped(CallProgressEvent("account-1", started, 183, true)));
  }
  // The failed transfer left the call up: it can be transferred again.
  transfer.set_token("t3");
  ASSERT_TRUE(session->Send(transfer));
  ASSERT_TRUE(session->Send(GetStatusCommand("account-1", "sync-2")));
  next = session->WaitFor([](const Event& e) { return e.has_status() || e.has_fail(); });
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->token(), "sync-2") << next->ShortDebugString();
  EXPECT_EQ(stack_.requests().size(), 2u);
}

}  // namespace
}  // namespace telestra::gateway
