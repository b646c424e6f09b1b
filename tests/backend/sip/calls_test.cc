// Calls (outgoing_calls.cc, incoming_calls.cc, call_ending.cc, call_media.cc)
// through SofiaSipStack's public face against a fake peer on loopback
// (fake_sip_peer.h) that plays the proxy and the far end: which SIP
// messages go out, and what the stack reports as the call moves between
// its states (call_leg.h).
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
using testing::PeerSdp;
using testing::RecordingListener;
using testing::SipMessage;
using Responses = std::vector<FakeSipPeer::Response>;

class CallsTest : public testing::StackTest {
 protected:
  // Starts the stack and a peer answering with `answer` (REGISTER always
  // 200).
  void Start(FakeSipPeer::Answer answer, RtpConfig rtp = RtpConfig()) {
    StartStack(
        [answer](int n, const SipMessage& request) -> Responses {
          if (request.Method() == "REGISTER") return {{"200 OK\r\nExpires: 300", ""}};
          return answer(n, request);
        },
        SipConfig(), rtp);
  }

  // Calls 3002 as call 1 and waits for the peer to get the INVITE.
  SipMessage Dial() {
    EXPECT_TRUE(stack_->MakeCall(1, account_, "3002"));
    EXPECT_TRUE(peer_->WaitFor("INVITE", 1));
    std::vector<SipMessage> invites = peer_->Received("INVITE");
    return invites.empty() ? SipMessage{} : invites.front();
  }

  // Registers the account (incoming calls are for registered accounts and
  // from their registrar).
  void RegisterAccount() {
    stack_->Register(account_, 1);
    ASSERT_EQ(listener_.WaitForRegistration(200).status, 200);
  }

};

TEST_F(CallsTest, AnOutgoingCallRingsIsAnsweredAndHungUpWithBye) {
  Start([](int, const SipMessage& request) -> Responses {
    if (request.Method() == "INVITE") return {{"180 Ringing", ""}, {"200 OK", PeerSdp(30000)}};
    if (request.Method() == "BYE") return {{"200 OK", ""}};
    return {};
  });
  SipMessage invite = Dial();
  // The INVITE goes to the proxy for 3002@its domain, with our SDP offer.
  EXPECT_TRUE(absl::StartsWith(invite.text, absl::StrCat("INVITE sip:3002@", peer_->address())))
      << invite.text;
  EXPECT_TRUE(absl::StrContains(invite.Body(), "m=audio 40000 RTP/AVP")) << invite.Body();
  EXPECT_EQ(listener_.WaitFor("ringing 1"), "ringing 1 180");
  EXPECT_EQ(listener_.WaitFor("established 1"), "established 1");
  ASSERT_TRUE(peer_->WaitFor("ACK", 1));
  // The far end's answer reached the media.
  std::optional<MediaParams> media = media_.Last(1);
  ASSERT_TRUE(media.has_value());
  EXPECT_EQ(media->remote_address, "127.0.0.1");
  EXPECT_EQ(media->remote_rtp_port, 30000);
  EXPECT_EQ(media->payload_type, 0);

  stack_->HangupCall(1);
  ASSERT_TRUE(peer_->WaitFor("BYE", 1));
  EXPECT_TRUE(absl::StartsWith(listener_.WaitFor("ended 1"), "ended 1"));
  EXPECT_FALSE(media_.IsOpen(1)) << "the call's RTP ports were not freed";
  EXPECT_EQ(listener_.reports(), (std::vector<std::string>{"ringing 1 180", "established 1",
                                                           listener_.WaitFor("ended 1")}));
  // Its SIP identity, and its media's last figures before it closed.
  SipCallDetails details = listener_.details(1);
  EXPECT_EQ(details.sip_call_id, invite.Header("Call-ID"));
  EXPECT_FALSE(details.sip_call_id.empty());
  EXPECT_EQ(details.remote_uri, absl::StrCat("sip:3002@", peer_->address()));
  EXPECT_EQ(listener_.quality(), (std::vector<std::string>{"1 final 0"}));
}

TEST_F(CallsTest, AnEstablishedCallsMediaIsReportedEveryQualityInterval) {
  RtpConfig rtp;
  rtp.quality_interval = 1;
  Start(
      [](int, const SipMessage& request) -> Responses {
        if (request.Method() == "INVITE") return {{"200 OK", PeerSdp(30000)}};
        if (request.Method() == "BYE") return {{"200 OK", ""}};
        return {};
      },
      rtp);
  Dial();
  ASSERT_EQ(listener_.WaitFor("established 1"), "established 1");
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (listener_.quality().size() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(listener_.quality(), (std::vector<std::string>{"1 live 0", "1 live 0"}));
  stack_->HangupCall(1);
  ASSERT_TRUE(absl::StartsWith(listener_.WaitFor("ended 1"), "ended 1"));
  EXPECT_EQ(listener_.quality().back(), "1 final 0");
}

TEST_F(CallsTest, EarlyMediaStartsWithA183sSdpAndEachProvisionalAnswerIsReported) {
  Start([](int, const SipMessage& request) -> Responses {
    if (request.Method() == "INVITE") {
      return {{"180 Ringing", ""}, {"183 Session Progress", PeerSdp(30002)},
              {"200 OK", PeerSdp(30002)}};
    }
    return {};
  });
  Dial();
  EXPECT_EQ(listener_.WaitFor("established 1"), "established 1");
  EXPECT_EQ(listener_.reports(), (std::vector<std::string>{"ringing 1 180",
                                                           "progress 1 183 early-media",
                                                           "established 1"}));
  std::optional<MediaParams> media = media_.Last(1);
  ASSERT_TRUE(media.has_value());
  EXPECT_EQ(media->remote_rtp_port, 30002);
}

TEST_F(CallsTest, TheFarEndsByeEndsTheCall) {
  Start([](int, const SipMessage& request) -> Responses {
    if (request.Method() == "INVITE") return {{"200 OK", PeerSdp(30000)}};
    return {};
  });
  SipMessage invite = Dial();
  ASSERT_EQ(listener_.WaitFor("established 1"), "established 1");
  ASSERT_TRUE(peer_->WaitFor("ACK", 1));
  peer_->SendInDialog("BYE", invite, "peer", 1, stack_->port());
  EXPECT_EQ(listener_.WaitFor("ended 1"), "ended 1 0 Remote hangup");
  ASSERT_TRUE(peer_->WaitFor("BYE", 1, /*responses=*/true));
  EXPECT_EQ(peer_->Received("BYE", true).front().Status(), 200);
  EXPECT_TRUE(peer_->Received("BYE").empty()) << "the stack sent a BYE of its own";
}

TEST_F(CallsTest, ABusyFarEndEndsTheCallWithItsStatusAndIsAcknowledged) {
  Start([](int, const SipMessage& request) -> Responses {
    if (request.Method() == "INVITE") return {{"486 Busy Here", ""}};
    return {};
  });
  Dial();
  EXPECT_EQ(listener_.WaitFor("ended 1"), "ended 1 486 Busy Here");
  EXPECT_TRUE(peer_->WaitFor("ACK", 1)) << "a failure answer must be ACKed";
  EXPECT_FALSE(media_.IsOpen(1));
}

TEST_F(CallsTest, HangingUpWhileRingingCancelsTheInvite) {
  Start([](int, const SipMessage& request) -> Responses {
    if (request.Method() == "INVITE") return {{"180 Ringing", ""}};
    // The CANCEL is answered, then the INVITE it cancels: 487.
    if (request.Method() == "CANCEL") return {{"200 OK", ""}};
    return {};
  });
  SipMessage invite = Dial();
  ASSERT_EQ(listener_.WaitFor("ringing 1"), "ringing 1 180");
  stack_->HangupCall(1);
  ASSERT_TRUE(peer_->WaitFor("CANCEL", 1));
  SipMessage cancel = peer_->Received("CANCEL").front();
  EXPECT_EQ(cancel.Header("Call-ID"), invite.Header("Call-ID"));
  EXPECT_TRUE(peer_->Received("BYE").empty()) << "an unanswered call is cancelled, not BYEd";
  // The INVITE's final answer, as the far end sends it after the CANCEL.
  std::string terminated =
      absl::StrCat("SIP/2.0 487 Request Terminated\r\nVia: ", invite.Header("Via"),
                   "\r\nFrom: ", invite.Header("From"), "\r\nTo: ", invite.Header("To"),
                   ";tag=peer\r\nCall-ID: ", invite.Header("Call-ID"),
                   "\r\nCSeq: ", invite.Header("CSeq"), "\r\nContent-Length: 0\r\n\r\n");
  peer_->Send(terminated, stack_->port());
  EXPECT_TRUE(absl::StartsWith(listener_.WaitFor("ended 1"), "ended 1"));
  EXPECT_TRUE(peer_->WaitFor("ACK", 1)) << "the 487 must be ACKed";
  EXPECT_EQ(listener_.reports().size(), 2u) << "ringing, then ended: nothing else";
}

TEST_F(CallsTest, AnIncomingCallRingsIsAnsweredAndConfirmedByTheAck) {
  // (The BYE is the stack's shutdown at the end of the test.)
  Start([](int, const SipMessage& request) -> Responses {
    if (request.Method() == "BYE") return {{"200 OK", ""}};
    return {};
  });
  RegisterAccount();
  listener_.set_next_incoming_id(7);
  peer_->Send(IncomingInvite("in-1"), stack_->port());
  EXPECT_EQ(listener_.WaitFor("incoming"), "incoming 7 3002");
  ASSERT_TRUE(peer_->WaitFor("INVITE", 1, /*responses=*/true));
  EXPECT_EQ(peer_->Received("INVITE", true).front().Status(), 180);
  EXPECT_TRUE(media_.IsOpen(7)) << "the RTP ports are reserved while it rings";
  EXPECT_EQ(listener_.details(7).sip_call_id, "in-1");
  EXPECT_EQ(listener_.details(7).remote_uri, "sip:3002@127.0.0.1");

  stack_->AnswerCall(7);
  ASSERT_TRUE(peer_->WaitFor("INVITE", 2, /*responses=*/true));
  SipMessage ok = peer_->Received("INVITE", true)[1];
  ASSERT_EQ(ok.Status(), 200);
  EXPECT_TRUE(absl::StrContains(ok.Body(), "m=audio 40000 RTP/AVP 0")) << ok.Body();
  // Not established until the ACK.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(listener_.WaitFor("established", absl::ZeroDuration()), "");
  std::string to = ok.Header("To");
  peer_->Send(
      absl::StrCat("ACK sip:3001@127.0.0.1:", stack_->port(), " SIP/2.0\r\n", "Via: SIP/2.0/UDP ",
                   peer_->address(), ";branch=z9hG4bK-ack-in-1\r\n",
                   "Max-Forwards: 70\r\nFrom: \"Alice\" <sip:3002@127.0.0.1>;tag=caller\r\n",
                   "To: ", to, "\r\nCall-ID: in-1\r\nCSeq: 1 ACK\r\n", "Content-Length: 0\r\n\r\n"),
      stack_->port());
  EXPECT_EQ(listener_.WaitFor("established"), "established 7");
  std::optional<MediaParams> media = media_.Last(7);
  ASSERT_TRUE(media.has_value());
  EXPECT_EQ(media->remote_rtp_port, 30000);
}

TEST_F(CallsTest, AnIncomingCallTheBackendRefusesIsAnswered480) {
  Start([](int, const SipMessage&) -> Responses { return {}; });
  RegisterAccount();
  listener_.set_next_incoming_id(-1);
  peer_->Send(IncomingInvite("in-2"), stack_->port());
  ASSERT_TRUE(peer_->WaitFor("INVITE", 1, /*responses=*/true));
  EXPECT_EQ(peer_->Received("INVITE", true).back().Status(), 480);
  EXPECT_EQ(media_.open_calls(), 0u);
}

TEST_F(CallsTest, AnInviteFromAStrangerIsRefused403AndNeverReported) {
  Start([](int, const SipMessage&) -> Responses { return {}; });
  // Not registered: the peer is not the registrar of any account here.
  peer_->Send(IncomingInvite("in-3"), stack_->port());
  ASSERT_TRUE(peer_->WaitFor("INVITE", 1, /*responses=*/true));
  EXPECT_EQ(peer_->Received("INVITE", true).back().Status(), 403);
  EXPECT_TRUE(listener_.reports().empty());
  EXPECT_EQ(stack_->stats().untrusted_requests, 1u);
}

}  // namespace
}  // namespace telestra::backend
