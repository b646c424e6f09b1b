// Call details and quality against real peers (issue 21): a sipp UAS plays
// an RTP stream with a known number of packets left out and a known jitter
// (tests/integration/sipp/quality_gaps.pcap, made by make_quality_pcap.py),
// and the gateway's status, call-quality events and /metrics must count
// them; calls between two accounts through Kamailio fill the /metrics
// histograms and counters one observation per call.
#include <simdjson.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"

namespace telestra::testing {
namespace {

class CallQualityTest : public SipPeerTest {
 protected:

  // Waits for the call-ended of both calls (in any order) and counts them
  // by code.
  void CountEnded(const std::string& account_a, int64_t a, const std::string& account_b, int64_t b,
                  std::map<int64_t, int>* by_code) {
    auto counted = [by_code](NativeMatch match) {
      return [by_code, match](const NativeEvent& e) {
        if (!match(e)) return false;
        ++(*by_code)[e.Int("code")];
        return true;
      };
    };
    EXPECT_TRUE(client_->WaitForAll({counted(IsCallEvent("call-ended", account_a, a)),
                                     counted(IsCallEvent("call-ended", account_b, b))}))
        << "no call-ended for " << account_a << " call " << a << " and " << account_b << " call "
        << b;
  }

  // The value of sample `name` (with its labels, as exposed) of /metrics.
  double MetricOf(const std::string& name) { return Metric(*gateway_, name); }
};

// An RFC 3339 time as the gateway writes it: "2027-01-01T12:00:00.250Z".
absl::Time ParseTime(const std::string& text) {
  absl::Time time;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, text, &time, &error)) << text << ": " << error;
  return time;
}

// The pcap: 150 PCMA packets of 20 ms, 10 of them left out, every odd one
// 10 ms late (so the jitter converges to 10 ms); sipp sends no RTCP.
constexpr int kPacketsPlayed = 140;
constexpr int kPacketsLeftOut = 10;

TEST_F(CallQualityTest, AStreamWithKnownGapsAndJitterIsMeasuredAsSuch) {
  GatewayOptions options;
  options.rtp_settings = {"quality-interval = 1"};
  StartTwoAccounts(options);
  SippProcess* sipp = StartUas("uas_quality_gaps.xml");
  ASSERT_NE(sipp, nullptr);
  const absl::Time before = absl::Now();
  const int64_t id = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());

  // The whole stream is in after its 3 s.
  NativeEvent call{"{}"};
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline) {
    call = CallInStatus(*client_, "account-1", id);
    if (call.Int("packets_received") >= kPacketsPlayed) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  absl::SleepFor(absl::Milliseconds(300));  // nothing more may come
  call = CallInStatus(*client_, "account-1", id);
  EXPECT_EQ(call.Int("packets_received"), kPacketsPlayed) << call.json;
  EXPECT_EQ(call.Int("packets_lost"), kPacketsLeftOut) << call.json;
  EXPECT_EQ(call.Str("codec"), "PCMA") << call.json;
  // RFC 3550's estimate after 140 packets each 10 ms off the one before
  // (less where a gap made two in a row on time): about 10 ms, with what
  // a loaded machine adds to the arrival times.
  const double jitter = call.Num("jitter_ms");
  EXPECT_GE(jitter, 6.5) << call.json;
  EXPECT_LE(jitter, 16.0) << call.json;
  // 6.7 % lost and no round trip known (sipp sends no RTCP): E-model
  // R = 93.2 - 1.44 - 57.8 = 34 (60 ms jitter buffer), MOS 1.78.
  EXPECT_FALSE(call.Has("rtt_ms")) << call.json;
  EXPECT_NEAR(call.Num("mos"), 1.78, 0.15) << call.json;
  // Who and when.
  std::vector<std::string> invites = Requests(ReceivedMessages(sipp->Messages()), "INVITE");
  ASSERT_FALSE(invites.empty());
  EXPECT_TRUE(
      absl::StrContains(invites[0], absl::StrCat("Call-ID: ", call.Str("sip_call_id"), "\n")))
      << call.json << "\n"
      << invites[0];
  EXPECT_EQ(call.Str("remote_uri"), absl::StrCat("sip:", kSippUser, "@", kamailio().server()));
  const absl::Time start = ParseTime(call.Str("start_time"));
  const absl::Time answer = ParseTime(call.Str("answer_time"));
  EXPECT_GE(start, before - absl::Milliseconds(1));
  EXPECT_GE(answer, start);
  EXPECT_LT(answer - start, absl::Seconds(5));

  // The call-quality events (every second here) say the same.
  auto quality = client_->WaitFor(
      [&](const NativeEvent& e) {
        return IsCallEvent("call-quality", "account-1", id)(e) &&
               e.Int("packets_received") == kPacketsPlayed;
      },
      absl::Seconds(5));
  ASSERT_TRUE(quality.has_value());
  EXPECT_EQ(quality->Int("packets_lost"), kPacketsLeftOut) << quality->json;
  EXPECT_EQ(quality->Str("codec"), "PCMA") << quality->json;
  EXPECT_NEAR(quality->Num("mos"), call.Num("mos"), 0.011) << quality->json;

  // A legacy client sees exactly the vendor's status, call and all.
  auto legacy = ConnectNative(*gateway_);
  ASSERT_NE(legacy, nullptr);
  legacy->Send(R"({"cmd":"subscribe","extended":false})");  // the plan makes clients extended
  legacy->Send(R"({"cmd":"get-status","account":"account-1","token":"l"})");
  auto plain = legacy->WaitFor([](const NativeEvent& e) { return e.event() == "status"; });
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(
      plain->json,
      absl::StrCat(R"({"event":"status","account":"account-1","account_status":200,)",
                   R"("calls":[{"call_id":)", id, R"(,"state":"active","direction":"outgoing",)",
                   R"("peer":")", kSippUser, R"(","peer_name":""}],"token":"l"})"));

  Command("hangup-call", "account-1", id);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-1", id)).has_value());
  ExpectSippSucceeds(*sipp);

  // Its figures at the end, in /metrics.
  EXPECT_EQ(MetricOf("telestra_call_packet_loss_ratio_count"), 1);
  EXPECT_NEAR(MetricOf("telestra_call_packet_loss_ratio_sum"), 10.0 / 150, 0.004);
  EXPECT_EQ(MetricOf(R"(telestra_call_packet_loss_ratio_bucket{le="0.05"})"), 0);
  EXPECT_EQ(MetricOf(R"(telestra_call_packet_loss_ratio_bucket{le="0.1"})"), 1);
  EXPECT_EQ(MetricOf("telestra_call_jitter_seconds_count"), 1);
  EXPECT_NEAR(MetricOf("telestra_call_jitter_seconds_sum"), jitter / 1000, 0.004);
  EXPECT_EQ(MetricOf("telestra_call_mos_count"), 1);
  EXPECT_EQ(MetricOf(R"(telestra_call_mos_bucket{le="2"})"), 1);
}

// Two calls of the gateway talk RTCP to each other (SR with the NTP time,
// report blocks with LSR and DLSR): each side gets a round trip, small on
// loopback. The first one needs an SR (every 2.5-7.5 s) and a report
// after it: up to 15 s.
TEST_F(CallQualityTest, TheRoundTripComesFromTheFarEndsRtcpReports) {
  StartTwoAccounts();
  const int64_t out = MakeCall("account-1", "3002");
  auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-2"));
  ASSERT_TRUE(incoming.has_value());
  const int64_t in = incoming->Int("call_id");
  Command("answer-call", "account-2", in);
  ASSERT_TRUE(client_->WaitForAll({IsCallEvent("call-answered", "account-1", out),
                                   IsCallEvent("call-answered", "account-2", in)}));
  for (const auto& [account, id] : {std::pair{"account-1", out}, std::pair{"account-2", in}}) {
    NativeEvent call{"{}"};
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!call.Has("rtt_ms") && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(500));
      call = CallInStatus(*client_, account, id);
    }
    ASSERT_TRUE(call.Has("rtt_ms")) << account << ": " << call.json;
    EXPECT_GE(call.Num("rtt_ms"), 0) << call.json;
    EXPECT_LT(call.Num("rtt_ms"), 100) << call.json;
    // No loss, 60 ms of jitter buffer and a short round trip: MOS 4.38.
    EXPECT_NEAR(call.Num("mos"), 4.38, 0.011) << call.json;
  }
  Command("hangup-call", "account-1", out);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-1", out)).has_value());
}

// Calls between account-1 and account-2 through Kamailio: each call's setup
// and end, both sides' loss, jitter and MOS, and the registrations are
// counted once in /metrics.
TEST_F(CallQualityTest, MetricsCountEachCallsSetupEndAndAudio) {
  StartTwoAccounts();
  constexpr int kAnswered = 3;
  std::map<int64_t, int> ended_by_code;
  for (int i = 0; i < kAnswered; ++i) {
    const int64_t out = MakeCall("account-1", "3002");
    auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-2"));
    ASSERT_TRUE(incoming.has_value());
    const int64_t in = incoming->Int("call_id");
    Command("answer-call", "account-2", in);
    ASSERT_TRUE(client_->WaitForAll({IsCallEvent("call-answered", "account-1", out),
                                     IsCallEvent("call-answered", "account-2", in)}));
    absl::SleepFor(absl::Milliseconds(500));  // audio both ways
    Command("hangup-call", "account-1", out);
    CountEnded("account-1", out, "account-2", in, &ended_by_code);
  }
  // One more, declined while it rings: set up never, ended by a status.
  const int64_t declined = MakeCall("account-1", "3002");
  auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-2"));
  ASSERT_TRUE(incoming.has_value());
  Command("hangup-call", "account-2", incoming->Int("call_id"));
  CountEnded("account-1", declined, "account-2", incoming->Int("call_id"), &ended_by_code);

  EXPECT_EQ(MetricOf(R"(telestra_call_setup_seconds_count{direction="outgoing"})"), kAnswered);
  EXPECT_EQ(MetricOf(R"(telestra_call_setup_seconds_count{direction="incoming"})"), kAnswered);
  EXPECT_EQ(MetricOf(R"(telestra_call_setup_seconds_bucket{direction="outgoing",le="+Inf"})"),
            kAnswered);
  EXPECT_GT(MetricOf(R"(telestra_call_setup_seconds_sum{direction="outgoing"})"), 0);
  int ended = 0;
  for (const auto& [code, count] : ended_by_code) {
    EXPECT_EQ(MetricOf(absl::StrCat(R"(telestra_calls_ended_total{code=")", code, R"("})")), count)
        << "code " << code;
    ended += count;
  }
  EXPECT_EQ(ended, 2 * kAnswered + 2);
  EXPECT_GE(ended_by_code.size(), 2u) << "the declined call ends with a status of its own";
  // Both sides of every answered call received audio (each sends silence).
  for (const char* name : {"telestra_call_packet_loss_ratio_count",
                           "telestra_call_jitter_seconds_count", "telestra_call_mos_count"}) {
    EXPECT_EQ(MetricOf(name), 2 * kAnswered) << name;
  }
  EXPECT_EQ(MetricOf(R"(telestra_call_mos_bucket{le="4.4"})"), 2 * kAnswered)
      << "no loss on loopback: every MOS is 4.38";
  EXPECT_GE(MetricOf("telestra_registration_seconds_count"), 2);
  EXPECT_EQ(MetricOf(R"(telestra_account_status{account="account-1"})"), 200);
}

}  // namespace
}  // namespace telestra::testing
