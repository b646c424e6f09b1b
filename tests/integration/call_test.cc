// Calls between two accounts of one gateway through a real Kamailio, as the
// vendor document's example: account-1 calls 3002 (account-2).
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"

namespace telestra::testing {
namespace {

class CallTest : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    GatewayOptions options = TwoAccounts(kamailio().server());
    options.tcp_settings = {"extended-events = false"};
    StartGatewayWithTwoClients(options);
  }

  // (Re)starts the gateway with `options` (both accounts through
  // Kamailio): client_ waits for both registrations, b_ is a second client.
  void StartGatewayWithTwoClients(const GatewayOptions& options) {
    b_.reset();
    StartGateway(options);
    if (HasFatalFailure()) return;
    b_ = ConnectNative(*gateway_);
    // Attached once it has a reply: a broadcast published before that
    // (the test's first call-incoming) would not be its.
    ASSERT_NE(b_, nullptr);
    ASSERT_EQ(WaitForAccountStatus(*b_, "account-2", 200), 200);
  }

  // On a fresh gateway (both accounts registered): account-1 calls
  // account-2 (ids 0 and 1), account-2 answers, account-1 hangs up.
  void FirstCallAnsweredThenHungUp(NativeClient& a) {
    a.Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
    ASSERT_TRUE(a.WaitFor(IsCallEvent("call-incoming", "account-2", 1)).has_value());
    a.Send(R"({"cmd":"answer-call","account":"account-2","call_id":1})");
    ASSERT_TRUE(a.WaitForAll({IsCallEvent("call-answered", "account-1", 0),
                              IsCallEvent("call-answered", "account-2", 1)}));
    a.Send(R"({"cmd":"hangup-call","account":"account-1","call_id":0})");
    ASSERT_TRUE(a.WaitForAll(
        {IsCallEvent("call-ended", "account-1", 0), IsCallEvent("call-ended", "account-2", 1)}));
  }

  // How many INVITEs Kamailio has received since it started: two for a
  // challenged call (without and with credentials), one for a call that
  // carried credentials at once.
  static int InvitesReceived() {
    auto out = kamailio().Kamcmd({"stats.get_statistics", "rcv_requests_invite"});
    if (!out.ok()) return -1;
    size_t at = out->find("= ");
    int count = -1;
    if (at == std::string::npos ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(out->substr(at + 2)), &count)) {
      return -1;
    }
    return count;
  }

  // account-1 calls 3002 and cancels once account-2 reports the call.
  void CallAndCancel(int64_t caller_id) {
    client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
    ASSERT_TRUE(
        client_->WaitFor(IsCallEvent("call-incoming", "account-2", caller_id + 1)).has_value());
    client_->Send(
        absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", caller_id, "}"));
    ASSERT_TRUE(client_->WaitForAll({IsCallEvent("call-ended", "account-1", caller_id),
                                     IsCallEvent("call-ended", "account-2", caller_id + 1)}));
  }

  std::unique_ptr<NativeClient> b_;
};

TEST_F(CallTest, SeedExampleCallAnswerAndHangup) {
  client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
  // The requester's first event of the call is call-return, with id 0.
  auto call_return = client_->Next();
  ASSERT_TRUE(call_return.has_value());
  EXPECT_EQ(call_return->json, R"({"event":"call-return","account":"account-1","call_id":0})");
  // Every client sees call-incoming for account-2 with id 1.
  for (NativeClient* client : {client_.get(), b_.get()}) {
    auto incoming = client->WaitFor(IsCallEvent("call-incoming", "account-2", 1));
    ASSERT_TRUE(incoming.has_value());
    EXPECT_EQ(incoming->json, R"({"event":"call-incoming","account":"account-2","call_id":1,)"
                              R"("caller":"3001","caller_name":"account-1"})");
  }
  EXPECT_EQ(CallState(*b_, "account-2", 1), "incoming");
  EXPECT_EQ(WaitForCallState(*b_, "account-1", 0, "ringing"), "ringing");

  b_->Send(R"({"cmd":"answer-call","account":"account-2","call_id":1})");
  for (NativeClient* client : {client_.get(), b_.get()}) {
    ASSERT_TRUE(client->WaitForAll({IsCallEvent("call-answered", "account-2", 1),
                                    IsCallEvent("call-answered", "account-1", 0)}));
  }
  EXPECT_EQ(CallState(*client_, "account-1", 0), "active");
  EXPECT_EQ(CallState(*client_, "account-2", 1), "active");

  client_->Send(R"({"cmd":"hangup-call","account":"account-1","call_id":0})");
  for (NativeClient* client : {client_.get(), b_.get()}) {
    ASSERT_TRUE(client->WaitForAll(
        {IsCallEvent("call-ended", "account-1", 0), IsCallEvent("call-ended", "account-2", 1)}));
  }
  // Exactly one call-ended per call.
  EXPECT_FALSE(client_
                   ->WaitFor([](const NativeEvent& e) { return e.event() == "call-ended"; },
                             absl::Milliseconds(500))
                   .has_value());
  EXPECT_EQ(CallState(*client_, "account-1", 0), "");
  EXPECT_EQ(CallState(*client_, "account-2", 1), "");
}

TEST_F(CallTest, HangupOfRingingCallCancelsItAndDeclineEndsBoth) {
  client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-incoming", "account-2", 1)).has_value());
  // The caller hangs up before the answer: CANCEL.
  client_->Send(R"({"cmd":"hangup-call","account":"account-1","call_id":0})");
  ASSERT_TRUE(client_->WaitForAll(
      {IsCallEvent("call-ended", "account-1", 0), IsCallEvent("call-ended", "account-2", 1)}));

  // The callee declines (486): the caller's call ends too.
  client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-incoming", "account-2", 3)).has_value());
  b_->Send(R"({"cmd":"hangup-call","account":"account-2","call_id":3})");
  ASSERT_TRUE(client_->WaitForAll(
      {IsCallEvent("call-ended", "account-2", 3), IsCallEvent("call-ended", "account-1", 2)}));
}

TEST_F(CallTest, ExtendedCallEndedCarriesCodeAndReason) {
  client_->Send(R"({"cmd":"subscribe","extended":true})");
  client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3999"})");  // nobody
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", 0));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Int("code"), 404) << ended->json;
  EXPECT_FALSE(ended->Str("reason").empty());
}

TEST_F(CallTest, SwitchCallHoldsTheOtherCallAndResumes) {
  client_->Send(R"({"cmd":"subscribe","extended":true})");
  // Two calls from account-1 to account-2, both answered.
  for (int i = 0; i < 2; ++i) {
    client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
    auto incoming = client_->WaitFor([](const NativeEvent& e) {
      return e.event() == "call-incoming" && e.Str("account") == "account-2";
    });
    ASSERT_TRUE(incoming.has_value());
    int64_t id = incoming->Int("call_id");
    client_->Send(
        absl::StrCat(R"({"cmd":"answer-call","account":"account-2","call_id":)", id, "}"));
    ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id - 1)).has_value());
  }
  // Calls of account-1: 0 and 2. Switch to 2: 0 is held.
  client_->Send(R"({"cmd":"switch-call","account":"account-1","call_id":2})");
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-held", "account-1", 0)).has_value());
  EXPECT_EQ(WaitForCallState(*b_, "account-1", 0, "held"), "held");
  EXPECT_EQ(CallState(*b_, "account-1", 2), "active");
  // The far end of call 0 (account-2's call 1) sees itself held.
  EXPECT_EQ(WaitForCallState(*b_, "account-2", 1, "remote-held"), "remote-held");
  // Switch back.
  client_->Send(R"({"cmd":"switch-call","account":"account-1","call_id":0})");
  // Each event follows its own call's re-INVITE answer: either may be first.
  ASSERT_TRUE(client_->WaitForAll(
      {IsCallEvent("call-resumed", "account-1", 0), IsCallEvent("call-held", "account-1", 2)}));
  EXPECT_EQ(WaitForCallState(*b_, "account-2", 1, "active"), "active");
  EXPECT_EQ(WaitForCallState(*b_, "account-2", 3, "remote-held"), "remote-held");
}

TEST_F(CallTest, BadCommandsNeverDisturbALiveCall) {
  client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-incoming", "account-2", 1)).has_value());
  b_->Send(R"({"cmd":"answer-call","account":"account-2","call_id":1})");
  // Both ends: the callee's call is up when the caller's ACK reaches it.
  ASSERT_TRUE(client_->WaitForAll({IsCallEvent("call-answered", "account-1", 0),
                                   IsCallEvent("call-answered", "account-2", 1)}));
  // Garbage, wrong ids, wrong accounts, wrong states.
  b_->SendRaw(std::string("{\"cmd\":\"hangup-call\",\"account\":\"account-2\",\"call_id\":", 52));
  b_->SendRaw(std::string("\0", 1));
  b_->Send(R"({"cmd":"hangup-call","account":"account-2","call_id":0})");  // not its call
  b_->Send(R"({"cmd":"answer-call","account":"account-2","call_id":1})");  // already up
  b_->Send(R"({"cmd":"hangup-call","account":"account-2","call_id":"x"})");
  b_->Send(R"({"cmd":"switch-call","account":"account-2","call_id":99})");
  auto unknown = b_->WaitFor([](const NativeEvent& e) {
    return e.event() == "fail" && absl::StrContains(e.Str("error"), "Unknown call id 0");
  });
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->Str("error"), "Unknown call id 0 for account: account-2");
  EXPECT_EQ(CallState(*client_, "account-1", 0), "active");
  EXPECT_EQ(CallState(*client_, "account-2", 1), "active");
  EXPECT_FALSE(client_
                   ->WaitFor([](const NativeEvent& e) { return e.event() == "call-ended"; },
                             absl::Milliseconds(300))
                   .has_value());
}

TEST_F(CallTest, LogoutEndsTheAccountsCalls) {
  client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-incoming", "account-2", 1)).has_value());
  b_->Send(R"({"cmd":"answer-call","account":"account-2","call_id":1})");
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", 0)).has_value());
  client_->Send(R"({"cmd":"logout","account":"account-1"})");
  ASSERT_TRUE(client_->WaitForAll(
      {IsCallEvent("call-ended", "account-1", 0), IsCallEvent("call-ended", "account-2", 1)}));
  EXPECT_EQ(WaitForAccountStatus(*client_, "account-1", 0), 0);
}

TEST_F(CallTest, CallsSurviveTheirApiClientDisconnecting) {
  client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
  ASSERT_TRUE(b_->WaitFor(IsCallEvent("call-incoming", "account-2", 1)).has_value());
  client_.reset();  // the client that placed the call goes away
  b_->Send(R"({"cmd":"answer-call","account":"account-2","call_id":1})");
  ASSERT_TRUE(b_->WaitFor(IsCallEvent("call-answered", "account-1", 0)).has_value());
  EXPECT_EQ(CallState(*b_, "account-1", 0), "active");
}

// The SIP thread's CPU time so far (utime + stime), in ms; -1 if there is
// no such thread.
int64_t SipThreadCpuMs(int pid) {
  auto stats = ThreadStats(pid);
  auto it = stats.find("telestra-sip");
  if (it == stats.end() || it->second.size() < 13) return -1;
  int64_t ticks = std::stoll(it->second[11]) + std::stoll(it->second[12]);
  return ticks * 1000 / sysconf(_SC_CLK_TCK);
}

// After each request it sends, the SIP thread polls for the answer for a
// millisecond instead of sleeping (SipThread::kAnswerPoll). Calls work,
// an idle gateway does not spin (REGISTER refreshes and sofia's timers cost
// no polling beyond that window), and SIGTERM still ends the loop.
TEST_F(CallTest, TheSipThreadPollsOnlyAfterItsRequestsAndRestsWhenIdle) {
  GatewayOptions options = TwoAccounts(kamailio().server());
  options.sip_settings = {"register-expires = 10"};  // a refresh every 5 s
  ASSERT_NO_FATAL_FAILURE(StartGatewayWithTwoClients(options));
  ASSERT_NO_FATAL_FAILURE(FirstCallAnsweredThenHungUp(*client_));
  // Idle for 6 s, with a REGISTER refresh of each account in it.
  const int pid = gateway_->process().pid();
  const int64_t before = SipThreadCpuMs(pid);
  ASSERT_GE(before, 0) << "no thread named telestra-sip";
  absl::SleepFor(absl::Seconds(6));
  EXPECT_LT(SipThreadCpuMs(pid) - before, 300) << "the SIP thread spins while idle";

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  auto exit_status = gateway_->process().WaitForExit(absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);
}

// The first INVITE of an account is challenged (407); later ones carry the
// credentials of that challenge and are not. A proxy that no longer knows
// the nonce (restarted: new secret) challenges again and the call goes on.
TEST_F(CallTest, LaterCallsReuseTheLastChallenge) {
  const int before = InvitesReceived();
  ASSERT_GE(before, 0);
  CallAndCancel(0);
  EXPECT_EQ(InvitesReceived(), before + 2) << "the first INVITE is challenged";
  for (int64_t id = 2; id <= 6; id += 2) CallAndCancel(id);
  EXPECT_EQ(InvitesReceived(), before + 2 + 3) << "later INVITEs were challenged";

  ASSERT_TRUE(kamailio().Restart().ok());
  ASSERT_EQ(InvitesReceived(), 0);
  client_->Send(R"({"cmd":"login","account":"account-1","user":"3001","pass":"sip3001",)"
                R"("server":")" +
                kamailio().server() + R"("})");
  client_->Send(R"({"cmd":"login","account":"account-2","user":"3002","pass":"sip3002",)"
                R"("server":")" +
                kamailio().server() + R"("})");
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline && (kamailio().CountRegistered("3001").value_or(0) != 1 ||
                                    kamailio().CountRegistered("3002").value_or(0) != 1)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(kamailio().CountRegistered("3002").value_or(0), 1);
  CallAndCancel(8);  // the cached nonce is unknown now: one fresh challenge
  EXPECT_EQ(InvitesReceived(), 2);
  CallAndCancel(10);
  EXPECT_EQ(InvitesReceived(), 3);
}

}  // namespace
}  // namespace telestra::testing
