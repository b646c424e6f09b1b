// DTMF on calls (dtmf_calls.cc) through SofiaSipStack's public face against
// a fake peer: which way digits go out (RFC 4733 through the media engine,
// or SIP INFO), and what the stack reports of the digits that come in.
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
using testing::PeerSdp;
using testing::SipMessage;
using Responses = std::vector<FakeSipPeer::Response>;

// PCMU plus telephone-event 101 on 127.0.0.1:`port`.
std::string PeerSdpWithEvents(int port) {
  return absl::StrCat("v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n",
                      "t=0 0\r\nm=audio ", port, " RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n",
                      "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n");
}

class DtmfCallsTest : public testing::StackTest {
 protected:
  // An established call 1 to 3002, answered with `sdp`; INFOs answered
  // with what `info_answer` says for the n-th one.
  SipMessage Establish(const std::string& sdp,
                       std::function<std::string(int n)> info_answer = [](int) {
                         return std::string("200 OK");
                       }) {
    StartStack([sdp, info_answer](int n, const SipMessage& request) -> Responses {
      if (request.Method() == "REGISTER") return {{"200 OK\r\nExpires: 300", ""}};
      if (request.Method() == "INVITE") return {{"200 OK", sdp}};
      if (request.Method() == "INFO") return {{info_answer(n), ""}};
      if (request.Method() == "BYE") return {{"200 OK", ""}};
      return {};
    });
    EXPECT_TRUE(stack_->MakeCall(1, account_, "3002"));
    EXPECT_TRUE(peer_->WaitFor("INVITE", 1));
    EXPECT_EQ(listener_.WaitFor("established 1"), "established 1");
    EXPECT_TRUE(peer_->WaitFor("ACK", 1));
    return peer_->Received("INVITE").front();
  }
};

TEST_F(DtmfCallsTest, OurOfferCarriesTelephoneEventAndNegotiatedDigitsGoToTheMedia) {
  SipMessage invite = Establish(PeerSdpWithEvents(30000));
  EXPECT_TRUE(absl::StrContains(invite.Body(), "telephone-event/8000")) << invite.Body();
  ASSERT_EQ(media_.Last(1)->telephone_event_payload_type, 101);
  stack_->SendDtmf(1, 7, "12#", 100);
  // The media engine has them (FakeMedia queues); its report comes back as
  // the stack's, and no INFO went out.
  for (int i = 0; i < 100 && media_.dtmf_queued().empty(); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(media_.dtmf_queued(), (std::vector<std::string>{"1 12# 100 7"}));
  media_.handlers().sent(1, 7);
  EXPECT_EQ(listener_.WaitFor("dtmf-sent 1"), "dtmf-sent 1 7 200 OK");
  media_.handlers().received(1, '5', 160);
  EXPECT_EQ(listener_.WaitFor("dtmf 1"), "dtmf 1 5 160 rfc4733");
  EXPECT_TRUE(peer_->Received("INFO").empty());
}

TEST_F(DtmfCallsTest, WithoutTelephoneEventEachDigitIsAnInfoAfterThePreviousOnesAnswer) {
  Establish(PeerSdp(30000));
  stack_->SendDtmf(1, 3, "4*", 250);
  ASSERT_TRUE(peer_->WaitFor("INFO", 2));
  EXPECT_EQ(listener_.WaitFor("dtmf-sent 1"), "dtmf-sent 1 3 200 OK");
  std::vector<SipMessage> infos = peer_->Received("INFO");
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[0].Header("Content-Type"), "application/dtmf-relay");
  EXPECT_EQ(infos[0].Body(), "Signal=4\r\nDuration=250\r\n");
  EXPECT_EQ(infos[1].Body(), "Signal=*\r\nDuration=250\r\n");
  EXPECT_NE(infos[0].Header("CSeq"), infos[1].Header("CSeq"));
  EXPECT_TRUE(media_.dtmf_queued().empty());
}

TEST_F(DtmfCallsTest, ThePlansDtmfInfoSendsInfoEvenWhenTelephoneEventWasNegotiated) {
  account_.dtmf_info = true;
  Establish(PeerSdpWithEvents(30000));
  stack_->SendDtmf(1, 1, "9", 100);
  ASSERT_TRUE(peer_->WaitFor("INFO", 1));
  EXPECT_EQ(peer_->Received("INFO").front().Body(), "Signal=9\r\nDuration=100\r\n");
  EXPECT_EQ(listener_.WaitFor("dtmf-sent 1"), "dtmf-sent 1 1 200 OK");
  EXPECT_TRUE(media_.dtmf_queued().empty());
}

TEST_F(DtmfCallsTest, ARefusedInfoFailsItsRequestAndTheNextRequestGoesOn) {
  Establish(PeerSdp(30000), [](int n) {
    return std::string(n == 0 ? "405 Method Not Allowed" : "200 OK");
  });
  stack_->SendDtmf(1, 1, "12", 100);  // "1" refused: "2" is not sent
  stack_->SendDtmf(1, 2, "3", 100);
  EXPECT_EQ(listener_.WaitFor("dtmf-sent 1 1"), "dtmf-sent 1 1 405 Method Not Allowed");
  EXPECT_EQ(listener_.WaitFor("dtmf-sent 1 2"), "dtmf-sent 1 2 200 OK");
  std::vector<SipMessage> infos = peer_->Received("INFO");
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[1].Body(), "Signal=3\r\nDuration=100\r\n");
}

TEST_F(DtmfCallsTest, InfoDigitsFromTheFarEndAreReportedAndBadOnesRefused) {
  SipMessage invite = Establish(PeerSdp(30000));
  peer_->SendInDialog("INFO", invite, "peer", 1, stack_->port(), "application/dtmf-relay",
                      "Signal=#\r\nDuration=160\r\n");
  EXPECT_EQ(listener_.WaitFor("dtmf 1"), "dtmf 1 # 160 info");
  peer_->SendInDialog("INFO", invite, "peer", 2, stack_->port(), "application/dtmf", "7");
  ASSERT_TRUE(peer_->WaitFor("INFO", 2, /*responses=*/true));
  peer_->SendInDialog("INFO", invite, "peer", 3, stack_->port(), "application/dtmf-relay",
                      "Signal=Z\r\n");
  // Another INFO package is answered 200 and not reported.
  peer_->SendInDialog("INFO", invite, "peer", 4, stack_->port(), "application/media_control+xml",
                      "<media_control/>");
  ASSERT_TRUE(peer_->WaitFor("INFO", 4, /*responses=*/true));
  std::vector<SipMessage> answers = peer_->Received("INFO", /*responses=*/true);
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers[0].Status(), 200);
  EXPECT_EQ(answers[1].Status(), 200);
  EXPECT_EQ(answers[2].Status(), 400);
  EXPECT_TRUE(absl::StrContains(answers[2].Header("Warning"), "Invalid DTMF digit: 'Z'"))
      << answers[2].text;
  EXPECT_EQ(answers[3].Status(), 200);
  std::vector<std::string> digits;
  for (const std::string& report : listener_.reports()) {
    if (absl::StartsWith(report, "dtmf ")) digits.push_back(report);
  }
  EXPECT_EQ(digits, (std::vector<std::string>{"dtmf 1 # 160 info", "dtmf 1 7 0 info"}));
}

TEST_F(DtmfCallsTest, DigitsForACallThatIsNotEstablishedFail) {
  StartStack([](int, const SipMessage& request) -> Responses {
    if (request.Method() == "INVITE") return {{"180 Ringing", ""}};
    return {{"200 OK", ""}};
  });
  ASSERT_TRUE(stack_->MakeCall(1, account_, "3002"));
  ASSERT_EQ(listener_.WaitFor("ringing 1"), "ringing 1 180");
  stack_->SendDtmf(1, 5, "1", 100);
  EXPECT_EQ(listener_.WaitFor("dtmf-sent 1"), "dtmf-sent 1 5 0 the call is not established");
  EXPECT_TRUE(peer_->Received("INFO").empty());
}

}  // namespace
}  // namespace telestra::backend
