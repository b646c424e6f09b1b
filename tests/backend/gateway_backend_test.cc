#include "backend/gateway_backend.h"

#include <vector>

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

TEST_F(GatewayBackendTest, CallCommandsAnswerNotSupportedYetForKnownAccounts) {
  telestra::v1::Command command;
  command.mutable_make_call()->set_account("account-1");
  command.mutable_make_call()->set_num("3002");
  dispatcher_.Execute(client_, command);
  ASSERT_EQ(listener_.events.size(), 1u);
  EXPECT_EQ(listener_.events[0].fail().error(), "Calls are not supported yet");
}

TEST_F(GatewayBackendTest, ListAccountsKeepsPlanOrder) {
  auto all = backend_.ListAccounts();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].account(), "account-1");
  EXPECT_EQ(all[1].account(), "account-2");
}

}  // namespace
}  // namespace telestra::backend
