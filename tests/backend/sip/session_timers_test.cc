// RFC 4028 session timers on calls (session_timers.cc) against a fake peer,
// with intervals of seconds (the stack's config allows that; a peer's are
// checked against session_min_se).
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backend/sip/sofia_sip_stack.h"
#include "gtest/gtest.h"
#include "tests/backend/sip/fake_sip_peer.h"

namespace telestra::backend {
namespace {

using testing::FakeSipPeer;
using testing::PeerSdp;
using testing::SipMessage;
using Responses = std::vector<FakeSipPeer::Response>;

class SessionTimersTest : public testing::StackTest {
 protected:
  // Session-Expires 3 s asked; peers may go down to 2 s.
  void Start(FakeSipPeer::Answer answer) {
    SipConfig config;
    config.session_expires = 3;
    config.session_min_se = 2;
    StartStack(
        [answer](int n, const SipMessage& request) -> Responses {
          if (request.Method() == "REGISTER") return {{"200 OK\r\nExpires: 300", ""}};
          return answer(n, request);
        },
        config);
  }
};

TEST_F(SessionTimersTest, A422RaisesOurIntervalAndWeRefreshWithUpdate) {
  Start([](int n, const SipMessage& request) -> Responses {
    if (request.Method() == "INVITE") {
      if (n == 0) return {{"422 Session Interval Too Small\r\nMin-SE: 4", ""}};
      return {{"200 OK\r\nSession-Expires: 4;refresher=uac\r\nAllow: INVITE, ACK, BYE, UPDATE",
               PeerSdp(30000)}};
    }
    if (request.Method() == "UPDATE" || request.Method() == "BYE") return {{"200 OK", ""}};
    return {};
  });
  ASSERT_TRUE(stack_->MakeCall(1, account_, "3002"));
  ASSERT_EQ(listener_.WaitFor("established 1"), "established 1");
  std::vector<SipMessage> invites = peer_->Received("INVITE");
  ASSERT_EQ(invites.size(), 2u);
  EXPECT_TRUE(absl::StrContains(invites[0].Header("Supported"), "timer")) << invites[0].text;
  EXPECT_EQ(invites[0].Header("Session-Expires"), "3");
  EXPECT_EQ(invites[1].Header("Session-Expires"), "4");
  EXPECT_EQ(invites[1].Header("Min-SE"), "4");
  // Half of 4 s later: an UPDATE without SDP, still refresher=uac.
  ASSERT_TRUE(peer_->WaitFor("UPDATE", 1, false, absl::Seconds(4)));
  SipMessage update = peer_->Received("UPDATE").front();
  EXPECT_EQ(update.Header("Session-Expires"), "4;refresher=uac");
  EXPECT_EQ(update.Body(), "");
  // And again after the next half interval; the call stays up.
  ASSERT_TRUE(peer_->WaitFor("UPDATE", 2, false, absl::Seconds(4)));
  for (const std::string& r : listener_.reports()) EXPECT_FALSE(absl::StartsWith(r, "ended"));
}

TEST_F(SessionTimersTest, WithoutUpdateInAllowTheRefreshIsAReinviteWithOurSdp) {
  Start([](int, const SipMessage& request) -> Responses {
    if (request.Method() == "INVITE") {
      return {{"200 OK\r\nSession-Expires: 2;refresher=uac", PeerSdp(30000)}};
    }
    if (request.Method() == "BYE") return {{"200 OK", ""}};
    return {};
  });
  ASSERT_TRUE(stack_->MakeCall(1, account_, "3002"));
  ASSERT_EQ(listener_.WaitFor("established 1"), "established 1");
  ASSERT_TRUE(peer_->WaitFor("INVITE", 2, false, absl::Seconds(3)));
  SipMessage refresh = peer_->Received("INVITE")[1];
  EXPECT_EQ(refresh.Header("Session-Expires"), "2;refresher=uac");
  EXPECT_TRUE(absl::StrContains(refresh.Body(), "m=audio 40000")) << refresh.Body();
  ASSERT_TRUE(peer_->WaitFor("ACK", 2)) << "the refresh's 2xx was not ACKed";
  EXPECT_TRUE(peer_->Received("UPDATE").empty());
}

TEST_F(SessionTimersTest, WhenTheFarEndRefreshesAndStopsTheSessionExpires) {
  Start([](int, const SipMessage& request) -> Responses {
    if (request.Method() == "INVITE") {
      return {{"200 OK\r\nSession-Expires: 3;refresher=uas", PeerSdp(30000)}};
    }
    if (request.Method() == "BYE") return {{"200 OK", ""}};
    return {};
  });
  const absl::Time start = absl::Now();
  ASSERT_TRUE(stack_->MakeCall(1, account_, "3002"));
  ASSERT_EQ(listener_.WaitFor("established 1"), "established 1");
  // 3 s - 1 s: our BYE.
  EXPECT_EQ(listener_.WaitFor("ended 1", absl::Seconds(5)), "ended 1 0 Session expired");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1900));
  EXPECT_EQ(peer_->Received("BYE").size(), 1u);
  EXPECT_TRUE(peer_->Received("UPDATE").empty()) << "we are not the refresher";
}

TEST_F(SessionTimersTest, AnIncomingInviteBelowOurMinSeIs422AndAnOkOneGetsSessionExpires) {
  Start([](int, const SipMessage&) -> Responses { return {}; });
  stack_->Register(account_, 1);
  ASSERT_EQ(listener_.WaitForRegistration(200).status, 200);
  auto invite = [&](const std::string& call_id, const std::string& session_expires) {
    std::string sdp = PeerSdp(30000);
    return absl::StrCat(
        "INVITE sip:3001@127.0.0.1:", stack_->port(), " SIP/2.0\r\nVia: SIP/2.0/UDP ",
        peer_->address(), ";branch=z9hG4bK-", call_id, "\r\nMax-Forwards: 70\r\n",
        "From: <sip:3002@127.0.0.1>;tag=caller\r\nTo: <sip:3001@127.0.0.1>\r\nCall-ID: ", call_id,
        "\r\nCSeq: 1 INVITE\r\nContact: <sip:3002@", peer_->address(), ">\r\n",
        "Supported: timer\r\nSession-Expires: ", session_expires,
        "\r\nContent-Type: application/sdp\r\nContent-Length: ", sdp.size(), "\r\n\r\n", sdp);
  };
  peer_->Send(invite("small", "1"), stack_->port());
  ASSERT_TRUE(peer_->WaitFor("INVITE", 1, /*responses=*/true));
  SipMessage refused = peer_->Received("INVITE", true).front();
  EXPECT_EQ(refused.Status(), 422);
  EXPECT_EQ(refused.Header("Min-SE"), "2");
  for (const std::string& r : listener_.reports()) EXPECT_FALSE(absl::StartsWith(r, "incoming"));

  peer_->Send(invite("fine", "5;refresher=uac"), stack_->port());
  ASSERT_EQ(listener_.WaitFor("incoming"), "incoming 1 3002");
  stack_->AnswerCall(1);
  for (int i = 0; i < 200; ++i) {
    bool answered = false;
    for (const SipMessage& m : peer_->Received("INVITE", true)) answered |= m.Status() == 200;
    if (answered) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  SipMessage ok;
  for (const SipMessage& m : peer_->Received("INVITE", true)) {
    if (m.Status() == 200) ok = m;
  }
  EXPECT_EQ(ok.Header("Session-Expires"), "5;refresher=uac") << ok.text;
  EXPECT_EQ(ok.Header("Require"), "timer");
}

}  // namespace
}  // namespace telestra::backend
