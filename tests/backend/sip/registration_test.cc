// Registration (backend/sip/registration.cc) through SofiaSipStack's public
// face against a fake registrar on loopback (fake_sip_peer.h) that answers
// each REGISTER as the test says.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backend/sip/sofia_sip_stack.h"
#include "gtest/gtest.h"
#include "tests/backend/sip/fake_sip_peer.h"

namespace telestra::backend {
namespace {

using testing::FakeSipPeer;
using testing::RecordingListener;
using testing::SipMessage;
using Report = RecordingListener::Registration;

// A registrar that answers the n-th REGISTER (0-based) with `status`'s
// status line and extra headers.
FakeSipPeer::Answer Registrar(
    std::function<std::string(int n, const std::string& request)> status) {
  return [status](int n, const SipMessage& request) -> std::vector<FakeSipPeer::Response> {
    if (request.Method() != "REGISTER") return {};
    return {{status(n, request.text), ""}};
  };
}

constexpr char kChallenge[] =
    "401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"test\", nonce=\"n0nce\", "
    "algorithm=MD5, qop=\"auth\"";

bool HasAuthorization(const std::string& request) {
  return absl::StrContains(request, "\r\nAuthorization: Digest") &&
         absl::StrContains(request, "username=\"3001\"") &&
         absl::StrContains(request, "realm=\"test\"");
}

class RegistrationTest : public testing::StackTest {
 protected:
  // Starts the stack against a registrar answering with `answer`, and
  // registers account-1 there.
  void Start(std::function<std::string(int n, const std::string& request)> answer,
             SipConfig config = SipConfig()) {
    StartStack(Registrar(std::move(answer)), config);
    stack_->Register(account_, 1);
  }
};

TEST_F(RegistrationTest, AChallengeIsAnsweredOnceThenTheAccountIsRegistered) {
  Start([](int, const std::string& request) {
    return HasAuthorization(request) ? std::string("200 OK\r\nExpires: 300") : kChallenge;
  });
  Report ok = listener_.WaitForRegistration(200);
  ASSERT_EQ(ok.status, 200);
  std::vector<SipMessage> requests = peer_->Received("REGISTER");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_FALSE(HasAuthorization(requests[0].text));
  EXPECT_TRUE(HasAuthorization(requests[1].text));
  EXPECT_EQ(listener_.registrations().front().status, 100);  // "Registering" first
  // The binding's end, from the granted 300 s; the time both REGISTERs took.
  std::vector<absl::Time> expiries = listener_.expiries();
  ASSERT_EQ(expiries.size(), 1u);
  EXPECT_GE(expiries[0], requests[1].at + absl::Seconds(299));
  EXPECT_LE(expiries[0], absl::Now() + absl::Seconds(300));
  SofiaSipStack::Stats stats = stack_->stats();
  EXPECT_EQ(stats.registration_seconds.count, 1u);
  EXPECT_GE(stats.registration_seconds.sum, 0);
  EXPECT_LT(stats.registration_seconds.sum, 5);
}

TEST_F(RegistrationTest, ASecondChallengeIsReportedAndNotRetried) {
  Start([](int, const std::string&) { return std::string(kChallenge); });
  Report failed = listener_.WaitForRegistration(401);
  ASSERT_EQ(failed.status, 401);
  EXPECT_FALSE(failed.retrying);
  absl::SleepFor(absl::Milliseconds(500));  // nothing more may come
  EXPECT_EQ(peer_->Received("REGISTER").size(), 2u);
}

TEST_F(RegistrationTest, TheBindingIsRefreshedAtHalfItsGrantedLifetime) {
  Start([](int, const std::string&) { return std::string("200 OK\r\nExpires: 2"); });
  ASSERT_TRUE(peer_->WaitFor("REGISTER", 2, false, absl::Seconds(4)));
  std::vector<SipMessage> requests = peer_->Received("REGISTER");
  absl::Duration gap = requests[1].at - requests[0].at;
  EXPECT_GE(gap, absl::Milliseconds(900));
  EXPECT_LE(gap, absl::Milliseconds(1600));
}

TEST_F(RegistrationTest, ATransientFailureIsRetriedAfterTheBackoff) {
  SipConfig config;
  config.register_retry_min = 1;
  Start(
      [](int n, const std::string&) {
        return n == 0 ? std::string("503 Service Unavailable") : std::string("200 OK");
      },
      config);
  Report failed = listener_.WaitForRegistration(503);
  ASSERT_EQ(failed.status, 503);
  EXPECT_TRUE(failed.retrying);
  ASSERT_EQ(listener_.WaitForRegistration(200).status, 200);
  std::vector<SipMessage> requests = peer_->Received("REGISTER");
  ASSERT_GE(requests.size(), 2u);
  absl::Duration gap = requests[1].at - requests[0].at;
  EXPECT_GE(gap, absl::Milliseconds(750));   // 1 s -20%
  EXPECT_LE(gap, absl::Milliseconds(1700));  // 1 s +20%, and scheduling
}

TEST_F(RegistrationTest, UnregisterSendsExpiresZeroAndReportsLoggedOut) {
  Start([](int, const std::string&) { return std::string("200 OK\r\nExpires: 300"); });
  ASSERT_EQ(listener_.WaitForRegistration(200).status, 200);
  stack_->Unregister(account_.name, 2);
  Report out = listener_.WaitForRegistration(0);
  ASSERT_EQ(out.status, 0);
  EXPECT_EQ(out.reason, "Logged out");
  std::vector<SipMessage> requests = peer_->Received("REGISTER");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_TRUE(absl::StrContains(requests[1].text, "\r\nExpires: 0\r\n"));
}

}  // namespace
}  // namespace telestra::backend
