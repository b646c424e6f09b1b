// Calls with real RTP audio between the gateway and baresip (another SIP
// user agent) through a real Kamailio (issue 3).
//
// baresip registers as 3006 and sends a 1000 Hz sine; the gateway's
// account-1 (3001) sends `audio = tone:440` and records every call
// (`record = DIR`: DIR/<call_id>-account-1.wav, left = received, right =
// sent). Each direction is checked with a Goertzel filter: the gateway
// hears baresip's 1000 Hz, baresip (its sndfile recording) hears 440 Hz.
#include <dirent.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"
#include "tests/support/kamailio.h"

namespace telestra::testing {
namespace {

constexpr int kGatewayHz = 440;
constexpr int kBaresipHz = 1000;
constexpr int kRate = 8000;
constexpr absl::Duration kTalk = absl::Seconds(2);

// The files in `dir` whose names end with `suffix`.
std::vector<std::string> FilesEndingWith(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> found;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return found;
  while (dirent* entry = readdir(d)) {
    if (absl::EndsWith(entry->d_name, suffix)) found.push_back(dir + "/" + entry->d_name);
  }
  closedir(d);
  return found;
}

class BaresipTest : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    record_dir_ = MakeTempDir("record");
    ASSERT_FALSE(record_dir_.empty());
    GatewayOptions options;
    // account-2 (3002): where transfers lead.
    options.accounts = {Account("account-1", 3001), Account("account-2", 3002)};
    options.tcp_settings = {"extended-events = true"};
    options.account_settings["account-1"] = {absl::StrCat("audio = tone:", kGatewayHz),
                                             absl::StrCat("record = ", record_dir_)};
    StartGateway(options, {"account-1", "account-2"});
    if (HasFatalFailure()) return;

    BaresipProcess::Options peer;
    peer.user = "3006";
    peer.server = kamailio().server();
    peer.tone_hz = kBaresipHz;
    peer.auto_answer = true;
    peer.record = true;
    auto baresip = BaresipProcess::Start(peer);
    ASSERT_TRUE(baresip.ok()) << baresip.status();
    baresip_ = *std::move(baresip);
  }

  std::string FailureDetails() override {
    return baresip_ ? "baresip log:\n" + baresip_->Log() : "";
  }

  // account-1 calls baresip, which answers; `*id` is the call.
  void CallBaresip(int64_t* id) {
    client_->Send(R"({"cmd":"make-call","account":"account-1","num":"3006"})");
    auto call_return =
        client_->WaitFor([](const NativeEvent& e) { return e.event() == "call-return"; });
    ASSERT_TRUE(call_return.has_value());
    *id = call_return->Int("call_id");
    ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", *id)).has_value());
    ASSERT_TRUE(baresip_->WaitEvent("CALL_ESTABLISHED").has_value());
  }

  void Command(const std::string& cmd, int64_t id) {
    client_->Send(
        absl::StrCat(R"({"cmd":")", cmd, R"(","account":"account-1","call_id":)", id, "}"));
  }

  // The gateway's recording of call `id`: baresip's tone on the left
  // (received), the account's own tone on the right (sent).
  void ExpectGatewayRecording(int64_t id) {
    std::string path = absl::StrCat(record_dir_, "/", id, "-account-1.wav");
    absl::StatusOr<WavAudio> wav = ReadWav(path);
    ASSERT_TRUE(wav.ok()) << wav.status();
    ASSERT_EQ(wav->channels.size(), 2u);
    EXPECT_EQ(wav->sample_rate, kRate);
    EXPECT_GT(wav->frames(), static_cast<size_t>(kRate));  // > 1 s
    const std::vector<double>& received = wav->channels[0];
    const std::vector<double>& sent = wav->channels[1];
    EXPECT_GT(Rms(received), 0.05);
    EXPECT_GT(ToneShare(received, kRate, kBaresipHz), 0.6);
    EXPECT_LT(ToneShare(received, kRate, kGatewayHz), 0.05);
    EXPECT_GT(Rms(sent), 0.05);
    EXPECT_GT(ToneShare(sent, kRate, kGatewayHz), 0.9);
    EXPECT_LT(ToneShare(sent, kRate, kBaresipHz), 0.05);
  }

  // baresip's sndfile recording of what it received: the gateway's tone.
  void ExpectBaresipHeardTheGateway() {
    std::vector<std::string> decoded = FilesEndingWith(baresip_->record_dir(), "-dec.wav");
    ASSERT_EQ(decoded.size(), 1u) << "baresip recordings in " << baresip_->record_dir();
    absl::StatusOr<WavAudio> wav = ReadWav(decoded[0]);
    ASSERT_TRUE(wav.ok()) << wav.status();
    ASSERT_EQ(wav->channels.size(), 1u);
    EXPECT_GT(wav->frames(), static_cast<size_t>(wav->sample_rate));  // > 1 s
    EXPECT_GT(Rms(wav->channels[0]), 0.05);
    EXPECT_GT(ToneShare(wav->channels[0], wav->sample_rate, kGatewayHz), 0.6);
    EXPECT_LT(ToneShare(wav->channels[0], wav->sample_rate, kBaresipHz), 0.05);
  }

  std::string record_dir_;
  std::unique_ptr<BaresipProcess> baresip_;
};

TEST_F(BaresipTest, GatewayCallsBaresipAndEachSideHearsTheOthersTone) {
  int64_t id = -1;
  ASSERT_NO_FATAL_FAILURE(CallBaresip(&id));
  absl::SleepFor(kTalk);  // the call's length, not a wait for a condition
  Command("hangup-call", id);
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", id));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Str("reason"), "Hung up") << ended->json;
  // baresip closes its recordings when the call closes.
  ASSERT_TRUE(baresip_->WaitEvent("CALL_CLOSED").has_value());

  ExpectGatewayRecording(id);
  ExpectBaresipHeardTheGateway();
}

TEST_F(BaresipTest, BaresipCallsTheGatewayWhichAnswersAndHearsIt) {
  ASSERT_TRUE(baresip_->Command("dial", absl::StrCat("sip:3001@", kamailio().server())).ok());
  auto incoming =
      client_->WaitFor([](const NativeEvent& e) { return e.event() == "call-incoming"; });
  ASSERT_TRUE(incoming.has_value());
  EXPECT_EQ(incoming->Str("account"), "account-1");
  EXPECT_EQ(incoming->Str("caller"), "3006");
  int64_t id = incoming->Int("call_id");
  Command("answer-call", id);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
  ASSERT_TRUE(baresip_->WaitEvent("CALL_ESTABLISHED").has_value());
  absl::SleepFor(kTalk);
  ASSERT_TRUE(baresip_->Command("hangup", "").ok());
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", id));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Str("reason"), "Remote hangup") << ended->json;
  ASSERT_TRUE(baresip_->WaitEvent("CALL_CLOSED").has_value());

  ExpectGatewayRecording(id);
  ExpectBaresipHeardTheGateway();
}

// Issue 20: DTMF both ways as RFC 4733 telephone-events (baresip offers
// and answers telephone-event/8000): our digits reach baresip (its ctrl_tcp
// CALL_DTMF_START events), baresip's (its `sndcode` command) reach the
// native client as dtmf events.
TEST_F(BaresipTest, DigitsGoBothWaysAsTelephoneEvents) {
  int64_t id = -1;
  ASSERT_NO_FATAL_FAILURE(CallBaresip(&id));

  client_->Send(absl::StrCat(R"({"cmd":"send-dtmf","account":"account-1","call_id":)", id,
                             R"(,"digits":"19#*","duration_ms":80,"token":"d1"})"));
  std::string heard;
  for (int i = 0; i < 4; ++i) {
    std::optional<std::string> event = baresip_->WaitEvent("CALL_DTMF_START");
    ASSERT_TRUE(event.has_value()) << "baresip heard only '" << heard << "'";
    heard += JsonField(*event, "param");
  }
  EXPECT_EQ(heard, "19#*");
  auto sent = client_->WaitFor([](const NativeEvent& e) { return e.event() == "dtmf-sent"; });
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->Str("digits"), "19#*") << sent->json;
  EXPECT_EQ(sent->Str("token"), "d1") << sent->json;
  EXPECT_EQ(sent->Int("call_id"), id);

  for (const char* digit : {"5", "D"}) {
    ASSERT_TRUE(baresip_->Command("sndcode", digit).ok());
    auto dtmf = client_->WaitFor([](const NativeEvent& e) { return e.event() == "dtmf"; });
    ASSERT_TRUE(dtmf.has_value()) << "no dtmf event for " << digit;
    EXPECT_EQ(dtmf->Str("digit"), digit) << dtmf->json;
    EXPECT_EQ(dtmf->Str("method"), "rfc4733") << dtmf->json;
    EXPECT_EQ(dtmf->Int("call_id"), id);
  }
  Command("hangup-call", id);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-1", id)).has_value());
}

// Issue 20: baresip as the transferee: our REFER (blind, to account-2's
// 3002) makes it call 3002; account-2 answers; baresip's NOTIFY 200 ends
// our call "Transferred".
TEST_F(BaresipTest, BaresipFollowsOurBlindTransfer) {
  int64_t id = -1;
  ASSERT_NO_FATAL_FAILURE(CallBaresip(&id));
  client_->Send(absl::StrCat(R"({"cmd":"transfer-call","account":"account-1","call_id":)", id,
                             R"(,"num":"3002"})"));
  auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-2"));
  ASSERT_TRUE(incoming.has_value()) << "baresip did not call 3002";
  EXPECT_EQ(incoming->Str("caller"), "3006");
  const int64_t leg2 = incoming->Int("call_id");
  client_->Send(absl::StrCat(R"({"cmd":"answer-call","account":"account-2","call_id":)", leg2,
                             "}"));
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", id));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Str("reason"), "Transferred") << ended->json;
  EXPECT_EQ(ended->Int("code"), 0);
  bool final_progress = false;
  for (const NativeEvent& e : client_->skipped()) {
    if (e.event() == "transfer-progress" && e.Int("call_id") == id && e.Int("code") == 200) {
      final_progress = true;
    }
  }
  EXPECT_TRUE(final_progress) << "no transfer-progress 200";
  EXPECT_EQ(CallState(*client_, "account-2", leg2), "active");
  client_->Send(absl::StrCat(R"({"cmd":"hangup-call","account":"account-2","call_id":)", leg2,
                             "}"));
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-2", leg2)).has_value());
}

// Issue 20: baresip as the referrer (its `transfer` command): account-1
// calls 3002 by itself (call-started with transferred_from), NOTIFYs
// baresip, which then hangs up the first call.
TEST_F(BaresipTest, BaresipTransfersUsToAccount2) {
  ASSERT_TRUE(baresip_->Command("dial", absl::StrCat("sip:3001@", kamailio().server())).ok());
  auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-1"));
  ASSERT_TRUE(incoming.has_value());
  const int64_t id = incoming->Int("call_id");
  Command("answer-call", id);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
  ASSERT_TRUE(baresip_->WaitEvent("CALL_ESTABLISHED").has_value());
  ASSERT_TRUE(baresip_->Command("transfer", absl::StrCat("sip:3002@", kamailio().server())).ok());
  auto started = client_->WaitFor([](const NativeEvent& e) { return e.event() == "call-started"; });
  ASSERT_TRUE(started.has_value()) << baresip_->Log();
  EXPECT_EQ(started->Str("account"), "account-1");
  EXPECT_EQ(started->Str("num"), "3002");
  EXPECT_EQ(started->Int("transferred_from"), id);
  const int64_t new_call = started->Int("call_id");
  auto incoming2 = client_->WaitFor(IsEventOf("call-incoming", "account-2"));
  ASSERT_TRUE(incoming2.has_value());
  EXPECT_EQ(incoming2->Str("caller"), "3001");
  client_->Send(absl::StrCat(R"({"cmd":"answer-call","account":"account-2","call_id":)",
                             incoming2->Int("call_id"), "}"));
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", new_call)).has_value());
  // baresip got our NOTIFY 200 and ends the transferred call.
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", id));
  ASSERT_TRUE(ended.has_value()) << baresip_->Log();
  EXPECT_EQ(ended->Str("reason"), "Remote hangup") << ended->json;
  Command("hangup-call", new_call);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-1", new_call)).has_value());
}

}  // namespace
}  // namespace telestra::testing
