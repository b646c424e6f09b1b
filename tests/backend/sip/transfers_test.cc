// Call transfer (transfers.cc) through SofiaSipStack's public face against
// a fake peer: the REFERs we send and the NOTIFYs that finish them, and
// the REFERs we get and the calls and NOTIFYs they make.
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

constexpr char kSipfrag[] = "message/sipfrag;version=2.0";

class TransfersTest : public testing::StackTest {
 protected:
  // The peer answers INVITEs 180 + 200, REFERs with `refer_answer`, BYEs
  // and NOTIFYs 200.
  void Start(std::string refer_answer = "202 Accepted") {
    StartStack([refer_answer](int, const SipMessage& request) -> Responses {
      const std::string method = request.Method();
      if (method == "REGISTER") return {{"200 OK\r\nExpires: 300", ""}};
      if (method == "INVITE") return {{"180 Ringing", ""}, {"200 OK", PeerSdp(30000)}};
      if (method == "REFER") return {{refer_answer, ""}};
      if (method == "BYE" || method == "NOTIFY") return {{"200 OK", ""}};
      return {};
    });
    // Registered: REFERs are taken only from the account's registrar/proxy.
    stack_->Register(account_, 1);
    ASSERT_EQ(listener_.WaitForRegistration(200).status, 200);
  }
  // Call `id` to `number`, established; the peer's INVITE of it.
  SipMessage Establish(int64_t id, const std::string& number = "3002") {
    EXPECT_TRUE(stack_->MakeCall(id, account_, number));
    EXPECT_EQ(listener_.WaitFor(absl::StrCat("established ", id)),
              absl::StrCat("established ", id));
    std::vector<SipMessage> invites = peer_->Received("INVITE");
    return invites.empty() ? SipMessage{} : invites.back();
  }
  void Notify(const SipMessage& invite, int cseq, const std::string& status_line, bool final) {
    peer_->SendInDialog("NOTIFY", invite, "peer", cseq, stack_->port(), kSipfrag,
                        status_line + "\r\n",
                        absl::StrCat("Event: refer\r\nSubscription-State: ",
                                     final ? "terminated;reason=noresource" : "active;expires=60",
                                     "\r\n"));
  }
};

TEST_F(TransfersTest, ABlindTransferRefersToTheNumberAndEndsTheCallOnSuccess) {
  Start();
  SipMessage invite = Establish(1);
  stack_->TransferCall(1, "3003", -1);
  ASSERT_TRUE(peer_->WaitFor("REFER", 1));
  SipMessage refer = peer_->Received("REFER").front();
  EXPECT_EQ(refer.Header("Refer-To"), absl::StrCat("<sip:3003@", peer_->address(), ">"))
      << refer.text;
  EXPECT_TRUE(absl::StrContains(refer.Header("Referred-By"), "sip:3001@")) << refer.text;
  EXPECT_EQ(refer.Header("Call-ID"), invite.Header("Call-ID")) << "in the call's dialog";
  Notify(invite, 1, "SIP/2.0 100 Trying", false);
  EXPECT_EQ(listener_.WaitFor("transfer-progress 1"), "transfer-progress 1 100");
  Notify(invite, 2, "SIP/2.0 200 OK", true);
  ASSERT_TRUE(peer_->WaitFor("BYE", 1));
  EXPECT_EQ(listener_.WaitFor("ended 1"), "ended 1 0 Transferred");
  std::vector<std::string> progress;
  for (const std::string& r : listener_.reports()) {
    if (absl::StartsWith(r, "transfer-")) progress.push_back(r);
  }
  EXPECT_EQ(progress, (std::vector<std::string>{"transfer-progress 1 100",
                                                "transfer-progress 1 200"}));
  std::vector<SipMessage> answers = peer_->Received("NOTIFY", /*responses=*/true);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1].Status(), 200);
}

TEST_F(TransfersTest, ARefusedReferOrAFailedFinalNotifyLeavesTheCallUp) {
  Start("603 Decline");
  SipMessage invite = Establish(1);
  stack_->TransferCall(1, "3003", -1);
  EXPECT_EQ(listener_.WaitFor("transfer-failed 1"), "transfer-failed 1 603 Decline");
  stack_->TransferCall(1, "3004", -1);  // the next one is accepted but fails later
  ASSERT_TRUE(peer_->WaitFor("REFER", 2));
  absl::SleepFor(absl::Milliseconds(100));
  Notify(invite, 1, "SIP/2.0 486 Busy Here", true);
  ASSERT_TRUE(peer_->WaitFor("NOTIFY", 1, /*responses=*/true));
  absl::SleepFor(absl::Milliseconds(200));
  std::vector<std::string> failures;
  for (const std::string& r : listener_.reports()) {
    if (absl::StartsWith(r, "transfer-failed")) failures.push_back(r);
  }
  // The 603 REFER answer first; the second REFER got the same 603 from this
  // peer, so its NOTIFY finds no transfer: answered 481, nothing reported.
  EXPECT_EQ(failures, (std::vector<std::string>{"transfer-failed 1 603 Decline",
                                                "transfer-failed 1 603 Decline"}));
  EXPECT_EQ(peer_->Received("NOTIFY", true).front().Status(), 481);
  EXPECT_TRUE(peer_->Received("BYE").empty()) << "the call was ended";
}

TEST_F(TransfersTest, AFinalFailureInTheNotifyFailsTheTransfer) {
  Start();
  SipMessage invite = Establish(1);
  stack_->TransferCall(1, "3003", -1);
  ASSERT_TRUE(peer_->WaitFor("REFER", 1, /*responses=*/false));
  absl::SleepFor(absl::Milliseconds(100));
  Notify(invite, 1, "SIP/2.0 486 Busy Here", true);
  EXPECT_EQ(listener_.WaitFor("transfer-failed 1"), "transfer-failed 1 486 Busy Here");
  EXPECT_EQ(listener_.WaitFor("transfer-progress 1"), "transfer-progress 1 486");
  EXPECT_TRUE(peer_->Received("BYE").empty()) << "the call was ended";
  // A later transfer may be tried.
  stack_->TransferCall(1, "3005", -1);
  ASSERT_TRUE(peer_->WaitFor("REFER", 2));
}

TEST_F(TransfersTest, AnAttendedTransferRefersWithReplacesAndEndsBothCalls) {
  Start();
  SipMessage first = Establish(1);
  SipMessage second = Establish(2, "3003");
  stack_->TransferCall(1, "", 2);
  ASSERT_TRUE(peer_->WaitFor("REFER", 1));
  SipMessage refer = peer_->Received("REFER").front();
  const std::string refer_to = refer.Header("Refer-To");
  EXPECT_TRUE(absl::StartsWith(refer_to, absl::StrCat("<sip:3003@", peer_->address(), "?Replaces=")))
      << refer_to;
  // Call 2's dialog: its Call-ID, the far end's tag as to-tag, ours as from-tag.
  std::string call_id = second.Header("Call-ID");
  std::string escaped;
  for (char c : call_id) {
    escaped += c == '@' ? std::string("%40") : std::string(1, c);
  }
  EXPECT_TRUE(absl::StrContains(refer_to, escaped)) << refer_to << " / " << call_id;
  EXPECT_TRUE(absl::StrContains(refer_to, "to-tag%3Dpeer")) << refer_to;
  EXPECT_TRUE(absl::StrContains(refer_to, "from-tag%3D")) << refer_to;
  EXPECT_EQ(refer.Header("Call-ID"), first.Header("Call-ID"));
  Notify(first, 1, "SIP/2.0 200 OK", true);
  ASSERT_TRUE(peer_->WaitFor("BYE", 2));
  EXPECT_EQ(listener_.WaitFor("ended 1"), "ended 1 0 Transferred");
  EXPECT_EQ(listener_.WaitFor("ended 2"), "ended 2 0 Transferred");
}

TEST_F(TransfersTest, AReferFromTheFarEndStartsACallWithReplacesAndNotifiesItsProgress) {
  Start();
  listener_.set_next_incoming_id(7);
  SipMessage invite = Establish(1);
  peer_->SendInDialog("REFER", invite, "peer", 1, stack_->port(), "", "",
                      absl::StrCat("Refer-To: <sip:3003@", peer_->address(),
                                   "?Replaces=abc%40h%3Bto-tag%3Dx%3Bfrom-tag%3Dy>\r\n",
                                   "Referred-By: <sip:3002@", peer_->address(), ">\r\n"));
  EXPECT_EQ(listener_.WaitFor("referred 1"), "referred 1 3003 -> 7");
  ASSERT_TRUE(peer_->WaitFor("REFER", 1, /*responses=*/true));
  EXPECT_EQ(peer_->Received("REFER", true).front().Status(), 202);
  EXPECT_EQ(listener_.WaitFor("established 7"), "established 7");
  std::vector<SipMessage> invites = peer_->Received("INVITE");
  ASSERT_EQ(invites.size(), 2u);
  const SipMessage& transferred = invites[1];
  EXPECT_TRUE(absl::StartsWith(transferred.text, absl::StrCat("INVITE sip:3003@", peer_->address())))
      << transferred.text;
  EXPECT_EQ(transferred.Header("Replaces"), "abc@h;to-tag=x;from-tag=y") << transferred.text;
  EXPECT_TRUE(absl::StrContains(transferred.Header("Referred-By"), "sip:3002@"));
  // NOTIFYs in call 1's dialog: 100, 180, then 200 ending the subscription.
  ASSERT_TRUE(peer_->WaitFor("NOTIFY", 3));
  std::vector<SipMessage> notifies = peer_->Received("NOTIFY");
  ASSERT_EQ(notifies.size(), 3u);
  const char* lines[] = {"SIP/2.0 100 Trying", "SIP/2.0 180 Ringing", "SIP/2.0 200 OK"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(notifies[i].Header("Call-ID"), invite.Header("Call-ID"));
    EXPECT_EQ(notifies[i].Header("Event"), "refer");
    EXPECT_TRUE(absl::StartsWith(notifies[i].Header("Content-Type"), "message/sipfrag"));
    EXPECT_TRUE(absl::StartsWith(notifies[i].Body(), lines[i])) << notifies[i].Body();
    EXPECT_TRUE(absl::StartsWith(notifies[i].Header("Subscription-State"),
                                 i == 2 ? "terminated" : "active"))
        << notifies[i].text;
  }
}

TEST_F(TransfersTest, AReferToAnotherDomainNamesTheWholeUriAndIsCalledThroughTheProxy) {
  Start();
  listener_.set_next_incoming_id(7);
  SipMessage invite = Establish(1);
  peer_->SendInDialog("REFER", invite, "peer", 1, stack_->port(), "", "",
                      "Refer-To: <sip:x@other.example>\r\n");
  // call-started's num: the whole URI, not just "x" (which would be a
  // number at our own server).
  EXPECT_EQ(listener_.WaitFor("referred 1"), "referred 1 sip:x@other.example -> 7");
  ASSERT_TRUE(peer_->WaitFor("INVITE", 2));
  const SipMessage transferred = peer_->Received("INVITE")[1];
  EXPECT_TRUE(absl::StartsWith(transferred.text, "INVITE sip:x@other.example SIP/2.0"))
      << transferred.text;
  EXPECT_EQ(listener_.WaitFor("established 7"), "established 7");
}

TEST_F(TransfersTest, AReferIsDeclinedWhenThePlanSaysSoOrItIsBroken) {
  account_.accept_refer = false;
  Start();
  SipMessage invite = Establish(1);
  peer_->SendInDialog("REFER", invite, "peer", 1, stack_->port(), "", "",
                      absl::StrCat("Refer-To: <sip:3003@", peer_->address(), ">\r\n"));
  ASSERT_TRUE(peer_->WaitFor("REFER", 1, /*responses=*/true));
  EXPECT_EQ(peer_->Received("REFER", true).front().Status(), 603);
  EXPECT_EQ(peer_->Received("INVITE").size(), 1u) << "no call was started";
}

TEST_F(TransfersTest, AReferFromAStrangerIs403AndStartsNoCall) {
  Start();
  SipMessage invite = Establish(1);
  // The dialog's identifiers, sent from 127.0.0.2: not the account's proxy.
  FakeSipPeer stranger([](int, const SipMessage&) { return Responses{}; }, "127.0.0.2");
  stranger.SendInDialog("REFER", invite, "peer", 1, stack_->port(), "", "",
                        absl::StrCat("Refer-To: <sip:0900123@", peer_->address(), ">\r\n"));
  ASSERT_TRUE(stranger.WaitFor("REFER", 1, /*responses=*/true));
  EXPECT_EQ(stranger.Received("REFER", true).front().Status(), 403);
  for (const std::string& r : listener_.reports()) EXPECT_FALSE(absl::StartsWith(r, "referred"));
  EXPECT_EQ(peer_->Received("INVITE").size(), 1u) << "a call was started";
}

TEST_F(TransfersTest, ANotifyFromAStrangerIs403AndNeitherEndsNorFailsTheTransfer) {
  Start();
  SipMessage invite = Establish(1);
  stack_->TransferCall(1, "3003", -1);
  ASSERT_TRUE(peer_->WaitFor("REFER", 1, /*responses=*/false));
  // A final 200 in the call's dialog, sent from 127.0.0.2: not the proxy.
  FakeSipPeer stranger([](int, const SipMessage&) { return Responses{}; }, "127.0.0.2");
  stranger.SendInDialog("NOTIFY", invite, "peer", 1, stack_->port(), kSipfrag, "SIP/2.0 200 OK\r\n",
                        "Event: refer\r\nSubscription-State: terminated;reason=noresource\r\n");
  ASSERT_TRUE(stranger.WaitFor("NOTIFY", 1, /*responses=*/true));
  const SipMessage answer = stranger.Received("NOTIFY", true).front();
  EXPECT_EQ(answer.Status(), 403);
  EXPECT_TRUE(absl::StrContains(answer.Header("Warning"), "not from the account's proxy"))
      << answer.text;
  // The transfer goes on: the real far end's final NOTIFY still ends it.
  Notify(invite, 2, "SIP/2.0 200 OK", true);
  EXPECT_EQ(listener_.WaitFor("ended 1"), "ended 1 0 Transferred");
  std::vector<std::string> progress;
  for (const std::string& r : listener_.reports()) {
    if (absl::StartsWith(r, "transfer-")) progress.push_back(r);
  }
  EXPECT_EQ(progress, (std::vector<std::string>{"transfer-progress 1 200"}))
      << "the stranger's NOTIFY was reported";
}

TEST_F(TransfersTest, AReferWithoutReferToOrWithABadTargetIs400) {
  Start();
  SipMessage invite = Establish(1);
  peer_->SendInDialog("REFER", invite, "peer", 1, stack_->port());
  peer_->SendInDialog("REFER", invite, "peer", 2, stack_->port(), "", "",
                      "Refer-To: <sip:3003@evil host;maddr=x>\r\n");
  ASSERT_TRUE(peer_->WaitFor("REFER", 2, /*responses=*/true));
  for (const SipMessage& answer : peer_->Received("REFER", true)) {
    EXPECT_EQ(answer.Status(), 400) << answer.text;
  }
  for (const std::string& r : listener_.reports()) EXPECT_FALSE(absl::StartsWith(r, "referred"));
}

}  // namespace
}  // namespace telestra::backend
