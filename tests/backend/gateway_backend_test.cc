#include "backend/gateway_backend.h"

#include <functional>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backend/command_dispatcher.h"
#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

// Records what the backend asks of the SIP stack.
class FakeSipStack : public SipStack {
 public:
  struct Call {
    std::string op;
    AccountConfig account;
    uint64_t generation;
  };
  absl::Status Start(SipStackListener*) override { return absl::OkStatus(); }
  void Register(const AccountConfig& account, uint64_t generation) override {
    calls.push_back({"register", account, generation});
  }
  void Unregister(const std::string& account, uint64_t generation) override {
    AccountConfig config;
    config.name = account;
    calls.push_back({"unregister", config, generation});
  }
  // The real stack's check is dial_target_test's; here "bad" stands for any
  // number it refuses.
  absl::Status CheckNumber(const AccountConfig&, const std::string& number) const override {
    return number == "bad" ? absl::InvalidArgumentError("Invalid number: bad") : absl::OkStatus();
  }
  bool MakeCall(int64_t call_id, const AccountConfig& account, const std::string& number) override {
    calls.push_back({"make-call:" + number, account, static_cast<uint64_t>(call_id)});
    if (on_make_call) on_make_call(call_id);
    return accepting;
  }
  bool accepting = true;                      // false: stopped
  std::function<void(int64_t)> on_make_call;  // runs inside MakeCall
  void AnswerCall(int64_t call_id) override { Record("answer", call_id); }
  void HangupCall(int64_t call_id) override { Record("hangup", call_id); }
  void HoldCall(int64_t call_id, bool hold) override { Record(hold ? "hold" : "resume", call_id); }
  void TransferCall(int64_t call_id, const std::string& number, int64_t to_call_id) override {
    Record(absl::StrCat("transfer:", number, ":", to_call_id), call_id);
  }
  void AttachAudio(int64_t call_id, std::shared_ptr<CallAudioTap> tap) override {
    Record("audio", call_id);
    taps.push_back(std::move(tap));
  }
  std::vector<std::shared_ptr<CallAudioTap>> taps;
  void SendDtmf(int64_t call_id, uint64_t request, const std::string& digits,
                int duration_ms) override {
    Record(absl::StrCat("dtmf:", digits, ":", duration_ms, ":", request), call_id);
  }
  void Record(const std::string& op, int64_t call_id) {
    calls.push_back({op, AccountConfig{}, static_cast<uint64_t>(call_id)});
  }
  void Shutdown(absl::Duration) override {}
  int port() const override { return 5070; }
  std::vector<Call> calls;
};

class RecordingListener : public EventListener {
 public:
  void OnEvent(const EventPtr& event) override { events.push_back(*event); }
  std::vector<telestra::v1::Event> events;
  int Count(telestra::v1::Event::KindCase kind) const {
    int n = 0;
    for (const auto& e : events) n += e.kind_case() == kind;
    return n;
  }
};

std::vector<AccountConfig> TwoAccounts() {
  AccountConfig a;
  a.name = "account-1";
  a.user = "3001";
  a.password = "sip3001";
  a.server = "127.0.0.1:5060";
  AccountConfig b = a;
  b.name = "account-2";
  b.user = "3002";
  b.password = "sip3002";
  b.register_on_start = false;
  return {a, b};
}

class GatewayBackendTest : public ::testing::Test {
 protected:
  GatewayBackendTest() : backend_(TwoAccounts(), &stack_, &hub_), dispatcher_(&backend_, &hub_) {
    client_ = hub_.Attach(&listener_);
  }
  int StatusOf(const std::string& account) { return backend_.GetStatus(account)->account_status(); }

  FakeSipStack stack_;
  EventHub hub_;
  GatewayBackend backend_;
  CommandDispatcher dispatcher_;
  RecordingListener listener_;
  ClientId client_;
};

TEST_F(GatewayBackendTest, StartRegistersOnlyAccountsWithRegisterTrue) {
  backend_.Start();
  ASSERT_EQ(stack_.calls.size(), 1u);
  EXPECT_EQ(stack_.calls[0].op, "register");
  EXPECT_EQ(stack_.calls[0].account.name, "account-1");
  EXPECT_EQ(StatusOf("account-1"), 100);
  EXPECT_EQ(StatusOf("account-2"), 0);
}

TEST_F(GatewayBackendTest, RegistrationSuccessSetsStatus200) {
  backend_.Start();
  backend_.OnRegistration("account-1", stack_.calls[0].generation, 200, "OK", false);
  EXPECT_EQ(StatusOf("account-1"), 200);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kFail), 0);
}

TEST_F(GatewayBackendTest, FailedRegistrationBroadcastsSeedFailText) {
  backend_.Start();
  RecordingListener other;
  hub_.Attach(&other);
  backend_.OnRegistration("account-1", stack_.calls[0].generation, 401, "Unauthorized", false);
  EXPECT_EQ(StatusOf("account-1"), 401);
  ASSERT_EQ(other.Count(telestra::v1::Event::kFail), 1);
  for (const auto& e : other.events) {
    if (e.has_fail()) {
      EXPECT_EQ(e.fail().error(), "Failed to log in to account: account-1");
      EXPECT_EQ(e.fail().account(), "account-1");
    }
  }
}

TEST_F(GatewayBackendTest, RepeatedIdenticalFailuresWhileRetryingFailOnce) {
  backend_.Start();
  uint64_t gen = stack_.calls[0].generation;
  backend_.OnRegistration("account-1", gen, 503, "Service Unavailable", true);
  backend_.OnRegistration("account-1", gen, 503, "Service Unavailable", true);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kFail), 1);
  backend_.OnRegistration("account-1", gen, 200, "OK", false);
  backend_.OnRegistration("account-1", gen, 503, "Service Unavailable", true);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kFail), 2);
}

TEST_F(GatewayBackendTest, LoginReplacesCredentialsAndRegistersAgain) {
  telestra::v1::LoginCommand login;
  login.set_account("account-2");
  login.set_user("3005");
  login.set_pass("sip3005");
  login.set_server("127.0.0.1:5999");
  ASSERT_TRUE(backend_.Login(login).ok());
  ASSERT_EQ(stack_.calls.size(), 1u);
  EXPECT_EQ(stack_.calls[0].account.user, "3005");
  EXPECT_EQ(stack_.calls[0].account.password, "sip3005");
  EXPECT_EQ(stack_.calls[0].account.server, "127.0.0.1:5999");
  EXPECT_EQ(StatusOf("account-2"), 100);
}

TEST_F(GatewayBackendTest, LoginUnknownAccountIsNotFound) {
  telestra::v1::LoginCommand login;
  login.set_account("account-9");
  login.set_user("1");
  login.set_server("x");
  absl::Status status = backend_.Login(login);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "Unknown account: account-9");
  EXPECT_TRUE(stack_.calls.empty());
}

// A login never puts what the plan would refuse into a SIP header: a user
// with URI metacharacters or control characters, a server that is not
// host[:port].
TEST_F(GatewayBackendTest, LoginWithAUserOrServerThePlanWouldRefuseFails) {
  struct Case {
    std::string user, server, error;
  };
  const std::vector<Case> cases = {
      {"3001@evil", "127.0.0.1:5060",
       "Invalid login: user may only contain letters, digits and - _ . ! ~ * ' ( ) + $, got "
       "'3001@evil'"},
      {"30;01", "127.0.0.1:5060", ""},
      {"3001\r\nVia: x", "127.0.0.1:5060", ""},
      {std::string("30\x01", 3) + "1", "127.0.0.1:5060", ""},
      {"3001", "127.0.0.1:5060;maddr=127.0.0.2",
       "Invalid login: server port must be an integer, got '5060;maddr=127.0.0.2'"},
      {"3001", "evil.example;x", ""},
      {"3001", "evil.example/x", ""},
      {"3001", "[::1", ""},
      {"3001", "a b", ""},
      {std::string(65, '1'), "s", "Invalid login: user must be at most 64 characters, got 65"},
  };
  for (const Case& c : cases) {
    telestra::v1::LoginCommand login;
    login.set_account("account-2");
    login.set_user(c.user);
    login.set_pass("p");
    login.set_server(c.server);
    absl::Status status = backend_.Login(login);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.user << " " << c.server;
    EXPECT_TRUE(absl::StartsWith(status.message(), "Invalid login: ")) << status.message();
    if (!c.error.empty()) EXPECT_EQ(status.message(), c.error);
  }
  EXPECT_TRUE(stack_.calls.empty());
  EXPECT_EQ(StatusOf("account-2"), 0);
}

TEST_F(GatewayBackendTest, LogoutSetsZeroAndIgnoresLateResultsOfOldLogin) {
  backend_.Start();
  uint64_t old_gen = stack_.calls[0].generation;
  ASSERT_TRUE(backend_.Logout("account-1").ok());
  EXPECT_EQ(StatusOf("account-1"), 0);
  ASSERT_EQ(stack_.calls.back().op, "unregister");
  backend_.OnRegistration("account-1", old_gen, 200, "OK", false);  // stale
  EXPECT_EQ(StatusOf("account-1"), 0);
}

TEST_F(GatewayBackendTest, RefreshProgressDoesNotHideRegisteredState) {
  backend_.Start();
  uint64_t gen = stack_.calls[0].generation;
  backend_.OnRegistration("account-1", gen, 200, "OK", false);
  backend_.OnRegistration("account-1", gen, 100, "Request Authorized by Cache", false);
  EXPECT_EQ(StatusOf("account-1"), 200);
}

TEST_F(GatewayBackendTest, StatusChangesBroadcastAccountStatusEvents) {
  backend_.Start();
  backend_.OnRegistration("account-1", stack_.calls[0].generation, 200, "OK", false);
  std::vector<int> seen;
  for (const auto& e : listener_.events) {
    if (e.has_account_status()) seen.push_back(e.account_status().account_status());
  }
  EXPECT_EQ(seen, (std::vector<int>{100, 200}));
}

TEST_F(GatewayBackendTest, DispatcherRepliesStatusOnlyToRequesterWithToken) {
  RecordingListener other;
  hub_.Attach(&other);
  telestra::v1::Command command;
  command.set_token("t-1");
  command.mutable_get_status()->set_account("account-2");
  dispatcher_.Execute(client_, command);
  ASSERT_EQ(listener_.events.size(), 1u);
  EXPECT_TRUE(listener_.events[0].has_status());
  EXPECT_EQ(listener_.events[0].token(), "t-1");
  EXPECT_EQ(listener_.events[0].status().account(), "account-2");
  EXPECT_TRUE(other.events.empty());
}

TEST_F(GatewayBackendTest, DispatcherRepliesFailForUnknownAccount) {
  telestra::v1::Command command;
  command.set_token("t-2");
  command.mutable_get_status()->set_account("nope");
  dispatcher_.Execute(client_, command);
  ASSERT_EQ(listener_.events.size(), 1u);
  const auto& fail = listener_.events[0].fail();
  EXPECT_EQ(fail.error(), "Unknown account: nope");
  EXPECT_EQ(fail.account(), "nope");
  EXPECT_EQ(fail.kind(), telestra::v1::FAIL_KIND_NOT_FOUND);
  EXPECT_EQ(listener_.events[0].token(), "t-2");
}

TEST_F(GatewayBackendTest, MakeCallNeedsARegisteredAccount) {
  telestra::v1::Command command;
  command.mutable_make_call()->set_account("account-2");
  command.mutable_make_call()->set_num("3001");
  dispatcher_.Execute(client_, command);
  ASSERT_EQ(listener_.events.size(), 1u);
  EXPECT_EQ(listener_.events[0].fail().error(), "Account is not registered: account-2");
  EXPECT_EQ(listener_.events[0].fail().kind(), telestra::v1::FAIL_KIND_FAILED_PRECONDITION);
}

class CallTest : public GatewayBackendTest {
 protected:
  void SetUp() override {
    backend_.Start();
    backend_.OnRegistration("account-1", stack_.calls[0].generation, 200, "OK", false);
    stack_.calls.clear();
    listener_.events.clear();
  }
  int64_t Dial(const std::string& number) {
    telestra::v1::Command command;
    command.mutable_make_call()->set_account("account-1");
    command.mutable_make_call()->set_num(number);
    dispatcher_.Execute(client_, command);
    return listener_.events.back().call_return().call_id();
  }
  telestra::v1::CallInfo CallOf(int64_t id) {
    telestra::v1::Status status = *backend_.GetStatus("account-1");
    for (const auto& call : status.calls()) {
      if (call.call_id() == id) return call;
    }
    return {};
  }
};

TEST_F(CallTest, MakeCallRepliesCallReturnBeforeAnyEventOfTheCall) {
  // The stack's thread reports the call at once, while make-call is still
  // being handled: its event must still come after call-return.
  std::thread stack_thread;
  stack_.on_make_call = [&](int64_t call_id) {
    stack_thread = std::thread([this, call_id] { backend_.OnCallProgress(call_id, 180, false); });
    absl::SleepFor(absl::Milliseconds(20));  // it reports while MakeCall runs
  };
  telestra::v1::Command command;
  command.mutable_make_call()->set_account("account-1");
  command.mutable_make_call()->set_num("3002");
  dispatcher_.Execute(client_, command);
  stack_thread.join();  // before reading what the listener got
  ASSERT_EQ(listener_.events.size(), 3u);
  ASSERT_TRUE(listener_.events[0].has_call_return());
  const int64_t id = listener_.events[0].call_return().call_id();
  EXPECT_EQ(id, 0);
  EXPECT_TRUE(listener_.events[1].has_call_ringing());
  EXPECT_TRUE(listener_.events[2].has_call_progress());
  ASSERT_EQ(stack_.calls.size(), 1u);
  EXPECT_EQ(stack_.calls[0].op, "make-call:3002");
  EXPECT_EQ(CallOf(id).state(), telestra::v1::CALL_STATE_RINGING);
  EXPECT_EQ(CallOf(id).direction(), telestra::v1::CALL_DIRECTION_OUTGOING);
}

// The real stack, on its own thread, reports a call that cannot start
// before MakeCall returns: the backend holds no lock while calling it (a
// held lock would deadlock here), and call-return still comes first.
TEST_F(CallTest, MakeCallHoldsNoBackendLockWhileTheStackRuns) {
  stack_.on_make_call = [&](int64_t call_id) {
    backend_.OnCallEnded(call_id, 503, "No RTP port available");
  };
  int64_t id = Dial("3002");
  ASSERT_EQ(listener_.events.size(), 2u);
  EXPECT_TRUE(listener_.events[0].has_call_return());
  ASSERT_TRUE(listener_.events[1].has_call_ended());
  EXPECT_EQ(listener_.events[1].call_ended().call_id(), id);
  EXPECT_EQ(CallOf(id).call_id(), 0) << "no such call any more";
}

// A hang-up that reaches the backend while the stack is being handed the
// call (from another thread) is sent to the stack again after the call, so
// that the stack, which may have seen it first, still ends the call.
TEST_F(CallTest, AHangupWhileTheStackIsHandedTheCallIsSentAfterTheCall) {
  stack_.on_make_call = [&](int64_t call_id) {
    ASSERT_TRUE(backend_.HangupCall("account-1", call_id).ok());
  };
  Dial("3002");
  ASSERT_EQ(stack_.calls.size(), 3u);
  EXPECT_EQ(stack_.calls[0].op, "make-call:3002");
  EXPECT_EQ(stack_.calls[1].op, "hangup");
  EXPECT_EQ(stack_.calls[2].op, "hangup");  // after the make-call returned
}

TEST_F(CallTest, MakeCallOnAStoppedStackEndsTheCallAfterCallReturn) {
  stack_.accepting = false;
  int64_t id = Dial("3002");
  ASSERT_EQ(listener_.events.size(), 2u);
  EXPECT_TRUE(listener_.events[0].has_call_return());
  ASSERT_TRUE(listener_.events[1].has_call_ended());
  EXPECT_EQ(listener_.events[1].call_ended().call_id(), id);
  EXPECT_EQ(listener_.events[1].call_ended().code(), 503);
  EXPECT_EQ(listener_.events[1].call_ended().reason(), "Service shutting down");
  EXPECT_EQ(CallOf(id).call_id(), 0) << "no such call any more";
}

TEST_F(CallTest, CallIdsAreOneServiceWideCounter) {
  EXPECT_EQ(Dial("3002"), 0);
  EXPECT_EQ(backend_.OnIncomingCall("account-1", "3005", "Five"), 1);
  EXPECT_EQ(Dial("3003"), 2);
}

TEST_F(CallTest, OutgoingCallProgressesThroughRingingActiveAndEnded) {
  int64_t id = Dial("3002");
  backend_.OnCallProgress(id, 180, false);
  EXPECT_EQ(CallOf(id).state(), telestra::v1::CALL_STATE_RINGING);
  backend_.OnCallEstablished(id);
  EXPECT_EQ(CallOf(id).state(), telestra::v1::CALL_STATE_ACTIVE);
  backend_.OnCallEnded(id, 0, "Remote hangup");
  EXPECT_TRUE(backend_.GetStatus("account-1")->calls().empty());
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kCallRinging), 1);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kCallAnswered), 1);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kCallEnded), 1);
  backend_.OnCallEnded(id, 0, "again");  // never twice
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kCallEnded), 1);
}

TEST_F(CallTest, IncomingCallIsBroadcastAndAnsweredOnce) {
  int64_t id = backend_.OnIncomingCall("account-1", "3002", "account-2");
  ASSERT_EQ(listener_.Count(telestra::v1::Event::kCallIncoming), 1);
  EXPECT_EQ(listener_.events.back().call_incoming().caller_name(), "account-2");
  EXPECT_EQ(CallOf(id).state(), telestra::v1::CALL_STATE_INCOMING);
  ASSERT_TRUE(backend_.AnswerCall("account-1", id).ok());
  EXPECT_EQ(backend_.AnswerCall("account-1", id).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stack_.calls.back().op, "answer");
}

TEST_F(CallTest, IncomingCallForUnregisteredAccountIsRefused) {
  EXPECT_EQ(backend_.OnIncomingCall("account-2", "3001", ""), -1);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kCallIncoming), 0);
}

TEST_F(CallTest, AnswerAfterTheCallEndedIsUnknownCallId) {
  int64_t id = backend_.OnIncomingCall("account-1", "3002", "");
  backend_.OnCallEnded(id, 487, "Request Terminated");
  absl::Status status = backend_.AnswerCall("account-1", id);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "Unknown call id 0 for account: account-1");
}

TEST_F(CallTest, CallIdOfAnotherAccountIsUnknown) {
  int64_t id = Dial("3002");
  EXPECT_EQ(backend_.HangupCall("account-2", id).code(), absl::StatusCode::kNotFound);
}

TEST_F(CallTest, SwitchCallHoldsTheOthersAndResumesTheTarget) {
  int64_t a = Dial("3002");
  int64_t b = Dial("3003");
  backend_.OnCallEstablished(a);
  backend_.OnCallEstablished(b);
  stack_.calls.clear();
  ASSERT_TRUE(backend_.SwitchCall("account-1", b).ok());
  ASSERT_EQ(stack_.calls.size(), 1u);
  EXPECT_EQ(stack_.calls[0].op, "hold");
  EXPECT_EQ(stack_.calls[0].generation, static_cast<uint64_t>(a));
  // Held once the far end accepts the re-INVITE, not before.
  EXPECT_EQ(CallOf(a).state(), telestra::v1::CALL_STATE_ACTIVE);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kCallHeld), 0);
  backend_.OnHoldResult(a, true, 200, "OK");
  EXPECT_EQ(CallOf(a).state(), telestra::v1::CALL_STATE_HELD);
  EXPECT_EQ(CallOf(b).state(), telestra::v1::CALL_STATE_ACTIVE);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kCallHeld), 1);
  stack_.calls.clear();
  ASSERT_TRUE(backend_.SwitchCall("account-1", a).ok());
  ASSERT_EQ(stack_.calls.size(), 2u);
  backend_.OnHoldResult(a, false, 200, "OK");
  backend_.OnHoldResult(b, true, 200, "OK");
  EXPECT_EQ(CallOf(a).state(), telestra::v1::CALL_STATE_ACTIVE);
  EXPECT_EQ(CallOf(b).state(), telestra::v1::CALL_STATE_HELD);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kCallResumed), 1);
  stack_.calls.clear();
  ASSERT_TRUE(backend_.SwitchCall("account-1", a).ok());  // already active: no-op
  EXPECT_TRUE(stack_.calls.empty());
}

TEST_F(CallTest, RefusedHoldLeavesTheCallAsItWasAndSaysWhy) {
  int64_t a = Dial("3002");
  int64_t b = Dial("3003");
  backend_.OnCallEstablished(a);
  backend_.OnCallEstablished(b);
  ASSERT_TRUE(backend_.SwitchCall("account-1", b).ok());
  backend_.OnHoldResult(a, true, 488, "Not Acceptable Here");
  EXPECT_EQ(CallOf(a).state(), telestra::v1::CALL_STATE_ACTIVE);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kCallHeld), 0);
  ASSERT_EQ(listener_.events.back().kind_case(), telestra::v1::Event::kFail);
  EXPECT_EQ(listener_.events.back().fail().account(), "account-1");
  EXPECT_EQ(listener_.events.back().fail().error(),
            "Call 0 could not be held: 488 Not Acceptable Here");
  EXPECT_EQ(listener_.events.back().fail().kind(), telestra::v1::FAIL_KIND_UNAVAILABLE);
  // The same switch-call may be tried again.
  stack_.calls.clear();
  ASSERT_TRUE(backend_.SwitchCall("account-1", b).ok());
  ASSERT_EQ(stack_.calls.size(), 1u);
  EXPECT_EQ(stack_.calls[0].op, "hold");
}

TEST_F(CallTest, SwitchToUnestablishedCallFails) {
  int64_t a = Dial("3002");
  absl::Status status = backend_.SwitchCall("account-1", a);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "Call 0 is not established");
}

TEST_F(CallTest, RemoteHoldShowsAsRemoteHeld) {
  int64_t a = Dial("3002");
  backend_.OnCallEstablished(a);
  backend_.OnCallHold(a, false, true);
  EXPECT_EQ(CallOf(a).state(), telestra::v1::CALL_STATE_REMOTE_HELD);
  backend_.OnCallHold(a, false, false);
  EXPECT_EQ(CallOf(a).state(), telestra::v1::CALL_STATE_ACTIVE);
}

TEST_F(CallTest, LogoutEndsTheAccountsCallsBeforeUnregistering) {
  int64_t a = Dial("3002");
  stack_.calls.clear();
  ASSERT_TRUE(backend_.Logout("account-1").ok());
  ASSERT_EQ(stack_.calls.size(), 2u);
  EXPECT_EQ(stack_.calls[0].op, "hangup");
  EXPECT_EQ(stack_.calls[0].generation, static_cast<uint64_t>(a));
  EXPECT_EQ(stack_.calls[1].op, "unregister");
}

TEST_F(CallTest, EmptyNumberIsInvalid) {
  telestra::v1::Command command;
  command.mutable_make_call()->set_account("account-1");
  dispatcher_.Execute(client_, command);
  EXPECT_EQ(listener_.events.back().fail().error(), "Field num must not be empty");
}

TEST_F(CallTest, ANumberTheStackRefusesFailsBeforeAnyCallIsMade) {
  const size_t before = stack_.calls.size();
  telestra::v1::Command command;
  command.mutable_make_call()->set_account("account-1");
  command.mutable_make_call()->set_num("bad");
  dispatcher_.Execute(client_, command);
  EXPECT_EQ(listener_.events.back().fail().error(), "Invalid number: bad");
  EXPECT_EQ(stack_.calls.size(), before);
}

TEST_F(GatewayBackendTest, ListAccountsKeepsPlanOrder) {
  auto all = backend_.ListAccounts();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].account(), "account-1");
  EXPECT_EQ(all[1].account(), "account-2");
}

// ------------------------------------------------ call details and quality

absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

TEST_F(GatewayBackendTest, StatusNamesTheUserServerAndTheRegistrationsExpiry) {
  backend_.Start();
  const uint64_t generation = stack_.calls[0].generation;
  telestra::v1::Status status = *backend_.GetStatus("account-1");
  EXPECT_EQ(status.user(), "3001");
  EXPECT_EQ(status.server(), "127.0.0.1:5060");
  EXPECT_FALSE(status.has_registration_expires()) << "not registered yet";
  const absl::Time expires = absl::FromUnixSeconds(1800000000) + absl::Milliseconds(250);
  backend_.OnRegistrationExpires("account-1", generation, expires);
  backend_.OnRegistration("account-1", generation, 200, "OK", false);
  status = *backend_.GetStatus("account-1");
  ASSERT_TRUE(status.has_registration_expires());
  EXPECT_EQ(TimeOf(status.registration_expires()), expires);
  // A login shows its user and server; the old binding's expiry goes.
  telestra::v1::LoginCommand login;
  login.set_account("account-1");
  login.set_user("3009");
  login.set_pass("x");
  login.set_server("pbx.example.com:5080");
  ASSERT_TRUE(backend_.Login(login).ok());
  status = *backend_.GetStatus("account-1");
  EXPECT_EQ(status.user(), "3009");
  EXPECT_EQ(status.server(), "pbx.example.com:5080");
  EXPECT_FALSE(status.has_registration_expires());
  // An expiry of a superseded attempt is ignored.
  backend_.OnRegistrationExpires("account-1", generation, expires);
  backend_.OnRegistration("account-1", stack_.calls.back().generation, 200, "OK", false);
  EXPECT_FALSE(backend_.GetStatus("account-1")->has_registration_expires());
}

// A media engine that only answers Stats, with what the test put there.
class StatsOnlyMedia : public MediaEngine {
 public:
  absl::StatusOr<int> Open(int64_t, const MediaOptions&) override { return 40000; }
  void Update(int64_t, const MediaParams&) override {}
  void Close(int64_t) override {}
  std::optional<MediaStats> Stats(int64_t call_id) const override {
    auto it = stats.find(call_id);
    if (it == stats.end()) return std::nullopt;
    return it->second;
  }
  void SetTimeoutHandler(std::function<void(int64_t)>) override {}
  absl::Status SendDtmf(int64_t, const std::string&, int, uint64_t) override {
    return absl::OkStatus();
  }
  void SetDtmfHandlers(DtmfHandlers) override {}
  absl::Status AttachAudio(int64_t, std::shared_ptr<CallAudioTap>) override {
    return absl::OkStatus();
  }
  const std::string& local_address() const override { return address; }
  size_t open_calls() const override { return stats.size(); }

  std::map<int64_t, MediaStats> stats;
  std::string address = "127.0.0.1";
};

// 190 packets received, 10 lost, PCMA, a 30 ms round trip.
MediaStats SomeAudio() {
  MediaStats stats;
  stats.negotiated_payload_type = 8;
  stats.packets_received = 190;
  stats.packets_lost = 10;
  stats.jitter_ms = 4.5;
  stats.rtt_ms = 30;
  stats.jitter_buffer_ms = 60;
  return stats;
}

class CallQualityTest : public CallTest {
 protected:
  CallQualityTest() { backend_.set_media(&media_); }  // before SetUp's Start
  StatsOnlyMedia media_;
};

TEST_F(CallQualityTest, ACallShowsItsTimesSipIdentityCodecAndQuality) {
  const absl::Time before = absl::Now();
  int64_t id = Dial("3002");
  telestra::v1::CallInfo call = CallOf(id);
  ASSERT_TRUE(call.has_start_time());
  EXPECT_GE(TimeOf(call.start_time()), before - absl::Milliseconds(1));
  EXPECT_FALSE(call.has_answer_time());
  EXPECT_EQ(call.codec(), "") << "no media yet";
  EXPECT_FALSE(call.has_mos());

  backend_.OnCallDetails(id, {"abc@127.0.0.1", "sip:3002@127.0.0.1:5060"});
  media_.stats[id] = SomeAudio();
  backend_.OnCallEstablished(id);
  call = CallOf(id);
  EXPECT_EQ(call.sip_call_id(), "abc@127.0.0.1");
  EXPECT_EQ(call.remote_uri(), "sip:3002@127.0.0.1:5060");
  ASSERT_TRUE(call.has_answer_time());
  EXPECT_GE(TimeOf(call.answer_time()), TimeOf(call.start_time()));
  EXPECT_EQ(call.codec(), "PCMA");
  EXPECT_EQ(call.packets_received(), 190u);
  EXPECT_EQ(call.packets_lost(), 10u);
  EXPECT_DOUBLE_EQ(call.jitter_ms(), 4.5);
  ASSERT_TRUE(call.has_rtt_ms());
  EXPECT_DOUBLE_EQ(call.rtt_ms(), 30);
  ASSERT_TRUE(call.has_mos());
  EXPECT_NEAR(call.mos(), MosFromRating(EModelRating(75, 5)), 0.006);
  // The snapshots (ListAccounts) carry the same.
  EXPECT_EQ(backend_.ListAccounts()[0].calls(0).codec(), "PCMA");
}

TEST_F(CallQualityTest, QualityEventsForEstablishedCallsAndFiguresAtTheEndForMetrics) {
  int64_t id = Dial("3002");
  backend_.OnCallQuality(id, SomeAudio(), false);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kCallQuality), 0) << "not established";
  backend_.OnCallEstablished(id);
  backend_.OnCallQuality(id, SomeAudio(), false);
  ASSERT_EQ(listener_.Count(telestra::v1::Event::kCallQuality), 1);
  const telestra::v1::CallQuality& q = listener_.events.back().call_quality();
  EXPECT_EQ(q.account(), "account-1");
  EXPECT_EQ(q.call_id(), id);
  EXPECT_EQ(q.codec(), "PCMA");
  EXPECT_EQ(q.packets_received(), 190u);
  EXPECT_EQ(q.packets_lost(), 10u);
  EXPECT_DOUBLE_EQ(q.jitter_ms(), 4.5);
  EXPECT_DOUBLE_EQ(q.rtt_ms(), 30);
  EXPECT_TRUE(q.has_mos());

  // The last figures, just before the media closes: /metrics, no event.
  backend_.OnCallQuality(id, SomeAudio(), true);
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kCallQuality), 1);
  backend_.OnCallEnded(id, 0, "Hung up");
  // A second call never answered: ended 486, no audio, no figures.
  int64_t busy = Dial("3003");
  backend_.OnCallQuality(busy, MediaStats(), true);
  backend_.OnCallEnded(busy, 486, "Busy Here");

  GatewayBackend::CallStats stats = backend_.call_stats();
  EXPECT_EQ(stats.ended_by_code, (std::map<int, uint64_t>{{0, 1}, {486, 1}}));
  EXPECT_EQ(stats.setup_outgoing_seconds.count, 1u);
  EXPECT_EQ(stats.setup_incoming_seconds.count, 0u);
  EXPECT_EQ(stats.loss_ratio.count, 1u);
  EXPECT_DOUBLE_EQ(stats.loss_ratio.sum, 0.05);
  EXPECT_EQ(stats.jitter_seconds.count, 1u);
  EXPECT_DOUBLE_EQ(stats.jitter_seconds.sum, 0.0045);
  EXPECT_EQ(stats.mos.count, 1u);
}

TEST_F(CallQualityTest, AnIncomingCallsSetupRunsFromItsInviteToItsEstablishment) {
  int64_t id = backend_.OnIncomingCall("account-1", "3002", "");
  ASSERT_TRUE(backend_.AnswerCall("account-1", id).ok());
  backend_.OnCallEstablished(id);
  GatewayBackend::CallStats stats = backend_.call_stats();
  EXPECT_EQ(stats.setup_incoming_seconds.count, 1u);
  EXPECT_EQ(stats.setup_outgoing_seconds.count, 0u);
  EXPECT_GE(stats.setup_incoming_seconds.sum, 0);
}

}  // namespace
}  // namespace telestra::backend

namespace telestra::backend {
namespace {

class DtmfTest : public CallTest {
 protected:
  // An established outgoing call.
  int64_t Established() {
    int64_t id = Dial("3002");
    backend_.OnCallEstablished(id);
    stack_.calls.clear();
    listener_.events.clear();
    return id;
  }
  void SendDtmf(int64_t call_id, const std::string& digits, int duration_ms = 0) {
    telestra::v1::Command command;
    command.set_token("t");
    auto* send = command.mutable_send_dtmf();
    send->set_account("account-1");
    send->set_call_id(call_id);
    send->set_digits(digits);
    send->set_duration_ms(duration_ms);
    dispatcher_.Execute(client_, command);
  }
  std::string LastFail() {
    for (auto it = listener_.events.rbegin(); it != listener_.events.rend(); ++it) {
      if (it->has_fail()) return it->fail().error();
    }
    return "";
  }
};

TEST_F(DtmfTest, DigitsGoToTheStackAndDtmfSentRepliesToTheRequester) {
  int64_t id = Established();
  RecordingListener other;
  hub_.Attach(&other);
  SendDtmf(id, "12ab", 250);
  ASSERT_EQ(stack_.calls.size(), 1u);
  EXPECT_EQ(stack_.calls[0].op, "dtmf:12AB:250:1");
  EXPECT_EQ(stack_.calls[0].generation, static_cast<uint64_t>(id));  // the call id
  EXPECT_TRUE(listener_.events.empty()) << "nothing until the digits are out";
  backend_.OnDtmfSent(id, 1, 200, "OK");
  ASSERT_EQ(listener_.events.size(), 1u);
  const telestra::v1::Event& sent = listener_.events[0];
  ASSERT_TRUE(sent.has_dtmf_sent());
  EXPECT_EQ(sent.token(), "t");
  EXPECT_EQ(sent.dtmf_sent().account(), "account-1");
  EXPECT_EQ(sent.dtmf_sent().call_id(), id);
  EXPECT_EQ(sent.dtmf_sent().digits(), "12AB");
  EXPECT_TRUE(other.events.empty()) << "dtmf-sent goes to the requester only";
  // A second report of the same request is ignored.
  backend_.OnDtmfSent(id, 1, 200, "OK");
  EXPECT_EQ(listener_.events.size(), 1u);
}

TEST_F(DtmfTest, TheDefaultDurationIs100Ms) {
  int64_t id = Established();
  SendDtmf(id, "#");
  ASSERT_EQ(stack_.calls.size(), 1u);
  EXPECT_EQ(stack_.calls[0].op, "dtmf:#:100:1");
}

TEST_F(DtmfTest, AFailedSendIsAFailToTheRequester) {
  int64_t id = Established();
  SendDtmf(id, "1");
  backend_.OnDtmfSent(id, 1, 405, "Method Not Allowed");
  EXPECT_EQ(LastFail(), "DTMF to call " + std::to_string(id) + " failed: 405 Method Not Allowed");
  EXPECT_EQ(listener_.events.back().token(), "t");
  EXPECT_EQ(listener_.events.back().fail().kind(), telestra::v1::FAIL_KIND_UNAVAILABLE);
}

TEST_F(DtmfTest, BadRequestsFailWithClearTexts) {
  int64_t id = Established();
  SendDtmf(id, "12x");
  EXPECT_EQ(LastFail(), "Invalid DTMF digit: 'x'");
  SendDtmf(id, "");
  EXPECT_EQ(LastFail(), "Field digits must not be empty");
  SendDtmf(id, std::string(65, '1'));
  EXPECT_EQ(LastFail(), "Too many DTMF digits: 65 (at most 64)");
  SendDtmf(id, "1", 39);
  EXPECT_EQ(LastFail(), "Field duration_ms out of range: 39 (40..2000)");
  SendDtmf(id + 100, "1");
  EXPECT_EQ(LastFail(), "Unknown call id " + std::to_string(id + 100) + " for account: account-1");
  int64_t ringing = Dial("3003");
  SendDtmf(ringing, "1");
  EXPECT_EQ(LastFail(), "Call " + std::to_string(ringing) + " is not established");
  EXPECT_TRUE(stack_.calls.size() == 1u && stack_.calls[0].op == "make-call:3003")
      << "no bad request reached the stack";
}

TEST_F(DtmfTest, ReceivedDigitsAreBroadcastAndEndedCallsForgetTheirRequests) {
  int64_t id = Established();
  RecordingListener other;
  hub_.Attach(&other);
  backend_.OnDtmfReceived(id, '5', 160, DtmfMethod::kInfo);
  ASSERT_EQ(other.Count(telestra::v1::Event::kDtmf), 1);
  const telestra::v1::Dtmf& dtmf = other.events.back().dtmf();
  EXPECT_EQ(dtmf.account(), "account-1");
  EXPECT_EQ(dtmf.call_id(), id);
  EXPECT_EQ(dtmf.digit(), "5");
  EXPECT_EQ(dtmf.duration_ms(), 160);
  EXPECT_EQ(dtmf.method(), "info");
  SendDtmf(id, "9");
  backend_.OnCallEnded(id, 0, "Remote hangup");
  backend_.OnDtmfSent(id, 1, 200, "OK");  // too late: the call is gone
  EXPECT_EQ(listener_.Count(telestra::v1::Event::kDtmfSent), 0);
  backend_.OnDtmfReceived(id, '1', 100, DtmfMethod::kRfc4733);  // unknown call: ignored
  EXPECT_EQ(other.Count(telestra::v1::Event::kDtmf), 1);
}

}  // namespace
}  // namespace telestra::backend

namespace telestra::backend {
namespace {

TEST_F(CallTest, ProvisionalAnswersRingOnceAndReportEachChangeAsCallProgress) {
  int64_t id = Dial("3002");
  listener_.events.clear();
  backend_.OnCallProgress(id, 180, false);
  backend_.OnCallProgress(id, 180, false);  // nothing new
  backend_.OnCallProgress(id, 183, true);   // early media
  backend_.OnCallProgress(id, 183, true);   // nothing new
  backend_.OnCallProgress(id, 180, true);   // another code
  std::vector<std::string> seen;
  for (const telestra::v1::Event& e : listener_.events) {
    if (e.has_call_ringing()) seen.push_back(absl::StrCat("ringing ", e.call_ringing().code()));
    if (e.has_call_progress()) {
      seen.push_back(absl::StrCat("progress ", e.call_progress().code(),
                                  e.call_progress().early_media() ? " early" : ""));
      EXPECT_EQ(e.call_progress().account(), "account-1");
      EXPECT_EQ(e.call_progress().call_id(), id);
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"ringing 180", "progress 180", "progress 183 early",
                                            "progress 180 early"}));
  EXPECT_EQ(CallOf(id).state(), telestra::v1::CALL_STATE_RINGING);
  backend_.OnCallEstablished(id);
  listener_.events.clear();
  backend_.OnCallProgress(id, 183, false);  // after the answer: ignored
  EXPECT_TRUE(listener_.events.empty());
}

}  // namespace
}  // namespace telestra::backend

namespace telestra::backend {
namespace {

class TransferTest : public DtmfTest {
 protected:
  void Transfer(int64_t call_id, const std::string& num, std::optional<int64_t> to = std::nullopt) {
    telestra::v1::Command command;
    auto* transfer = command.mutable_transfer_call();
    transfer->set_account("account-1");
    transfer->set_call_id(call_id);
    transfer->set_num(num);
    if (to) transfer->set_to_call_id(*to);
    dispatcher_.Execute(client_, command);
  }
};

TEST_F(TransferTest, BlindAndAttendedTransfersGoToTheStackOnce) {
  int64_t a = Established();
  Transfer(a, "3003");
  ASSERT_EQ(stack_.calls.size(), 1u);
  EXPECT_EQ(stack_.calls[0].op, "transfer:3003:-1");
  Transfer(a, "3004");
  EXPECT_EQ(LastFail(), "Call " + std::to_string(a) + " is already being transferred");
  // A failure ends that; the next transfer may go.
  backend_.OnTransferFailed(a, 486, "Busy Here");
  EXPECT_EQ(LastFail(), "Transfer of call " + std::to_string(a) + " failed: 486 Busy Here");
  EXPECT_EQ(listener_.events.back().fail().kind(), telestra::v1::FAIL_KIND_UNAVAILABLE);
  int64_t b = Established();
  Transfer(a, "", b);
  ASSERT_EQ(stack_.calls.size(), 1u);
  EXPECT_EQ(stack_.calls[0].op, "transfer::" + std::to_string(b));
}

TEST_F(TransferTest, BadTransfersFailWithClearTexts) {
  int64_t a = Established();
  int64_t b = Established();
  Transfer(a, "3003", b);
  EXPECT_EQ(LastFail(), "Give either num or to_call_id, not both");
  Transfer(a, "");
  EXPECT_EQ(LastFail(), "Missing field: num");
  Transfer(a, "", a);
  EXPECT_EQ(LastFail(), "A call cannot be transferred to itself");
  Transfer(a, "bad");
  EXPECT_EQ(LastFail(), "Invalid number: bad");
  Transfer(a, "", b + 100);
  EXPECT_EQ(LastFail(), "Unknown call id " + std::to_string(b + 100) + " for account: account-1");
  int64_t ringing = Dial("3005");
  Transfer(a, "", ringing);
  EXPECT_EQ(LastFail(), "Call " + std::to_string(ringing) + " is not established");
  Transfer(ringing, "3003");
  EXPECT_EQ(LastFail(), "Call " + std::to_string(ringing) + " is not established");
  for (const auto& call : stack_.calls) EXPECT_NE(call.op.rfind("transfer", 0), 0u) << call.op;
}

TEST_F(TransferTest, ProgressIsBroadcastAndAReferredCallIsStartedWithItsOrigin) {
  int64_t a = Established();
  RecordingListener other;
  hub_.Attach(&other);
  backend_.OnTransferProgress(a, 180);
  ASSERT_EQ(other.Count(telestra::v1::Event::kTransferProgress), 1);
  EXPECT_EQ(other.events.back().transfer_progress().code(), 180);
  EXPECT_EQ(other.events.back().transfer_progress().call_id(), a);
  int64_t started = backend_.OnTransferRequested(a, "3003");
  ASSERT_GT(started, a);
  ASSERT_TRUE(other.events.back().has_call_started());
  const telestra::v1::CallStarted& event = other.events.back().call_started();
  EXPECT_EQ(event.account(), "account-1");
  EXPECT_EQ(event.call_id(), started);
  EXPECT_EQ(event.num(), "3003");
  EXPECT_EQ(event.transferred_from(), a);
  EXPECT_EQ(CallOf(started).state(), telestra::v1::CALL_STATE_DIALING);
  EXPECT_EQ(CallOf(started).direction(), telestra::v1::CALL_DIRECTION_OUTGOING);
  EXPECT_EQ(CallOf(started).peer(), "3003");
  EXPECT_EQ(backend_.OnTransferRequested(a + 1000, "3003"), -1) << "an unknown call";
  ASSERT_TRUE(backend_.Logout("account-1").ok());
  EXPECT_EQ(backend_.OnTransferRequested(a, "3003"), -1) << "a logged-out account";
}

}  // namespace
}  // namespace telestra::backend

namespace telestra::backend {
namespace {

using CallAudioBackendTest = DtmfTest;

std::shared_ptr<CallAudioTap> NewTap(CallAudioTap::Direction direction =
                                         CallAudioTap::Direction::kBoth) {
  return std::make_shared<CallAudioTap>(direction);
}

TEST_F(CallAudioBackendTest, AStreamOpensOnACallInAnyStateAndGoesToTheStack) {
  int64_t dialing = Dial("3003");
  std::shared_ptr<CallAudioTap> tap = NewTap();
  ASSERT_TRUE(backend_.OpenCallAudio("account-1", dialing, tap).ok());
  ASSERT_FALSE(stack_.taps.empty());
  EXPECT_EQ(stack_.taps.back(), tap);
  EXPECT_EQ(stack_.calls.back().op, "audio");
  EXPECT_EQ(stack_.calls.back().generation, static_cast<uint64_t>(dialing));
}

TEST_F(CallAudioBackendTest, UnknownAccountsAndCallsAndOtherAccountsCallsAreNotFound) {
  int64_t id = Established();
  absl::Status status = backend_.OpenCallAudio("nobody", id, NewTap());
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "Unknown account: nobody");
  status = backend_.OpenCallAudio("account-2", id, NewTap());
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(),
            "Unknown call id " + std::to_string(id) + " for account: account-2");
  backend_.OnCallEnded(id, 0, "Remote hangup");
  EXPECT_EQ(backend_.OpenCallAudio("account-1", id, NewTap()).code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(stack_.taps.empty()) << "no refused stream reached the stack";
}

TEST_F(CallAudioBackendTest, AtMostMaxStreamsPerCallAndStoppedOnesMakeRoom) {
  backend_.set_max_audio_streams_per_call(2);
  int64_t id = Established();
  std::shared_ptr<CallAudioTap> first = NewTap();
  ASSERT_TRUE(backend_.OpenCallAudio("account-1", id, first).ok());
  ASSERT_TRUE(backend_.OpenCallAudio("account-1", id, NewTap()).ok());
  absl::Status third = backend_.OpenCallAudio("account-1", id, NewTap());
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(third.message(), "Too many audio streams on call " + std::to_string(id) +
                                 " (max-streams-per-call is 2)");
  first->Detach("Client went away");
  EXPECT_TRUE(backend_.OpenCallAudio("account-1", id, NewTap()).ok());
}

TEST_F(CallAudioBackendTest, ReceivedDigitsReachTheCallsListeningStreamsAndWakeThem) {
  int64_t id = Established();
  std::shared_ptr<CallAudioTap> listener = NewTap(CallAudioTap::Direction::kListen);
  std::shared_ptr<CallAudioTap> speaker = NewTap(CallAudioTap::Direction::kSpeak);
  int wakeups = 0;
  listener->SetWakeup([&] { ++wakeups; });
  ASSERT_TRUE(backend_.OpenCallAudio("account-1", id, listener).ok());
  ASSERT_TRUE(backend_.OpenCallAudio("account-1", id, speaker).ok());
  backend_.OnDtmfReceived(id, '7', 100, DtmfMethod::kInfo);
  backend_.OnDtmfReceived(id, '#', 80, DtmfMethod::kRfc4733);
  CallAudioTap::Notice notice;
  ASSERT_TRUE(listener->TakeNotice(&notice));
  EXPECT_EQ(notice.digit, '7');
  EXPECT_EQ(notice.duration_ms, 100);
  ASSERT_TRUE(listener->TakeNotice(&notice));
  EXPECT_EQ(notice.digit, '#');
  EXPECT_GE(wakeups, 1);
  EXPECT_FALSE(speaker->TakeNotice(&notice)) << "a speaking-only stream hears no digits";
  listener->Detach("Test over");
}

}  // namespace
}  // namespace telestra::backend

namespace telestra::backend {
namespace {

using ReloadTest = DtmfTest;

std::vector<std::string> Ops(const std::vector<FakeSipStack::Call>& calls, size_t from) {
  std::vector<std::string> ops;
  for (size_t i = from; i < calls.size(); ++i) {
    ops.push_back(calls[i].op + ":" + (calls[i].op == "hangup" ? std::to_string(calls[i].generation)
                                                               : calls[i].account.name));
  }
  return ops;
}

TEST_F(ReloadTest, AddedRemovedChangedAndUnchangedAccountsEachGetWhatTheyNeed) {
  int64_t kept_call = Established();  // account-1's
  std::vector<AccountConfig> plan = TwoAccounts();
  // account-1 unchanged; account-2 removed; account-3 added.
  AccountConfig third = plan[0];
  third.name = "account-3";
  third.user = "3003";
  std::vector<AccountConfig> reloaded = {plan[0], third};
  const size_t before = stack_.calls.size();
  GatewayBackend::ReloadSummary summary = backend_.Reload(reloaded);
  EXPECT_EQ(summary.added, std::vector<std::string>{"account-3"});
  EXPECT_EQ(summary.removed, std::vector<std::string>{"account-2"});
  EXPECT_TRUE(summary.changed.empty());
  EXPECT_EQ(summary.unchanged, std::vector<std::string>{"account-1"});
  EXPECT_EQ(Ops(stack_.calls, before),
            (std::vector<std::string>{"unregister:account-2", "register:account-3"}));
  EXPECT_EQ(backend_.GetStatus("account-2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusOf("account-3"), 100);
  ASSERT_EQ(backend_.ListAccounts().size(), 2u);
  EXPECT_EQ(backend_.ListAccounts()[1].account(), "account-3");
  // account-1's call goes on.
  EXPECT_EQ(CallOf(kept_call).state(), telestra::v1::CALL_STATE_ACTIVE);
}

TEST_F(ReloadTest, ARemovedAccountsCallsEndAndItsLateReportsAreIgnored) {
  int64_t call = Established();  // account-1's
  std::vector<AccountConfig> plan = TwoAccounts();
  RecordingListener other;
  hub_.Attach(&other);
  const size_t before = stack_.calls.size();
  backend_.Reload({plan[1]});
  EXPECT_EQ(Ops(stack_.calls, before),
            (std::vector<std::string>{"hangup:" + std::to_string(call), "unregister:account-1"}));
  ASSERT_GE(other.Count(telestra::v1::Event::kAccountStatus), 1);
  for (const auto& e : other.events) {
    if (e.has_account_status() && e.account_status().account() == "account-1") {
      EXPECT_EQ(e.account_status().account_status(), 0);
      EXPECT_EQ(e.account_status().reason(), "Removed from the plan");
    }
  }
  backend_.OnCallEnded(call, 0, "Local hangup");  // still reported as the call ends
  EXPECT_GE(other.Count(telestra::v1::Event::kCallEnded), 1);
  backend_.OnRegistration("account-1", 1, 200, "OK", false);  // too late: ignored
  EXPECT_EQ(backend_.OnIncomingCall("account-1", "3002", ""), -1);
  EXPECT_EQ(backend_.OnTransferRequested(call, "3003"), -1);
}

TEST_F(ReloadTest, AChangedSectionLogsInAgainAndReplacesAClientsLogin) {
  int64_t call = Established();
  telestra::v1::LoginCommand login;
  login.set_account("account-1");
  login.set_user("4001");
  login.set_pass("secret");
  login.set_server("127.0.0.1:5062");
  ASSERT_TRUE(backend_.Login(login).ok());
  std::vector<AccountConfig> plan = TwoAccounts();
  // The same plan: the client's login stays.
  size_t before = stack_.calls.size();
  GatewayBackend::ReloadSummary same = backend_.Reload(plan);
  EXPECT_EQ(same.unchanged.size(), 2u);
  EXPECT_EQ(stack_.calls.size(), before) << "nothing re-registers";
  EXPECT_EQ(stack_.calls.back().account.user, "4001");
  // A changed section: registers again with the plan's settings.
  plan[0].audio = "tone:440";
  GatewayBackend::ReloadSummary changed = backend_.Reload(plan);
  EXPECT_EQ(changed.changed, std::vector<std::string>{"account-1"});
  ASSERT_EQ(stack_.calls.size(), before + 1);
  EXPECT_EQ(stack_.calls.back().op, "register");
  EXPECT_EQ(stack_.calls.back().account.user, "3001");
  EXPECT_EQ(stack_.calls.back().account.audio, "tone:440");
  EXPECT_EQ(StatusOf("account-1"), 100);
  EXPECT_EQ(CallOf(call).state(), telestra::v1::CALL_STATE_ACTIVE) << "its calls go on";
}

}  // namespace
}  // namespace telestra::backend

namespace telestra::backend {
namespace {

// ---- After a restart: the journal's calls (docs/restart.md)

telestra::state::JournalCall JournaledCall(int64_t id, telestra::state::JournalDialog::Phase phase,
                                           bool local_hold = false) {
  telestra::state::JournalCall call;
  call.set_call_id(id);
  call.mutable_info()->set_account("account-1");
  call.mutable_info()->set_direction(telestra::v1::CALL_DIRECTION_OUTGOING);
  call.mutable_info()->set_state(telestra::v1::CALL_STATE_RINGING);
  call.mutable_info()->set_peer("3002");
  call.mutable_info()->set_start_unix_ms(1796600000000);
  call.mutable_dialog()->set_phase(phase);
  call.mutable_dialog()->set_dialog_call_id(absl::StrCat("cid-", id));
  call.mutable_dialog()->set_local_hold(local_hold);
  return call;
}

telestra::v1::Event CallEvent(int64_t id, bool ended) {
  telestra::v1::Event event;
  if (ended) {
    event.mutable_call_ended()->set_account("account-1");
    event.mutable_call_ended()->set_call_id(id);
  } else {
    event.mutable_call_ringing()->set_account("account-1");
    event.mutable_call_ringing()->set_call_id(id);
  }
  return event;
}

TEST_F(GatewayBackendTest, RestoredCallsKeepTheirIdsStatesAndPeersAndNewIdsStartAboveThem) {
  using Phase = telestra::state::JournalDialog;
  std::vector<RestoredCall> restored = backend_.RestoreCalls(
      {JournaledCall(7, Phase::CONFIRMED, /*local_hold=*/true), JournaledCall(9, Phase::DIALING)},
      /*next_call_id=*/1024);
  ASSERT_EQ(restored.size(), 2u);
  EXPECT_EQ(restored[0].call_id, 7);
  EXPECT_EQ(restored[0].account.name, "account-1");  // the plan's account, credentials included
  EXPECT_EQ(restored[0].account.password, "sip3001");
  absl::StatusOr<telestra::v1::Status> status = backend_.GetStatus("account-1");
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->calls_size(), 2);
  EXPECT_EQ(status->calls(0).call_id(), 7);
  EXPECT_EQ(status->calls(0).state(), telestra::v1::CALL_STATE_HELD);
  EXPECT_EQ(status->calls(0).peer(), "3002");
  EXPECT_EQ(status->calls(0).sip_call_id(), "cid-7");
  EXPECT_EQ(status->calls(1).state(), telestra::v1::CALL_STATE_RINGING);
  // The dialing one is ended by the stack; its end is reported as usual.
  backend_.OnCallEnded(9, 0, "Gateway restarted");
  ASSERT_GE(listener_.Count(telestra::v1::Event::kCallEnded), 1);
  EXPECT_EQ(listener_.events.back().call_ended().reason(), "Gateway restarted");
  backend_.Start();
  backend_.OnRegistration("account-1", stack_.calls[0].generation, 200, "OK", false);
  absl::StatusOr<int64_t> id = backend_.MakeCall("account-1", "3002", [](int64_t) {});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, 1024);
}

TEST_F(GatewayBackendTest, ARestoredCallWhoseEndIsInTheHistoryIsOverAndOneLeftOpenIsEnded) {
  using Phase = telestra::state::JournalDialog;
  // Call 3 ended just before the crash (its call-ended in the history, the
  // journal had not dropped it yet); call 4 rang but the journal never
  // noted it; call 5 is in the journal.
  const std::vector<telestra::v1::Event> history = {CallEvent(3, false), CallEvent(4, false),
                                                    CallEvent(3, true), CallEvent(5, false)};
  const std::vector<telestra::state::JournalCall> calls = {JournaledCall(3, Phase::CONFIRMED),
                                                           JournaledCall(5, Phase::CONFIRMED)};
  std::vector<RestoredCall> restored = backend_.RestoreCalls(calls, 1024, history);
  ASSERT_EQ(restored.size(), 1u);
  EXPECT_EQ(restored[0].call_id, 5);
  EXPECT_EQ(backend_.EndCallsLeftOpen(history, calls), 1);
  ASSERT_EQ(listener_.Count(telestra::v1::Event::kCallEnded), 1);
  EXPECT_EQ(listener_.events.back().call_ended().call_id(), 4);
  EXPECT_EQ(listener_.events.back().call_ended().account(), "account-1");
  EXPECT_EQ(listener_.events.back().call_ended().reason(), "Gateway restarted");
}

}  // namespace
}  // namespace telestra::backend
