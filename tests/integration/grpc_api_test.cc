// The gRPC API of the real gateway binary against a real Kamailio registrar,
// with the generated C++ stubs: every RPC, every error code, Subscribe's
// filters, snapshot and resume, Session, and a stalled stream beside a live
// one.
#include <memory>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/gateway/grpc/grpc_test_client.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/grpc_gateway.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"

namespace telestra::testing {
namespace {

using telestra::v1::Event;
using telestra::v1::Telestra;

class GrpcApiTest : public GatewayTest {
 protected:
  std::string FailureDetails() override {
    return grpc_.process ? "gateway log:\n" + grpc_.process->ReadLog() : "";
  }

  void StartGrpcGateway(const GatewayOptions& options) {
    auto gateway = GrpcGateway::Start(options);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    grpc_ = *std::move(gateway);
    stub_ = grpc_.stub.get();
  }

  // Unary helpers: the call's status (the response, where there is one, in *out).
  grpc::Status GetStatus(const std::string& account, telestra::v1::Status* out = nullptr) {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::GetStatusCommand request;
    request.set_account(account);
    telestra::v1::Status ignored;
    return stub_->GetStatus(&context, request, out != nullptr ? out : &ignored);
  }
  grpc::Status Login(const std::string& account, const std::string& user, const std::string& pass) {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::LoginCommand request;
    request.set_account(account);
    request.set_user(user);
    request.set_pass(pass);
    request.set_server(kamailio().server());
    telestra::v1::LoginResponse response;
    return stub_->Login(&context, request, &response);
  }
  grpc::Status Logout(const std::string& account) {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::LogoutCommand request;
    request.set_account(account);
    telestra::v1::LogoutResponse response;
    return stub_->Logout(&context, request, &response);
  }
  grpc::Status MakeCall(const std::string& account, const std::string& num,
                        int64_t* call_id = nullptr) {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::MakeCallCommand request;
    request.set_account(account);
    request.set_num(num);
    telestra::v1::CallReturn response;
    grpc::Status status = stub_->MakeCall(&context, request, &response);
    if (call_id != nullptr) *call_id = response.call_id();
    return status;
  }
  template <typename Request, typename Response>
  grpc::Status CallOp(grpc::Status (Telestra::Stub::*rpc)(grpc::ClientContext*, const Request&,
                                                          Response*),
                      const std::string& account, int64_t call_id) {
    grpc::ClientContext context;
    Prepare(context);
    Request request;
    request.set_account(account);
    request.set_call_id(call_id);
    Response response;
    return (stub_->*rpc)(&context, request, &response);
  }
  grpc::Status Answer(const std::string& account, int64_t id) {
    return CallOp(&Telestra::Stub::AnswerCall, account, id);
  }
  grpc::Status Switch(const std::string& account, int64_t id) {
    return CallOp(&Telestra::Stub::SwitchCall, account, id);
  }
  grpc::Status Hangup(const std::string& account, int64_t id) {
    return CallOp(&Telestra::Stub::HangupCall, account, id);
  }

  std::unique_ptr<EventStreamReader> Subscribe(const telestra::v1::SubscribeRequest& request) {
    return EventStreamReader::Subscribe(stub_, request);
  }

  GrpcGateway grpc_;
  Telestra::Stub* stub_ = nullptr;
};

EventStreamReader::Match AccountStatusIs(const std::string& account, int status) {
  return [=](const Event& e) {
    return e.has_account_status() && e.account_status().account() == account &&
           e.account_status().account_status() == status;
  };
}

// An event of `kind` for call `id` of `account` (any id when id < 0).
EventStreamReader::Match CallEvent(Event::KindCase kind, const std::string& account,
                                   int64_t id = -1) {
  return [=](const Event& e) {
    if (e.kind_case() != kind) return false;
    std::string of;
    int64_t call_id = -1;
    switch (kind) {
      case Event::kCallIncoming:
        of = e.call_incoming().account();
        call_id = e.call_incoming().call_id();
        break;
      case Event::kCallAnswered:
        of = e.call_answered().account();
        call_id = e.call_answered().call_id();
        break;
      case Event::kCallEnded:
        of = e.call_ended().account();
        call_id = e.call_ended().call_id();
        break;
      case Event::kCallHeld:
        of = e.call_held().account();
        call_id = e.call_held().call_id();
        break;
      case Event::kCallResumed:
        of = e.call_resumed().account();
        call_id = e.call_resumed().call_id();
        break;
      default:
        return false;
    }
    return of == account && (id < 0 || call_id == id);
  };
}

#define EXPECT_CODE(call, code) EXPECT_EQ((call).error_code(), grpc::StatusCode::code)

TEST_F(GrpcApiTest, LoginLogoutStatusAndListAgainstKamailio) {
  StartGrpcGateway({{Account("account-1", 3001), Account("account-2", 3002, false)}});
  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::ListAccountsResponse list;
    ASSERT_TRUE(stub_->ListAccounts(&context, {}, &list).ok());
    ASSERT_EQ(list.accounts_size(), 2);
    EXPECT_EQ(list.accounts(0).account(), "account-1");
    EXPECT_EQ(list.accounts(1).account(), "account-2");
    EXPECT_EQ(list.accounts(1).account_status(), 0);
  }
  EXPECT_EQ(WaitForAccountStatus(stub_, "account-1", 200), 200);

  telestra::v1::SubscribeRequest request;
  request.add_accounts("account-2");
  request.add_kinds(telestra::v1::EVENT_KIND_ACCOUNT_STATUS);
  auto watcher = Subscribe(request);

  ASSERT_TRUE(Login("account-2", "3002", "sip3002").ok());
  EXPECT_TRUE(watcher->WaitFor(AccountStatusIs("account-2", 100)).has_value());
  EXPECT_TRUE(watcher->WaitFor(AccountStatusIs("account-2", 200)).has_value());
  EXPECT_EQ(WaitForContacts(kamailio(), "3002", 1), 1);
  telestra::v1::Status status;
  ASSERT_TRUE(GetStatus("account-2", &status).ok());
  EXPECT_EQ(status.account_status(), 200);
  EXPECT_EQ(status.account(), "account-2");

  ASSERT_TRUE(Logout("account-2").ok());
  ASSERT_TRUE(GetStatus("account-2", &status).ok());
  EXPECT_EQ(status.account_status(), 0);  // at once
  EXPECT_TRUE(watcher->WaitFor(AccountStatusIs("account-2", 0)).has_value());
  EXPECT_EQ(WaitForContacts(kamailio(), "3002", 0), 0);
  // Nothing of account-1 reached the filtered stream.
  for (const Event& event : watcher->events()) {
    EXPECT_EQ(event.account_status().account(), "account-2") << Describe(event);
  }
}

TEST_F(GrpcApiTest, EveryRpcMapsErrorsToCanonicalCodes) {
  StartGrpcGateway({{Account("account-1", 3001), Account("account-2", 3002, false)}});
  ASSERT_EQ(WaitForAccountStatus(stub_, "account-1", 200), 200);

  grpc::Status unknown = GetStatus("nobody");
  EXPECT_CODE(unknown, NOT_FOUND);
  EXPECT_EQ(unknown.error_message(), "Unknown account: nobody");
  grpc::Status missing = GetStatus("");
  EXPECT_CODE(missing, INVALID_ARGUMENT);
  EXPECT_EQ(missing.error_message(), "Missing field: account");

  EXPECT_CODE(Login("nobody", "3002", "sip3002"), NOT_FOUND);
  grpc::Status no_user = Login("account-2", "", "sip3002");
  EXPECT_CODE(no_user, INVALID_ARGUMENT);
  EXPECT_EQ(no_user.error_message(), "Field user must not be empty");
  EXPECT_CODE(Login("", "3002", "sip3002"), INVALID_ARGUMENT);
  EXPECT_CODE(Logout("nobody"), NOT_FOUND);
  EXPECT_CODE(Logout(""), INVALID_ARGUMENT);

  EXPECT_CODE(MakeCall("nobody", "3002"), NOT_FOUND);
  grpc::Status no_number = MakeCall("account-1", "");
  EXPECT_CODE(no_number, INVALID_ARGUMENT);
  EXPECT_EQ(no_number.error_message(), "Missing field: num");
  EXPECT_CODE(Answer("nobody", 1), NOT_FOUND);
  EXPECT_CODE(Switch("nobody", 1), NOT_FOUND);
  EXPECT_CODE(Hangup("nobody", 1), NOT_FOUND);
  EXPECT_CODE(Answer("account-1", -1), INVALID_ARGUMENT);
  EXPECT_CODE(Switch("", 1), INVALID_ARGUMENT);
  grpc::Status out_of_range = Hangup("account-1", int64_t{1} << 60);
  EXPECT_CODE(out_of_range, INVALID_ARGUMENT);
  EXPECT_EQ(out_of_range.error_message(), "Field call_id is out of range");

  // Call errors that need calls: NOT_FOUND for an unknown call id and
  // FAILED_PRECONDITION for an account that is not registered (or
  // UNIMPLEMENTED while calls are not supported).
  grpc::Status unknown_call = Hangup("account-1", 12345);
  EXPECT_TRUE(unknown_call.error_code() == grpc::StatusCode::NOT_FOUND ||
              unknown_call.error_code() == grpc::StatusCode::UNIMPLEMENTED)
      << unknown_call.error_code() << " " << unknown_call.error_message();
  grpc::Status logged_out = MakeCall("account-2", "3001");
  EXPECT_TRUE(logged_out.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
              logged_out.error_code() == grpc::StatusCode::UNIMPLEMENTED)
      << logged_out.error_code() << " " << logged_out.error_message();
}

TEST_F(GrpcApiTest, WrongPasswordReachesSubscribersAsFailAndStatus) {
  StartGrpcGateway({{Account("account-3", 3003, false)}});
  telestra::v1::SubscribeRequest request;
  request.add_kinds(telestra::v1::EVENT_KIND_FAIL);
  auto fails = Subscribe(request);
  auto everything = Subscribe({});
  ASSERT_TRUE(Login("account-3", "3003", "wrong-secret").ok());  // the outcome comes later
  auto fail = fails->Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->fail().account(), "account-3");
  EXPECT_EQ(fail->fail().error(), "Failed to log in to account: account-3");
  EXPECT_EQ(fail->fail().kind(), telestra::v1::FAIL_KIND_UNAVAILABLE);
  auto rejected = everything->WaitFor([](const Event& e) {
    return e.has_account_status() && e.account_status().account_status() >= 400;
  });
  ASSERT_TRUE(rejected.has_value());
  int code = rejected->account_status().account_status();
  EXPECT_TRUE(code == 401 || code == 403) << code;
  EXPECT_FALSE(absl::StrContains(grpc_.process->ReadLog(), "wrong-secret"));
}

TEST_F(GrpcApiTest, SnapshotReflectsStateUpToItsSeqThenLiveEventsFollow) {
  StartGrpcGateway({{Account("account-1", 3001), Account("account-2", 3002, false)}});
  ASSERT_EQ(WaitForAccountStatus(stub_, "account-1", 200), 200);
  telestra::v1::SubscribeRequest request;
  request.set_snapshot(true);
  request.add_accounts("account-1");
  auto stream = Subscribe(request);
  auto snapshot = stream->Next();
  ASSERT_TRUE(snapshot.has_value());
  ASSERT_TRUE(snapshot->has_status()) << Describe(*snapshot);
  EXPECT_EQ(snapshot->status().account(), "account-1");
  EXPECT_EQ(snapshot->status().account_status(), 200);
  EXPECT_GT(snapshot->seq(), 0u);
  ASSERT_TRUE(Logout("account-2").ok());  // no change: no event
  ASSERT_TRUE(Logout("account-1").ok());
  auto change = stream->Next();
  ASSERT_TRUE(change.has_value());
  EXPECT_TRUE(AccountStatusIs("account-1", 0)(*change)) << Describe(*change);
  EXPECT_GT(change->seq(), snapshot->seq());
}

TEST_F(GrpcApiTest, ResumeAfterReconnectReplaysTheMissedEventsOnce) {
  StartGrpcGateway({{Account("account-1", 3001), Account("account-2", 3002, false)}});
  ASSERT_EQ(WaitForAccountStatus(stub_, "account-1", 200), 200);
  std::string epoch;
  uint64_t last_seq = 0;
  {
    telestra::v1::SubscribeRequest request;
    request.set_snapshot(true);
    auto first = Subscribe(request);
    epoch = first->Metadata("telestra-epoch");
    ASSERT_EQ(epoch.size(), 16u);
    ASSERT_TRUE(first->WaitForCount(2));
    last_seq = first->events().back().seq();
  }  // the client goes away
  ASSERT_TRUE(Logout("account-1").ok());
  ASSERT_TRUE(Login("account-2", "3002", "sip3002").ok());
  ASSERT_EQ(WaitForAccountStatus(stub_, "account-2", 200), 200);

  telestra::v1::SubscribeRequest resume;
  resume.set_after_seq(last_seq);
  resume.set_epoch(epoch);
  auto second = Subscribe(resume);
  EXPECT_EQ(second->Metadata("telestra-replay"), "complete");
  EXPECT_TRUE(second->WaitFor(AccountStatusIs("account-1", 0)).has_value());
  EXPECT_TRUE(second->WaitFor(AccountStatusIs("account-2", 100)).has_value());
  EXPECT_TRUE(second->WaitFor(AccountStatusIs("account-2", 200)).has_value());
  // Live events follow the replay.
  ASSERT_TRUE(Logout("account-2").ok());
  EXPECT_TRUE(second->WaitFor(AccountStatusIs("account-2", 0)).has_value());
  std::set<uint64_t> seqs;
  uint64_t previous = last_seq;
  for (const Event& event : second->events()) {
    EXPECT_GT(event.seq(), previous) << Describe(event);  // in order, none twice
    previous = event.seq();
  }

  // A resume with another run's epoch is reported as a gap, first.
  resume.set_epoch("feedfacefeedface");
  auto stale = Subscribe(resume);
  EXPECT_EQ(stale->Metadata("telestra-replay"), "gap");
  auto notice = stale->Next();
  ASSERT_TRUE(notice.has_value());
  EXPECT_TRUE(absl::StartsWith(notice->fail().error(), "Events lost")) << Describe(*notice);
  EXPECT_EQ(notice->seq(), 0u);
}

telestra::v1::Command GetStatusCommand(const std::string& account, const std::string& token) {
  telestra::v1::Command command;
  command.set_token(token);
  command.mutable_get_status()->set_account(account);
  return command;
}

TEST_F(GrpcApiTest, SessionHasTheNativePortsSemantics) {
  StartGrpcGateway({{Account("account-1", 3001), Account("account-2", 3002, false)}});
  ASSERT_EQ(WaitForAccountStatus(stub_, "account-1", 200), 200);
  auto a = EventStreamReader::Session(stub_);
  auto b = EventStreamReader::Session(stub_);
  ASSERT_TRUE(a->Send(GetStatusCommand("account-1", "mine")));
  auto reply = a->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->token(), "mine");
  EXPECT_EQ(reply->status().account_status(), 200);
  ASSERT_TRUE(a->Send(GetStatusCommand("nobody", "oops")));
  auto fail = a->Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->token(), "oops");
  EXPECT_EQ(fail->fail().error(), "Unknown account: nobody");
  EXPECT_EQ(fail->fail().kind(), telestra::v1::FAIL_KIND_NOT_FOUND);

  telestra::v1::Command logout;
  logout.mutable_logout()->set_account("account-1");
  ASSERT_TRUE(a->Send(logout));
  // The broadcast reaches both; b never saw a's replies.
  EXPECT_TRUE(a->WaitFor(AccountStatusIs("account-1", 0)).has_value());
  auto first_of_b = b->Next();
  ASSERT_TRUE(first_of_b.has_value());
  EXPECT_TRUE(AccountStatusIs("account-1", 0)(*first_of_b)) << Describe(*first_of_b);
  EXPECT_EQ(WaitForContacts(kamailio(), "3001", 0), 0);
}

TEST_F(GrpcApiTest, StalledStreamIsDroppedWithoutSlowingAnother) {
  GatewayOptions options{{Account("account-2", 3002, false)}};
  options.extra_args = {"--grpc_max_queued_events=16"};
  StartGrpcGateway(options);
  ChannelOptions small;
  small.small_window = true;
  auto stalled_stub = grpc_.NewStub(small);
  auto stalled = EventStreamReader::Subscribe(stalled_stub.get(), {}, "", /*paused=*/true);
  auto fast = Subscribe({});

  // Each login/logout is one account-status broadcast; the fast reader sees
  // each before the next is caused.
  absl::Time start = absl::Now();
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(Login("account-2", "3002", "sip3002").ok());
    ASSERT_TRUE(fast->WaitFor(AccountStatusIs("account-2", 100), absl::Seconds(5)).has_value())
        << i;
    ASSERT_TRUE(Logout("account-2").ok());
    ASSERT_TRUE(fast->WaitFor(AccountStatusIs("account-2", 0), absl::Seconds(5)).has_value()) << i;
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_FALSE(fast->WaitForEnd(absl::Milliseconds(1)).has_value());
  EXPECT_TRUE(absl::StrContains(grpc_.process->ReadLog(), "is not keeping up"));
  // Counted in the metrics.
  absl::StatusOr<std::string> metrics = HttpGet(grpc_.process->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(absl::StrContains(*metrics, "telestra_grpc_slow_stream_drops_total 1")) << *metrics;
  EXPECT_TRUE(absl::StrContains(*metrics, "telestra_grpc_streams 2")) << *metrics;

  stalled->Resume();
  auto end = stalled->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << end->error_message();
}

TEST_F(GrpcApiTest, CallsBetweenTwoAccountsThroughKamailio) {
  StartGrpcGateway({{Account("account-1", 3001), Account("account-2", 3002)}});
  ASSERT_EQ(WaitForAccountStatus(stub_, "account-1", 200), 200);
  ASSERT_EQ(WaitForAccountStatus(stub_, "account-2", 200), 200);
  telestra::v1::SubscribeRequest of_caller;
  of_caller.add_accounts("account-1");
  auto caller = Subscribe(of_caller);
  telestra::v1::SubscribeRequest of_callee;
  of_callee.add_accounts("account-2");
  auto callee = Subscribe(of_callee);

  // Two calls from account-1 to 3002 (account-2); each answered by account-2.
  int64_t calls[2];
  for (int i = 0; i < 2; ++i) {
    grpc::Status made = MakeCall("account-1", "3002", &calls[i]);
    if (made.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      GTEST_SKIP() << "calls are not supported by this build: " << made.error_message();
    }
    ASSERT_TRUE(made.ok()) << made.error_message();
    auto incoming = callee->WaitFor(CallEvent(Event::kCallIncoming, "account-2"));
    ASSERT_TRUE(incoming.has_value());
    EXPECT_EQ(incoming->call_incoming().caller(), "3001");
    int64_t answer_id = incoming->call_incoming().call_id();
    EXPECT_NE(answer_id, calls[i]);
    if (i == 0) {
      telestra::v1::Status status;
      ASSERT_TRUE(GetStatus("account-2", &status).ok());
      ASSERT_EQ(status.calls_size(), 1);
      EXPECT_EQ(status.calls(0).state(), telestra::v1::CALL_STATE_INCOMING);
      // Only the callee can answer; unknown ids are NOT_FOUND.
      EXPECT_CODE(Answer("account-1", calls[0]), FAILED_PRECONDITION);
      EXPECT_CODE(Answer("account-2", answer_id + 1000), NOT_FOUND);
    } else {
      EXPECT_CODE(Switch("account-1", calls[1]), FAILED_PRECONDITION);  // not up yet
    }
    ASSERT_TRUE(Answer("account-2", answer_id).ok());
    EXPECT_TRUE(
        caller->WaitFor(CallEvent(Event::kCallAnswered, "account-1", calls[i])).has_value());
    EXPECT_CODE(Answer("account-2", answer_id), FAILED_PRECONDITION);  // answered already
  }

  // Switching to the second call holds the first; back again resumes it.
  ASSERT_TRUE(Switch("account-1", calls[1]).ok());
  EXPECT_TRUE(caller->WaitFor(CallEvent(Event::kCallHeld, "account-1", calls[0])).has_value());
  ASSERT_TRUE(Switch("account-1", calls[0]).ok());
  EXPECT_TRUE(caller->WaitFor(CallEvent(Event::kCallResumed, "account-1", calls[0])).has_value());

  for (int64_t id : calls) {
    ASSERT_TRUE(Hangup("account-1", id).ok());
    EXPECT_TRUE(caller->WaitFor(CallEvent(Event::kCallEnded, "account-1", id)).has_value());
  }
  EXPECT_TRUE(callee->WaitFor(CallEvent(Event::kCallEnded, "account-2")).has_value());
  EXPECT_CODE(Hangup("account-1", calls[0]), NOT_FOUND);
}

}  // namespace
}  // namespace telestra::testing
