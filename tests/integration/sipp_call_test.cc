// Calls between the gateway and sipp through a real Kamailio (issue 3):
// sipp as the callee (answers, holds, re-INVITEs without SDP, refuses, rings
// until cancelled) and as the caller (407 auth, CANCEL, BYE, delayed offer),
// and the call failures the gateway must report with the right code.
//
// sipp runs as user 3005: a UAS first registers its port with
// tests/support/sipp/register.xml, then listens on it. Scenarios:
// tests/integration/sipp/*.xml; each checks what it receives and exits
// non-zero on anything unexpected.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"
#include "tests/support/kamailio.h"
#include "tests/support/ports.h"

namespace telestra::testing {
namespace {

// For scenarios where two messages cross Kamailio, which may reorder them:
// a message that comes when the scenario expects another is not an error
// (the scenario still checks every message it waits for).
const std::vector<std::string> kReorderedOk = {"-default_behaviors", "all,-abortunexp"};

class SippCallTest : public SipPeerTest {
 protected:
  // A sipp UAC running `scenario` calls account-1; returns the id of the
  // call's call-incoming (-1, with a test failure, if none came).
  int64_t SippCallsAccount1(const std::string& scenario, SippProcess** sipp,
                            std::vector<std::string> args = {}) {
    *sipp = StartUac(scenario, "3001", std::move(args));
    if (*sipp == nullptr) return -1;
    auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-1"));
    EXPECT_TRUE(incoming.has_value()) << "no call-incoming";
    if (!incoming) return -1;
    EXPECT_EQ(incoming->Str("caller"), kSippUser);
    return incoming->Int("call_id");
  }

  // account-1 calls a sipp UAS running `scenario` (more sipp `args`), which
  // answers; the call's id (-1, with a test failure, if it was not answered).
  int64_t CallSippUas(const std::string& scenario, SippProcess** sipp,
                      std::vector<std::string> args = {}) {
    *sipp = StartUas(scenario, std::move(args));
    if (*sipp == nullptr) return -1;
    const int64_t id = MakeCall("account-1", kSippUser);
    if (!client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value()) {
      ADD_FAILURE() << "call " << id << " not answered; " << (*sipp)->Describe();
      return -1;
    }
    return id;
  }

  // Waits for call-ended of (account, id); checks its extended code.
  std::optional<NativeEvent> WaitEnded(const std::string& account, int64_t id,
                                       absl::Duration timeout = absl::Seconds(10)) {
    auto ended = client_->WaitFor(IsCallEvent("call-ended", account, id), timeout);
    EXPECT_TRUE(ended.has_value()) << "no call-ended for " << account << " call " << id;
    return ended;
  }

  // account-1 calls account-2, which answers; `*id` is account-1's call.
  void CallAccount2AndAnswer(int64_t* id) {
    *id = MakeCall("account-1", "3002");
    auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-2"));
    ASSERT_TRUE(incoming.has_value());
    Command("answer-call", "account-2", incoming->Int("call_id"));
    ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", *id)).has_value());
  }

  // Call `id` of account-1 ends with sipp's BYE.
  void ExpectSippHangsUp(int64_t id) {
    auto ended = WaitEnded("account-1", id);
    ASSERT_TRUE(ended.has_value());
    EXPECT_EQ(ended->Str("reason"), "Remote hangup") << ended->json;
  }

  // None of the events the client has passed over so far is `event`.
  void ExpectNoneSkipped(const std::string& event) {
    for (const NativeEvent& e : client_->skipped()) EXPECT_NE(e.event(), event) << e.json;
  }

  // Calls a sipp UAS running `scenario`, which holds the gateway 500 ms
  // after the answer, for 1.5 s, resumes it and later hangs up: the call
  // goes remote-held, then active, then ends by sipp's BYE.
  void ExpectSippHoldsAndResumes(const std::string& scenario) {
    StartTwoAccounts();
    SippProcess* sipp = StartUas(scenario);
    ASSERT_NE(sipp, nullptr);
    int64_t id = MakeCall("account-1", kSippUser);
    ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
    EXPECT_EQ(WaitForCallState(*client_, "account-1", id, "remote-held", absl::Seconds(3)),
              "remote-held");
    EXPECT_EQ(WaitForCallState(*client_, "account-1", id, "active", absl::Seconds(3)), "active");
    ExpectSippHangsUp(id);
    // No call-held/call-resumed: those report the gateway's own holds only.
    ExpectNoneSkipped("call-held");
    ExpectSippSucceeds(*sipp);
  }

  // account-1 hangs up call `id`, still ringing at sipp: one CANCEL, the
  // call ends 487, sipp's scenario succeeds.
  void ExpectHangupCancelsWith487(SippProcess& sipp, int64_t id) {
    Command("hangup-call", "account-1", id);
    auto ended = WaitEnded("account-1", id);
    ASSERT_TRUE(ended.has_value());
    EXPECT_EQ(ended->Int("code"), 487) << ended->json;
    ExpectSippSucceeds(sipp);
    EXPECT_EQ(Requests(ReceivedMessages(sipp.Messages()), "CANCEL").size(), 1u);
  }

  // Waits until sipp has received `count` distinct `method` requests.
  static bool WaitForRequests(SippProcess& sipp, const std::string& method, size_t count) {
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      if (Requests(ReceivedMessages(sipp.Messages()), method).size() >= count) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }
};

// ------------------------------------------------------ gateway calls sipp

TEST_F(SippCallTest, SwitchCallHoldsSippWithSendonlyResumesAndSippHangsUp) {
  StartTwoAccounts();
  auto sipp = StartUas("uas_hold.xml");
  ASSERT_NE(sipp, nullptr);

  int64_t to_sipp = MakeCall("account-1", kSippUser);
  auto ringing = client_->WaitFor(IsCallEvent("call-ringing", "account-1", to_sipp));
  ASSERT_TRUE(ringing.has_value());
  EXPECT_EQ(ringing->Int("code"), 180);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", to_sipp)).has_value());
  EXPECT_EQ(CallState(*client_, "account-1", to_sipp), "active");

  // A second call (to account-2) to switch to: the call to sipp is held.
  int64_t to_b = -1;
  ASSERT_NO_FATAL_FAILURE(CallAccount2AndAnswer(&to_b));

  Command("switch-call", "account-1", to_b);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-held", "account-1", to_sipp)).has_value());
  EXPECT_EQ(WaitForCallState(*client_, "account-1", to_sipp, "held"), "held");
  // call-held comes with sipp's 200; resume only once the hold re-INVITE
  // is complete at sipp (its ACK arrived), or the resume INVITE may
  // overtake that ACK in Kamailio and confuse the scenario.
  EXPECT_TRUE(WaitForRequests(*sipp, "ACK", 2));

  Command("switch-call", "account-1", to_sipp);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-resumed", "account-1", to_sipp)).has_value());

  ExpectSippHangsUp(to_sipp);  // after the resume
  ExpectSippSucceeds(*sipp);

  // On the wire: the initial offer is sendrecv, the hold offer a=sendonly,
  // the resume offer has no direction attribute again.
  std::vector<std::string> invites = Requests(ReceivedMessages(sipp->Messages()), "INVITE");
  ASSERT_EQ(invites.size(), 3u) << sipp->Messages();
  EXPECT_FALSE(absl::StrContains(invites[0], "a=sendonly")) << invites[0];
  EXPECT_TRUE(absl::StrContains(invites[1], "a=sendonly")) << invites[1];
  for (const char* direction : {"a=sendonly", "a=recvonly", "a=inactive"}) {
    EXPECT_FALSE(absl::StrContains(invites[2], direction)) << invites[2];
  }
  // Every SDP names the gateway's media address only (o= and c=).
  for (const std::string& invite : invites) {
    EXPECT_TRUE(absl::StrContains(invite, "\no=- ")) << invite;
    EXPECT_TRUE(absl::StrContains(invite, "IN IP4 127.0.0.1\n")) << invite;
    size_t o = invite.find("\no=");
    EXPECT_TRUE(
        absl::StrContains(invite.substr(o, invite.find('\n', o + 1) - o), "IN IP4 127.0.0.1"))
        << invite;
  }
}

TEST_F(SippCallTest, HoldRefusedBySippLeavesTheCallActiveAndFailsWithTheCode) {
  StartTwoAccounts();
  auto sipp = StartUas("uas_hold_refused.xml");
  ASSERT_NE(sipp, nullptr);

  int64_t to_sipp = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", to_sipp)).has_value());
  int64_t to_b = -1;
  ASSERT_NO_FATAL_FAILURE(CallAccount2AndAnswer(&to_b));

  Command("switch-call", "account-1", to_b);
  auto fail = client_->WaitFor(
      [](const NativeEvent& e) { return e.event() == "fail" && e.Str("account") == "account-1"; });
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->Str("error"),
            absl::StrCat("Call ", to_sipp, " could not be held: 488 Not Acceptable Here"));
  EXPECT_EQ(CallState(*client_, "account-1", to_sipp), "active");
  ExpectNoneSkipped("call-held");
  ExpectSippHangsUp(to_sipp);  // the call goes on until then
  ExpectSippSucceeds(*sipp);
}

TEST_F(SippCallTest, SippHoldIsReportedAsRemoteHeldAndOfferlessReinviteGetsAnOffer) {
  // sipp: a=sendonly 500 ms after the answer, held for 1.5 s; then it
  // resumes (no direction) and re-INVITEs without SDP: the gateway offers in
  // its 200 (checked by the scenario) and the call stays active.
  ExpectSippHoldsAndResumes("uas_remote_hold.xml");
}

TEST_F(SippCallTest, AReinviteBeforeTheAckOfThePreviousOneIsAnswered200) {
  // sipp holds the gateway and, before it ACKs the 200, resumes it: as when
  // Kamailio's workers deliver the ACK after the next re-INVITE. The second
  // re-INVITE gets 200, not 491 (checked by the scenario); the late ACK is
  // absorbed and the call stays up until sipp's BYE.
  StartTwoAccounts();
  SippProcess* sipp = nullptr;
  int64_t id = CallSippUas("uas_reinvite_before_ack.xml", &sipp);
  ASSERT_GE(id, 0);
  ExpectSippHangsUp(id);
  ExpectSippSucceeds(*sipp);
  EXPECT_EQ(Requests(ReceivedMessages(sipp->Messages()), "INVITE").size(), 1u);
}

TEST_F(SippCallTest, SippUpdatesHoldAndResumeAndAReofferWithoutOurCodecsIsRefused) {
  // sipp: UPDATE a=sendonly 500 ms after the answer (answered a=recvonly,
  // checked by the scenario), held for 1.5 s, then an UPDATE resumes. Then
  // a re-INVITE with G.729 only gets 488 with a Warning (checked by the
  // scenario), and the call goes on until sipp's BYE.
  ExpectSippHoldsAndResumes("uas_update.xml");
}

TEST_F(SippCallTest, AnAnswerWithoutOurCodecsIsAckedAndHungUpWith488) {
  StartTwoAccounts();
  auto sipp = StartUas("uas_bad_answer.xml");
  ASSERT_NE(sipp, nullptr);
  int64_t id = MakeCall("account-1", kSippUser);
  auto ended = WaitEnded("account-1", id);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Int("code"), 488) << ended->json;
  EXPECT_EQ(ended->Str("reason"), "Unusable SDP answer: the answer accepts no codec of our offer");
  // A call without audio is never reported answered.
  ExpectNoneSkipped("call-answered");
  ExpectSippSucceeds(*sipp);  // it got the ACK and the BYE
  EXPECT_EQ(CallState(*client_, "account-1", id), "");
}

// Hung up before the far end rings: the CANCEL waits for its 180 (a CANCEL
// that crosses the 180 at the proxy can be lost there), then the call ends
// 487 as usual.
TEST_F(SippCallTest, HangupBeforeTheFarEndRingsCancelsOnceItRings) {
  StartTwoAccounts();
  auto sipp = StartUas("uas_ring_late.xml");
  ASSERT_NE(sipp, nullptr);
  int64_t id = MakeCall("account-1", kSippUser);
  // Once the INVITE is at sipp (past Kamailio's 407 of a first call), and
  // 300 ms before sipp rings.
  ASSERT_TRUE(WaitForRequests(*sipp, "INVITE", 1));
  ASSERT_NO_FATAL_FAILURE(ExpectHangupCancelsWith487(*sipp, id));
  EXPECT_TRUE(absl::StrContains(gateway_->ReadLog(),
                                absl::StrCat("call ", id, ": CANCEL waits for the far end")));
}

// Hung up while the far end challenges the INVITE (407 after 300 ms, no
// provisional response): the INVITE is not sent again with credentials,
// and the call ends as hung up, not as a failed authentication.
TEST_F(SippCallTest, HangupWhileTheInviteIsChallengedEndsAsHungUp) {
  StartTwoAccounts();
  auto sipp = StartUas("uas_challenge_late.xml");
  ASSERT_NE(sipp, nullptr);
  int64_t id = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(WaitForRequests(*sipp, "INVITE", 1));
  Command("hangup-call", "account-1", id);
  auto ended = WaitEnded("account-1", id);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Int("code"), 0) << ended->json;
  EXPECT_EQ(ended->Str("reason"), "Hung up") << ended->json;
  ExpectSippSucceeds(*sipp);
  const auto received = ReceivedMessages(sipp->Messages());
  EXPECT_EQ(Requests(received, "INVITE").size(), 1u) << "sent again with credentials";
  EXPECT_EQ(Requests(received, "CANCEL").size(), 0u) << "nothing was left to cancel";
  EXPECT_EQ(CallState(*client_, "account-1", id), "");
}

TEST_F(SippCallTest, HangupOfACallRingingAtSippCancelsItWith487) {
  StartTwoAccounts();
  auto sipp = StartUas("uas_ring.xml");
  ASSERT_NE(sipp, nullptr);
  int64_t id = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ringing", "account-1", id)).has_value());
  EXPECT_EQ(CallState(*client_, "account-1", id), "ringing");
  ASSERT_NO_FATAL_FAILURE(ExpectHangupCancelsWith487(*sipp, id));
}

TEST_F(SippCallTest, CancelThatIsNeverAnsweredEndsTheCallWithinSeconds) {
  StartTwoAccounts();
  auto sipp = StartUas("uas_ignore_cancel.xml");
  ASSERT_NE(sipp, nullptr);
  int64_t id = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ringing", "account-1", id)).has_value());
  const absl::Time hangup = absl::Now();
  Command("hangup-call", "account-1", id);
  auto ended = WaitEnded("account-1", id);
  ASSERT_TRUE(ended.has_value());
  const absl::Duration took = absl::Now() - hangup;
  EXPECT_EQ(ended->Int("code"), 487) << ended->json;
  EXPECT_EQ(ended->Str("reason"), "No answer to CANCEL") << ended->json;
  EXPECT_GE(took, absl::Seconds(3));  // it did wait for an answer
  EXPECT_LT(took, absl::Seconds(8));  // not sofia's 32 s transaction timeout
  EXPECT_EQ(CallState(*client_, "account-1", id), "");
  // Exactly one call-ended, also when sofia's transaction ends later.
  EXPECT_FALSE(
      client_->WaitFor(IsCallEvent("call-ended", "account-1", id), absl::Seconds(1)).has_value());
}

TEST_F(SippCallTest, FailedCallsEndWithTheSipCode) {
  StartTwoAccounts();
  // 486 from the callee.
  auto sipp = StartUas("uas_busy.xml");
  ASSERT_NE(sipp, nullptr);
  int64_t busy = MakeCall("account-1", kSippUser);
  auto ended = WaitEnded("account-1", busy);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Int("code"), 486) << ended->json;
  EXPECT_EQ(ended->Str("reason"), "Busy Here");
  ExpectSippSucceeds(*sipp);

  // 404 from Kamailio: no such user.
  int64_t unknown = MakeCall("account-1", "3999");
  ended = WaitEnded("account-1", unknown);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Int("code"), 404) << ended->json;

  // 480 from Kamailio: a known user that is not registered.
  int64_t offline = MakeCall("account-1", "3007");
  ended = WaitEnded("account-1", offline);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Int("code"), 480) << ended->json;

  // None of them is left in the account's calls.
  EXPECT_EQ(CallState(*client_, "account-1", busy), "");
  EXPECT_EQ(CallState(*client_, "account-1", offline), "");
}

// ------------------------------------------------------ sipp calls gateway

TEST_F(SippCallTest, SippCancelsBeforeAnswerAndAnsweringTheEndedCallFails) {
  StartTwoAccounts();
  SippProcess* sipp = nullptr;
  int64_t id = SippCallsAccount1("uac_cancel.xml", &sipp);
  ASSERT_GE(id, 0);
  auto ended = WaitEnded("account-1", id);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Int("code"), 487) << ended->json;
  EXPECT_EQ(ended->Str("reason"), "Cancelled by caller");
  ExpectSippSucceeds(*sipp);

  client_->Send(absl::StrCat(R"({"cmd":"answer-call","account":"account-1","call_id":)", id,
                             R"(,"token":"late"})"));
  auto fail = client_->WaitFor([](const NativeEvent& e) { return e.event() == "fail"; });
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->Str("error"), absl::StrCat("Unknown call id ", id, " for account: account-1"));
  EXPECT_EQ(fail->Str("token"), "late");
}

TEST_F(SippCallTest, AnOfferWithoutOurCodecsIsRefusedWith488AndNeverReported) {
  StartTwoAccounts();
  auto sipp = StartUac("uac_no_common_codec.xml", "3001");
  ASSERT_NE(sipp, nullptr);
  ExpectSippSucceeds(*sipp);  // 488 with a Warning naming the reason
  EXPECT_FALSE(client_->WaitFor(IsEventOf("call-incoming", "account-1"), absl::Milliseconds(300))
                   .has_value());
  // The account goes on taking calls.
  SippProcess* next = nullptr;
  int64_t id = SippCallsAccount1("uac_call.xml", &next, {"-d", "200"});
  ASSERT_GE(id, 0);
  Command("answer-call", "account-1", id);
  ASSERT_TRUE(WaitEnded("account-1", id).has_value());
  ExpectSippSucceeds(*next);
}

TEST_F(SippCallTest, SippCallIsAnsweredAndSippHangsUp) {
  StartTwoAccounts();
  SippProcess* sipp = nullptr;
  int64_t id = SippCallsAccount1("uac_call.xml", &sipp, {"-d", "500"});
  ASSERT_GE(id, 0);
  EXPECT_EQ(CallState(*client_, "account-1", id), "incoming");
  // The unanswered call rings: the gateway's 180 reaches sipp through
  // Kamailio before anyone answers.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!absl::StrContains(sipp->Messages(), "SIP/2.0 180 Ringing") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(absl::StrContains(sipp->Messages(), "SIP/2.0 180 Ringing")) << sipp->Messages();
  Command("answer-call", "account-1", id);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
  auto ended = WaitEnded("account-1", id);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Str("reason"), "Remote hangup");
  ExpectSippSucceeds(*sipp);
}

TEST_F(SippCallTest, IncomingDelayedOfferIsAnsweredInTheAckAndAudioFlows) {
  std::string record_dir = MakeTempDir("record");
  GatewayOptions options;
  options.account_settings["account-1"] = {"audio = tone:440",
                                           absl::StrCat("record = ", record_dir)};
  StartTwoAccounts(options);
  // sipp echoes the RTP it gets back to its sender: what the gateway
  // records as received is its own tone, sent to the port of sipp's answer
  // (in the ACK).
  SippProcess* sipp = nullptr;
  int64_t id = SippCallsAccount1("uac_delayed_offer.xml", &sipp, {"-d", "1500", "-rtp_echo"});
  ASSERT_GE(id, 0);
  Command("answer-call", "account-1", id);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
  ASSERT_TRUE(WaitEnded("account-1", id).has_value());
  ExpectSippSucceeds(*sipp);

  std::string path = absl::StrCat(record_dir, "/", id, "-account-1.wav");
  absl::StatusOr<WavAudio> wav = ReadWav(path);
  ASSERT_TRUE(wav.ok()) << wav.status();
  ASSERT_EQ(wav->channels.size(), 2u);
  EXPECT_EQ(wav->sample_rate, 8000);
  EXPECT_GT(wav->frames(), 8000u);  // > 1 s of a 1.5 s call
  const std::vector<double>& received = wav->channels[0];
  const std::vector<double>& sent = wav->channels[1];
  EXPECT_GT(Rms(received), 0.05);
  EXPECT_GT(ToneShare(received, 8000, 440), 0.6);
  EXPECT_GT(ToneShare(sent, 8000, 440), 0.9);
}

TEST_F(SippCallTest, DelayedOfferWhoseAckHasNoAnswerIsHungUpWith488) {
  StartTwoAccounts();
  SippProcess* sipp = nullptr;
  int64_t id = SippCallsAccount1("uac_delayed_offer_no_answer.xml", &sipp);
  ASSERT_GE(id, 0);
  Command("answer-call", "account-1", id);
  auto ended = WaitEnded("account-1", id);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Int("code"), 488) << ended->json;
  EXPECT_EQ(ended->Str("reason"), "Unusable SDP answer: no SDP answer");
  ExpectNoneSkipped("call-answered");  // a call without audio never is
  ExpectSippSucceeds(*sipp);           // it got the gateway's BYE
}

// ----------------------------------------------------- RTP port exhaustion

TEST_F(SippCallTest, RtpPortExhaustionFailsTheNextCallCleanly) {
  int rtp = PickFreeMediaPort();
  ASSERT_NE(rtp, 0);
  GatewayOptions options;
  // One RTP/RTCP pair for the whole gateway.
  options.rtp_settings = {absl::StrCat("port-min = ", rtp), absl::StrCat("port-max = ", rtp + 1)};
  StartTwoAccounts(options);
  auto sipp = StartUas("uas_answer.xml");
  ASSERT_NE(sipp, nullptr);
  int64_t first = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", first)).has_value());

  // An outgoing call finds no port: it ends at once and never leaves.
  int64_t second = MakeCall("account-1", "3002");
  auto ended = WaitEnded("account-1", second);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Int("code"), 503) << ended->json;
  EXPECT_EQ(ended->Str("reason"), "No RTP port available");
  EXPECT_FALSE(client_->WaitFor(IsEventOf("call-incoming", "account-2"), absl::Milliseconds(300))
                   .has_value());
  EXPECT_EQ(CallState(*client_, "account-1", first), "active");

  // The first call ends (BYE from the gateway) and frees the pair.
  Command("hangup-call", "account-1", first);
  ASSERT_TRUE(WaitEnded("account-1", first).has_value());
  ExpectSippSucceeds(*sipp);

  // account-1 calls account-2: the caller takes the pair, the callee finds
  // none and refuses with 503; both ends report it and free what they had.
  int64_t third = MakeCall("account-1", "3002");
  auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-2"));
  ASSERT_TRUE(incoming.has_value());
  auto callee_ended = WaitEnded("account-2", incoming->Int("call_id"));
  ASSERT_TRUE(callee_ended.has_value());
  EXPECT_EQ(callee_ended->Int("code"), 503) << callee_ended->json;
  EXPECT_EQ(callee_ended->Str("reason"), "No RTP port available");
  ended = WaitEnded("account-1", third);
  ASSERT_TRUE(ended.has_value());
  // Kamailio turns the callee's 503 into 500 (RFC 3261 16.7: a proxy does
  // not forward 503).
  EXPECT_EQ(ended->Int("code"), 500) << ended->json;
  EXPECT_EQ(CallState(*client_, "account-1", third), "");
  EXPECT_EQ(CallState(*client_, "account-2", incoming->Int("call_id")), "");
}

// ------------------------------------------------------------ RTP timeout

TEST_F(SippCallTest, RtpTimeoutHangsUpASilentCallButNotOneWithAudio) {
  GatewayOptions options;
  options.rtp_settings = {"rtp-timeout = 1"};
  options.account_settings["account-1"] = {"audio = tone:440"};
  StartTwoAccounts(options);

  // sipp echoes our RTP: audio keeps arriving, the call outlives the timeout.
  auto echo = StartUas("uas_answer.xml", {"-rtp_echo"});
  ASSERT_NE(echo, nullptr);
  int64_t with_audio = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", with_audio)).has_value());
  EXPECT_FALSE(
      client_->WaitFor(IsEventOf("call-ended", "account-1"), absl::Milliseconds(2500)).has_value());
  EXPECT_EQ(CallState(*client_, "account-1", with_audio), "active");
  Command("hangup-call", "account-1", with_audio);
  ASSERT_TRUE(WaitEnded("account-1", with_audio).has_value());
  ExpectSippSucceeds(*echo);

  // This sipp sends no RTP: the gateway hangs up (BYE) after 1 s.
  auto silent = StartUas("uas_answer.xml");
  ASSERT_NE(silent, nullptr);
  int64_t without_audio = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(
      client_->WaitFor(IsCallEvent("call-answered", "account-1", without_audio)).has_value());
  absl::Time answered = absl::Now();
  auto ended = WaitEnded("account-1", without_audio, absl::Seconds(5));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Str("reason"), "RTP timeout") << ended->json;
  EXPECT_GE(absl::Now() - answered, absl::Milliseconds(900));
  ExpectSippSucceeds(*silent);  // it got the BYE it waits for
}

// A UDP socket on 127.0.0.1 standing in for a far end's RTP port.
class RtpSink {
 public:
  explicit RtpSink(int port) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~RtpSink() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  // The next datagram, or nullopt after `timeout`.
  std::optional<std::string> Receive(absl::Duration timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) return std::nullopt;
    char buffer[2048];
    ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n < 0) return std::nullopt;
    return std::string(buffer, static_cast<size_t>(n));
  }

 private:
  int fd_ = -1;
};

// Issue 20: a sipp UAS that negotiates telephone-event plays the digit 1
// (sipp's RFC 4733 capture): reported once as a dtmf event. Our digits go
// to the SDP's port, a socket of the test: RFC 4733 packets with the
// event's timestamp on each, growing durations, the end bit three times.
TEST_F(SippCallTest, Rfc4733DigitsBothWaysWithASippFarEnd) {
  StartTwoAccounts();
  int rtp_port = PickFreeMediaPort();
  ASSERT_NE(rtp_port, 0);
  RtpSink sink(rtp_port);
  ASSERT_TRUE(sink.ok());
  SippProcess* sipp = nullptr;
  int64_t id =
      CallSippUas("uas_dtmf_rfc4733.xml", &sipp, {"-set", "rtp_port", absl::StrCat(rtp_port)});
  ASSERT_GE(id, 0);
  auto dtmf = client_->WaitFor(IsCallEvent("dtmf", "account-1", id));
  ASSERT_TRUE(dtmf.has_value()) << sipp->Describe();
  EXPECT_EQ(dtmf->Str("digit"), "1") << dtmf->json;
  EXPECT_EQ(dtmf->Str("method"), "rfc4733");
  EXPECT_EQ(dtmf->Int("duration_ms"), 280) << "2240 samples";
  EXPECT_FALSE(client_->WaitFor(IsCallEvent("dtmf", "account-1", id), absl::Milliseconds(500))
                   .has_value())
      << "the digit was reported twice";

  client_->Send(absl::StrCat(R"({"cmd":"send-dtmf","account":"account-1","call_id":)", id,
                             R"(,"digits":"7","duration_ms":60})"));
  std::vector<std::string> events;  // RTP packets of PT 101
  for (int i = 0; i < 200 && events.size() < 5; ++i) {
    std::optional<std::string> packet = sink.Receive(absl::Seconds(2));
    ASSERT_TRUE(packet.has_value()) << "no RTP from the gateway";
    if (packet->size() == 16 && (static_cast<uint8_t>((*packet)[1]) & 0x7f) == 101) {
      events.push_back(*packet);
    }
  }
  ASSERT_EQ(events.size(), 5u);
  auto u8 = [](const std::string& p, int i) { return static_cast<uint8_t>(p[i]); };
  const uint32_t timestamp = (u8(events[0], 4) << 24) | (u8(events[0], 5) << 16) |
                             (u8(events[0], 6) << 8) | u8(events[0], 7);
  const int durations[] = {160, 320, 480, 480, 480};
  for (int i = 0; i < 5; ++i) {
    const std::string& p = events[i];
    EXPECT_EQ((u8(p, 1) & 0x80) != 0, i == 0) << "marker on the first packet only, " << i;
    EXPECT_EQ((u8(p, 4) << 24) | (u8(p, 5) << 16) | (u8(p, 6) << 8) | u8(p, 7), timestamp) << i;
    EXPECT_EQ(u8(p, 12), 7) << "event";
    EXPECT_EQ((u8(p, 13) & 0x80) != 0, i >= 2) << "end bit, " << i;
    EXPECT_EQ((u8(p, 14) << 8) | u8(p, 15), durations[i]) << i;
  }
  auto sent = client_->WaitFor(IsCallEvent("dtmf-sent", "account-1", id));
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->Str("digits"), "7");
  Command("hangup-call", "account-1", id);
  ASSERT_TRUE(WaitEnded("account-1", id).has_value());
  ExpectSippSucceeds(*sipp);
}

// Issue 20: a far end without telephone-event: its INFO digit is reported
// (method info), ours go as INFO (application/dtmf-relay), one digit each;
// the scenario checks their bodies.
TEST_F(SippCallTest, InfoDigitsBothWaysWithASippFarEnd) {
  StartTwoAccounts();
  SippProcess* sipp = nullptr;
  int64_t id = CallSippUas("uas_dtmf_info.xml", &sipp);
  ASSERT_GE(id, 0);
  auto dtmf = client_->WaitFor(IsCallEvent("dtmf", "account-1", id));
  ASSERT_TRUE(dtmf.has_value()) << sipp->Describe();
  EXPECT_EQ(dtmf->Str("digit"), "5") << dtmf->json;
  EXPECT_EQ(dtmf->Str("method"), "info");
  EXPECT_EQ(dtmf->Int("duration_ms"), 160);
  client_->Send(absl::StrCat(R"({"cmd":"send-dtmf","account":"account-1","call_id":)", id,
                             R"(,"digits":"4#","duration_ms":120,"token":"x"})"));
  auto sent = client_->WaitFor(IsCallEvent("dtmf-sent", "account-1", id));
  ASSERT_TRUE(sent.has_value()) << sipp->Describe();
  EXPECT_EQ(sent->Str("digits"), "4#");
  EXPECT_EQ(sent->Str("token"), "x");
  ExpectSippHangsUp(id);
  ExpectSippSucceeds(*sipp);
}

// Issue 20: a 183 with SDP starts the media at once: the far end's audio
// before its 200 reaches the recording; call-progress reports the 183 with
// early media (after call-ringing), and call-answered follows the 200.
TEST_F(SippCallTest, EarlyMediaOfA183IsRecordedBeforeTheAnswer) {
  std::string record_dir = MakeTempDir("record");
  GatewayOptions options;
  options.account_settings["account-1"] = {absl::StrCat("record = ", record_dir)};
  StartTwoAccounts(options);
  SippProcess* sipp = StartUas("uas_early_media.xml");
  ASSERT_NE(sipp, nullptr);
  const absl::Time dialed = absl::Now();
  int64_t id = MakeCall("account-1", kSippUser);
  auto progress = client_->WaitFor(IsCallEvent("call-progress", "account-1", id));
  ASSERT_TRUE(progress.has_value()) << sipp->Describe();
  EXPECT_EQ(progress->Int("code"), 183) << progress->json;
  EXPECT_NE(progress->json.find("\"early_media\":true"), std::string::npos) << progress->json;
  auto answered = client_->WaitFor(IsCallEvent("call-answered", "account-1", id));
  ASSERT_TRUE(answered.has_value());
  EXPECT_GE(absl::Now() - dialed, absl::Milliseconds(1400)) << "answered before sipp's 200";
  EXPECT_EQ(CallState(*client_, "account-1", id), "active");
  Command("hangup-call", "account-1", id);
  ASSERT_TRUE(WaitEnded("account-1", id).has_value());
  ExpectSippSucceeds(*sipp);

  std::string path = absl::StrCat(record_dir, "/", id, "-account-1.wav");
  absl::StatusOr<WavAudio> wav = ReadWav(path);
  ASSERT_TRUE(wav.ok()) << wav.status();
  ASSERT_EQ(wav->channels.size(), 2u);
  // The recording starts with the media, at the 183: its first 1.25 s are
  // before the 200 (sent 1.5 s after the 183) and hold sipp's speech, whose
  // peaks are far above the PCMA silence (0.0002) of a call without it.
  ASSERT_GT(wav->frames(), 10000u);
  double peak = 0;
  for (size_t i = 0; i < 10000; ++i) peak = std::max(peak, std::abs(wav->channels[0][i]));
  EXPECT_GT(peak, 0.05) << "no early media in the recording";
}

// Issue 20: we transfer a sipp far end blind: the scenario checks the
// REFER (Refer-To 3003 without Replaces, Referred-By 3001) and sends NOTIFY
// 100 and 200; our call ends "Transferred" with BYE.
TEST_F(SippCallTest, BlindTransferOfASippFarEnd) {
  StartTwoAccounts();
  SippProcess* sipp = nullptr;
  int64_t id = CallSippUas("uas_refer_blind.xml", &sipp, kReorderedOk);
  ASSERT_GE(id, 0);
  client_->Send(absl::StrCat(R"({"cmd":"transfer-call","account":"account-1","call_id":)", id,
                             R"(,"num":"3003"})"));
  auto progress = client_->WaitFor(IsCallEvent("transfer-progress", "account-1", id));
  ASSERT_TRUE(progress.has_value()) << sipp->Describe();
  EXPECT_EQ(progress->Int("code"), 100);
  progress = client_->WaitFor(IsCallEvent("transfer-progress", "account-1", id));
  ASSERT_TRUE(progress.has_value());
  EXPECT_EQ(progress->Int("code"), 200);
  auto ended = WaitEnded("account-1", id);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Str("reason"), "Transferred") << ended->json;
  EXPECT_EQ(ended->Int("code"), 0);
  ExpectSippSucceeds(*sipp);
}

// Issue 20: a transfer whose final NOTIFY is 486: a fail to everyone, the
// call stays up and active until we hang up.
TEST_F(SippCallTest, AFailedTransferLeavesTheCallUpAndActive) {
  StartTwoAccounts();
  SippProcess* sipp = nullptr;
  int64_t id = CallSippUas("uas_refer_fail.xml", &sipp);
  ASSERT_GE(id, 0);
  client_->Send(absl::StrCat(R"({"cmd":"transfer-call","account":"account-1","call_id":)", id,
                             R"(,"num":"3003"})"));
  auto fail = client_->WaitFor(IsEventOf("fail", "account-1"));
  ASSERT_TRUE(fail.has_value()) << sipp->Describe();
  EXPECT_EQ(fail->Str("error"), absl::StrCat("Transfer of call ", id, " failed: 486 Busy Here"));
  EXPECT_EQ(CallState(*client_, "account-1", id), "active");
  Command("hangup-call", "account-1", id);
  auto ended = WaitEnded("account-1", id);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Str("reason"), "Hung up");
  ExpectSippSucceeds(*sipp);
}

// Issue 20: attended: account-1 has a call with account-2 and one with
// sipp; it transfers sipp to account-2's call: the REFER carries Replaces
// (checked by the scenario), and on sipp's NOTIFY 200 both of account-1's
// calls end "Transferred".
TEST_F(SippCallTest, AttendedTransferOfASippFarEndToAnotherCall) {
  StartTwoAccounts();
  int64_t to_account2 = -1;
  ASSERT_NO_FATAL_FAILURE(CallAccount2AndAnswer(&to_account2));
  SippProcess* sipp = nullptr;
  int64_t id = CallSippUas("uas_refer_attended.xml", &sipp, kReorderedOk);
  ASSERT_GE(id, 0);
  client_->Send(absl::StrCat(R"({"cmd":"transfer-call","account":"account-1","call_id":)", id,
                             R"(,"to_call_id":)", to_account2, "}"));
  // Both calls end, in either order.
  std::map<int64_t, std::string> reasons;
  for (int i = 0; i < 2; ++i) {
    auto ended = client_->WaitFor([&](const NativeEvent& e) {
      return e.event() == "call-ended" && e.Str("account") == "account-1" &&
             (e.Int("call_id") == id || e.Int("call_id") == to_account2);
    });
    ASSERT_TRUE(ended.has_value()) << sipp->Describe();
    reasons[ended->Int("call_id")] = ended->Str("reason");
  }
  EXPECT_EQ(reasons, (std::map<int64_t, std::string>{{id, "Transferred"},
                                                     {to_account2, "Transferred"}}));
  ExpectSippSucceeds(*sipp);
}

// Issue 20: sipp transfers us (REFER to 3002): account-1 starts a call to
// account-2 (call-started with transferred_from) and NOTIFYs sipp 100,
// 180, 200 (checked by the scenario), after which sipp hangs up.
TEST_F(SippCallTest, ASippFarEndTransfersUsToAccount2) {
  StartTwoAccounts();
  SippProcess* sipp = nullptr;
  int64_t id = SippCallsAccount1("uac_refer.xml", &sipp, kReorderedOk);
  ASSERT_GE(id, 0);
  Command("answer-call", "account-1", id);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
  auto started = client_->WaitFor(IsEventOf("call-started", "account-1"));
  ASSERT_TRUE(started.has_value()) << sipp->Describe();
  EXPECT_EQ(started->Str("num"), "3002");
  EXPECT_EQ(started->Int("transferred_from"), id);
  const int64_t new_call = started->Int("call_id");
  auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-2"));
  ASSERT_TRUE(incoming.has_value());
  absl::SleepFor(absl::Milliseconds(200));  // account-2 rings: the 180 is NOTIFYed first
  Command("answer-call", "account-2", incoming->Int("call_id"));
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", new_call)).has_value());
  ExpectSippHangsUp(id);
  ExpectSippSucceeds(*sipp);
  EXPECT_EQ(CallState(*client_, "account-1", new_call), "active");
}

}  // namespace
}  // namespace telestra::testing
