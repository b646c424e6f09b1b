// RFC 4028 session timers against sipp through Kamailio (issue 20), with
// RFC 4028's smallest interval, 90 s: about a minute each. They run in the
// plain phase only (skipped under the sanitizers, whose phases would pay
// that minute again).
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"

namespace telestra::testing {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

class SessionTimerTest : public SipPeerTest {
 protected:
  void SetUp() override {
    if (kSanitized) GTEST_SKIP() << "a minute or more each: plain phase only";
    SipPeerTest::SetUp();
  }
  // sipp sends no RTP: no RTP timeout (30 s) before the session timer.
  void StartGateway(std::vector<std::string> sip_settings = {}) {
    GatewayOptions options;
    options.rtp_settings = {"rtp-timeout = 0"};
    options.sip_settings = std::move(sip_settings);
    StartTwoAccounts(options);
  }
};

// With session-expires = 90, sipp (Min-SE 100) answers our INVITE with 422;
// the retry asks 100, which sipp takes with us as refresher: our UPDATE
// must come at 50 s (the scenario checks it and its Session-Expires),
// after which sipp hangs up.
TEST_F(SessionTimerTest, WeRetryA422AndRefreshAtHalfTheInterval) {
  StartGateway({"session-expires = 90"});
  SippProcess* sipp = StartUas("uas_session_timer.xml", {"-timeout", "150s"});
  ASSERT_NE(sipp, nullptr);
  client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3005"})");
  auto call_return = client_->WaitFor(IsEventOf("call-return", "account-1"));
  ASSERT_TRUE(call_return.has_value());
  const int64_t id = call_return->Int("call_id");
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value())
      << sipp->Describe();
  const absl::Time answered = absl::Now();
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", id), absl::Seconds(75));
  ASSERT_TRUE(ended.has_value()) << sipp->Describe();
  EXPECT_EQ(ended->Str("reason"), "Remote hangup") << ended->json;
  EXPECT_GE(absl::Now() - answered, absl::Seconds(45)) << "refreshed long before half of 100 s";
  ExpectSippSucceeds(*sipp);
}

// sipp calls with Session-Expires 90;refresher=uac and never refreshes: we
// end the call with BYE at 60 s (90 - 90/3), reason "Session expired".
TEST_F(SessionTimerTest, AFarEndThatStopsRefreshingIsHungUpWhenTheSessionExpires) {
  StartGateway();
  SippProcess* sipp = StartUac("uac_session_timer.xml", "3001", {"-timeout", "150s"});
  ASSERT_NE(sipp, nullptr);
  auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-1"));
  ASSERT_TRUE(incoming.has_value());
  const int64_t id = incoming->Int("call_id");
  client_->Send(absl::StrCat(R"({"cmd":"answer-call","account":"account-1","call_id":)", id, "}"));
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
  const absl::Time answered = absl::Now();
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", id), absl::Seconds(80));
  ASSERT_TRUE(ended.has_value()) << sipp->Describe();
  EXPECT_EQ(ended->Str("reason"), "Session expired") << ended->json;
  const absl::Duration lived = absl::Now() - answered;
  EXPECT_GE(lived, absl::Seconds(55)) << lived;
  EXPECT_LE(lived, absl::Seconds(65)) << lived;
  ExpectSippSucceeds(*sipp);
}

}  // namespace
}  // namespace telestra::testing
