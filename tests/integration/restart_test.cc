// Calls survive a gateway restart (issue 22, docs/restart.md): with the
// journal on (`[state-settings] dir`), a gateway killed with SIGKILL and
// started again restores its established calls (same call ids, same
// dialogs, same RTP ports), ends those that were still dialing, and its
// clients resume without missing an event.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"

namespace telestra::testing {
namespace {

constexpr int kGatewayHz = 440;
constexpr int kBaresipHz = 1000;
constexpr int kRate = 8000;

class RestartTest : public SipPeerTest {
 protected:
  // account-1 and account-2 with the journal on, extended events, account-1
  // sending a tone and recording its calls.
  void StartWithJournal(std::vector<std::string> state = {"dir = STATE"}) {
    record_dir_ = MakeTempDir("record");
    ASSERT_FALSE(record_dir_.empty());
    GatewayOptions options;
    options.state_settings = std::move(state);
    // A range of its own: a restored call must get its old pair back, which
    // another gateway on the machine could otherwise take meanwhile.
    const int rtp = PickFreeMediaPort();
    ASSERT_NE(rtp, 0);
    options.rtp_settings = {absl::StrCat("port-min = ", rtp),
                            absl::StrCat("port-max = ", rtp + 3)};
    options.account_settings["account-1"] = {absl::StrCat("audio = tone:", kGatewayHz),
                                             absl::StrCat("record = ", record_dir_)};
    StartTwoAccounts(options);
  }

  std::string FailureDetails() override {
    std::string details = SipPeerTest::FailureDetails();
    if (baresip_) absl::StrAppend(&details, "\nbaresip log:\n", baresip_->Log());
    return details;
  }

  // Kills the gateway with `signal`, starts it again (same plan, same
  // ports) and connects client_ anew; the time the restart took.
  absl::Duration Restart(int signal) {
    client_.reset();
    const absl::Time start = absl::Now();
    absl::Status restarted = gateway_->Restart(signal);
    EXPECT_TRUE(restarted.ok()) << restarted;
    const absl::Duration took = absl::Now() - start;
    client_ = ConnectNative(*gateway_);
    EXPECT_NE(client_, nullptr);
    return took;
  }

  // The last seq a client saw (an extended client's events carry it).
  static int64_t LastSeq(const NativeEvent& event) { return event.Int("seq"); }

  // client_ resumes after `seen` (of `instance`) across the restart: among
  // what it missed, exactly once and with no gap, is call `id`'s
  // call-ended "Gateway restarted"; the call is gone from status.
  void ExpectResumedToItsEnd(const std::string& instance, int64_t seen, int64_t id) {
    client_->Send(absl::StrCat(R"({"cmd":"subscribe","extended":true,"after_seq":)", seen,
                               R"(,"instance":")", instance, R"("})"));
    auto again = client_->WaitFor(IsEvent("subscribed"));
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->Str("instance"), instance);
    auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", id));
    ASSERT_TRUE(ended.has_value());
    EXPECT_EQ(ended->Str("reason"), "Gateway restarted") << ended->json;
    EXPECT_GT(LastSeq(*ended), seen);
    for (const NativeEvent& e : client_->skipped()) {
      EXPECT_NE(e.Str("event"), "fail") << e.json;  // no gap: the journal held the range
    }
    EXPECT_EQ(CallState(*client_, "account-1", id), "");
  }

  std::string record_dir_;
  std::unique_ptr<BaresipProcess> baresip_;
};

// The longest stretch (seconds) of `samples` after its first sound in
// which 20 ms windows are silent: the gap a restart left in a recording.
double LongestSilenceAfterSound(const std::vector<double>& samples, int rate) {
  const size_t window = static_cast<size_t>(rate / 50);
  size_t longest = 0, run = 0;
  bool heard = false;
  for (size_t at = 0; at + window <= samples.size(); at += window) {
    double sum = 0;
    for (size_t i = at; i < at + window; ++i) sum += samples[i] * samples[i];
    const bool silent = std::sqrt(sum / window) < 0.01;
    if (!silent) {
      heard = true;
      run = 0;
    } else if (heard) {
      longest = std::max(longest, ++run);
    }
  }
  return static_cast<double>(longest * window) / rate;
}

TEST_F(RestartTest, EstablishedCallsSurviveASigkill) {
  ASSERT_NO_FATAL_FAILURE(StartWithJournal());
  // sipp re-INVITEs and hangs up 6 s after its answer: after the restart.
  SippProcess* sipp = StartUas("uas_restart.xml");
  ASSERT_NE(sipp, nullptr);
  BaresipProcess::Options peer;
  peer.user = "3006";
  peer.server = kamailio().server();
  peer.tone_hz = kBaresipHz;
  peer.auto_answer = true;
  auto baresip = BaresipProcess::Start(peer);
  ASSERT_TRUE(baresip.ok()) << baresip.status();
  baresip_ = *std::move(baresip);

  const int64_t sipp_call = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", sipp_call)).has_value());
  const int64_t baresip_call = MakeCall("account-1", "3006");
  ASSERT_TRUE(
      client_->WaitFor(IsCallEvent("call-answered", "account-1", baresip_call)).has_value());
  ASSERT_TRUE(baresip_->WaitEvent("CALL_ESTABLISHED").has_value());
  absl::SleepFor(absl::Seconds(1));  // baresip's tone in the recording before the kill
  const NativeEvent before = CallInStatus(*client_, "account-1", baresip_call);
  ASSERT_FALSE(before.Str("sip_call_id").empty()) << before.json;

  const absl::Duration took = Restart(SIGKILL);
  ASSERT_NE(client_, nullptr);
  // Within a second of the restart, both calls show in status again.
  const absl::Time restarted = absl::Now();
  EXPECT_EQ(WaitForCallState(*client_, "account-1", sipp_call, "active", absl::Seconds(1)),
            "active");
  EXPECT_EQ(WaitForCallState(*client_, "account-1", baresip_call, "active", absl::Seconds(1)),
            "active");
  std::cout << "restart took " << absl::FormatDuration(took) << ", calls in status after "
            << absl::FormatDuration(absl::Now() - restarted) << "\n";
  const NativeEvent after = CallInStatus(*client_, "account-1", baresip_call);
  EXPECT_EQ(after.Str("peer"), "3006") << after.json;
  EXPECT_EQ(after.Str("sip_call_id"), before.Str("sip_call_id")) << after.json;
  EXPECT_EQ(after.Str("start_time"), before.Str("start_time")) << after.json;

  // sipp's re-INVITE is answered with SDP and its BYE 200 (not 481).
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", sipp_call),
                                absl::Seconds(15));
  ASSERT_TRUE(ended.has_value()) << sipp->Describe();
  EXPECT_EQ(ended->Str("reason"), "Remote hangup") << ended->json;
  ExpectSippSucceeds(*sipp);

  // baresip's tone comes again: the RTP port and the media went on.
  absl::SleepFor(absl::Seconds(2));
  client_->Send(absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)",
                             baresip_call, "}"));
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-1", baresip_call)).has_value());
  ASSERT_TRUE(baresip_->WaitEvent("CALL_CLOSED").has_value());
  absl::StatusOr<WavAudio> wav =
      ReadWav(absl::StrCat(record_dir_, "/", baresip_call, "-account-1.wav"));
  ASSERT_TRUE(wav.ok()) << wav.status();
  ASSERT_EQ(wav->channels.size(), 2u);
  const std::vector<double>& received = wav->channels[0];
  ASSERT_GT(received.size(), static_cast<size_t>(3 * kRate));
  // The last 1.5 s (after the restart) hold baresip's tone.
  std::vector<double> tail(received.end() - kRate * 3 / 2, received.end());
  EXPECT_GT(ToneShare(tail, kRate, kBaresipHz), 0.6);
  // The recording keeps the call's timeline: the restart is silence in it.
  const double gap = LongestSilenceAfterSound(received, kRate);
  std::cout << "audio gap across the restart: " << gap << " s\n";
  RecordProperty("audio_gap_ms", static_cast<int>(gap * 1000));
  EXPECT_GT(gap, 0.05);
  EXPECT_LT(gap, absl::ToDoubleSeconds(took) + 1.0);
}

TEST_F(RestartTest, AHangupOfARestoredCallSendsAByeSippAccepts) {
  ASSERT_NO_FATAL_FAILURE(StartWithJournal());
  SippProcess* sipp = StartUas("uas_restart_hangup.xml");
  ASSERT_NE(sipp, nullptr);
  const int64_t id = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
  // The journal's writer notes the answered call on its own thread, a few
  // milliseconds after call-answered (docs/restart.md, "What a crash can
  // lose"); a kill sooner would find the call still dialing.
  absl::SleepFor(absl::Milliseconds(300));
  Restart(SIGKILL);
  ASSERT_NE(client_, nullptr);
  ASSERT_EQ(WaitForCallState(*client_, "account-1", id, "active", absl::Seconds(1)), "active");
  // The account registered again at once with the same Contact: the
  // registrar replaced its binding (a new Contact would make two).
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  int status = 0;
  while (status != 200 && absl::Now() < deadline) {
    client_->Send(R"({"cmd":"get-status","account":"account-1"})");
    auto reply = client_->WaitFor(IsEventOf("status", "account-1"));
    status = reply.has_value() ? static_cast<int>(reply->Int("account_status")) : 0;
    if (status != 200) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(status, 200);
  EXPECT_EQ(WaitForContacts(kamailio(), "3001", 1), 1);
  client_->Send(
      absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", id, "}"));
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", id));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Str("reason"), "Hung up") << ended->json;
  ExpectSippSucceeds(*sipp);
  // A new call id does not collide with the restored one.
  client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
  auto call_return = client_->WaitFor(IsEventOf("call-return", "account-1"));
  ASSERT_TRUE(call_return.has_value());
  EXPECT_GT(call_return->Int("call_id"), id);
}

TEST_F(RestartTest, ACallDialingAtTheKillIsCancelledAndClientsResumeAcrossTheRestart) {
  ASSERT_NO_FATAL_FAILURE(StartWithJournal());
  client_->Send(R"({"cmd":"subscribe","extended":true})");
  auto subscribed = client_->WaitFor(IsEvent("subscribed"));
  ASSERT_TRUE(subscribed.has_value());
  const std::string instance = subscribed->Str("instance");
  SippProcess* sipp = StartUas("uas_ring.xml");  // rings until CANCEL
  ASSERT_NE(sipp, nullptr);
  const int64_t id = MakeCall("account-1", kSippUser);
  auto ringing = client_->WaitFor(IsCallEvent("call-ringing", "account-1", id));
  ASSERT_TRUE(ringing.has_value());
  const int64_t seen = LastSeq(*ringing);
  ASSERT_GT(seen, 0) << ringing->json;
  // The journal notes the dialing call within its gather time (2 ms); a
  // kill sooner finds only the call's events, and the call is ended for
  // the clients without a CANCEL (docs/restart.md, "What a crash can lose").
  absl::SleepFor(absl::Milliseconds(300));

  Restart(SIGKILL);
  ASSERT_NE(client_, nullptr);
  // sipp gets the CANCEL of the INVITE the last run sent: its scenario ends.
  ExpectSippSucceeds(*sipp);
  ExpectResumedToItsEnd(instance, seen, id);
}

TEST_F(RestartTest, AGracefulStopKeepsCallsOnlyWhenAsked) {
  ASSERT_NO_FATAL_FAILURE(StartWithJournal({"dir = STATE", "keep-calls-on-stop = true"}));
  SippProcess* sipp = StartUas("uas_restart_hangup.xml");
  ASSERT_NE(sipp, nullptr);
  const int64_t id = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
  Restart(SIGTERM);  // an upgrade: no BYE, the call goes on
  ASSERT_NE(client_, nullptr);
  ASSERT_EQ(WaitForCallState(*client_, "account-1", id, "active", absl::Seconds(1)), "active");
  client_->Send(
      absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", id, "}"));
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-1", id)).has_value());
  ExpectSippSucceeds(*sipp);  // exactly one BYE: the one after the restart
}

TEST(RestartPlanTest, TheJournalRefusesAnySipPort) {
  GatewayOptions options = OneIdleAccount();
  options.state_settings = {"dir = STATE"};
  options.extra_args = {"--sip_port=0"};
  absl::StatusOr<std::unique_ptr<GatewayProcess>> gateway = GatewayProcess::Start(options);
  ASSERT_FALSE(gateway.ok());
  EXPECT_NE(std::string(gateway.status().message()).find("[state-settings] dir needs a fixed"),
            std::string::npos)
      << gateway.status();
}

TEST_F(RestartTest, ACallRingingAtTheKillIsRefused480AndClientsResumeToItsEnd) {
  ASSERT_NO_FATAL_FAILURE(StartWithJournal());
  client_->Send(R"({"cmd":"subscribe","extended":true})");
  auto subscribed = client_->WaitFor(IsEvent("subscribed"));
  ASSERT_TRUE(subscribed.has_value());
  const std::string instance = subscribed->Str("instance");
  // sipp calls account-1 through Kamailio; the gateway answers 180.
  SippProcess* sipp = StartUac("uac_restart_ringing.xml", "3001");
  ASSERT_NE(sipp, nullptr);
  auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-1"));
  ASSERT_TRUE(incoming.has_value()) << sipp->Describe();
  const int64_t id = incoming->Int("call_id");
  const int64_t seen = LastSeq(*incoming);
  ASSERT_GT(seen, 0) << incoming->json;
  // The journal's writer notes the ringing call (their INVITE) on its own
  // thread a moment after call-incoming; a kill sooner would find no call.
  absl::SleepFor(absl::Milliseconds(300));

  Restart(SIGKILL);
  ASSERT_NE(client_, nullptr);
  // The restarted gateway refuses the INVITE along its Via path: sipp gets
  // 480 (through Kamailio's transaction) and ACKs it; its scenario ends.
  ExpectSippSucceeds(*sipp);
  ExpectResumedToItsEnd(instance, seen, id);
}

}  // namespace
}  // namespace telestra::testing
