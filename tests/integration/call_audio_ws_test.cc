// Call audio over /ws/audio against real peers (issue 19): baresip (3006,
// sending a 1000 Hz sine, recording what it receives) calls the gateway's
// account-1 (3001, `audio = tone:440`, recording every call) through a real
// Kamailio. A listen stream finds baresip's tone (Goertzel); a speak
// stream's 700 Hz tone is found on the wire, in baresip's recording and in
// the right (sent) channel of the gateway's; the end of the call ends the
// streams with audio-stopped and close code 1000.
#include <dirent.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/backend/media/media_test_support.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"
#include "tests/integration/web_client.h"

namespace telestra::testing {
namespace {

constexpr int kGatewayHz = 440;
constexpr int kBaresipHz = 1000;
constexpr int kSpokenHz = 700;
constexpr double kPi = 3.14159265358979323846;

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

// `seconds` of a sine of `hz` at `rate` (amplitude 10000), as the wire's
// little-endian bytes.
std::string ToneBytes(int rate, double hz, double seconds) {
  std::vector<int16_t> pcm(static_cast<size_t>(rate * seconds));
  for (size_t i = 0; i < pcm.size(); ++i) {
    pcm[i] = static_cast<int16_t>(10000 * std::sin(2 * kPi * hz * static_cast<double>(i) / rate));
  }
  return std::string(reinterpret_cast<const char*>(pcm.data()), pcm.size() * 2);
}

// The largest share of `hz` (ToneShare) in any half second of `samples`.
double BestToneShare(const std::vector<double>& samples, int rate, double hz) {
  const size_t window = static_cast<size_t>(rate / 2);
  double best = 0;
  for (size_t start = 0; start + window <= samples.size(); start += window / 4) {
    std::vector<double> part(samples.begin() + static_cast<ptrdiff_t>(start),
                             samples.begin() + static_cast<ptrdiff_t>(start + window));
    if (Rms(part) < 0.02) continue;  // silence
    best = std::max(best, ToneShare(part, rate, hz));
  }
  return best;
}

class CallAudioWsTest : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    record_dir_ = MakeTempDir("record");
    ASSERT_FALSE(record_dir_.empty());
    GatewayOptions options;
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

  // baresip calls 3001; account-1 gets the call (ringing): `*id`.
  void BaresipCalls(int64_t* id) {
    ASSERT_TRUE(baresip_->Command("dial", absl::StrCat("sip:3001@", kamailio().server())).ok());
    auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-1"));
    ASSERT_TRUE(incoming.has_value());
    *id = incoming->Int("call_id");
  }

  void Answer(int64_t id) {
    client_->Send(absl::StrCat(R"({"cmd":"answer-call","account":"account-1","call_id":)", id,
                               "}"));
    ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
    ASSERT_TRUE(baresip_->WaitEvent("CALL_ESTABLISHED").has_value());
  }

  // A /ws/audio stream of call `id` of account-1; its audio-started read.
  std::unique_ptr<WebClient> OpenStream(int64_t id, const std::string& direction, int rate,
                                        NativeEvent* started) {
    WebClientOptions options;
    options.target = absl::StrCat("/ws/audio?account=account-1&call_id=", id, "&rate=", rate,
                                  "&direction=", direction);
    options.keep_binary = true;
    auto client = WebClient::Connect(gateway_->web_port(), options);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    std::optional<NativeEvent> first = (*client)->Next(absl::Seconds(5));
    EXPECT_TRUE(first.has_value());
    if (!first.has_value()) return nullptr;
    EXPECT_EQ(first->event(), "audio-started") << first->json;
    *started = *first;
    return *std::move(client);
  }

  // `frames` binary frames of `stream` (text messages before them are
  // kept in `texts`), as samples.
  static std::vector<int16_t> Hear(WebClient& stream, int frames, size_t frame_bytes,
                                   std::vector<std::string>* texts) {
    std::vector<int16_t> pcm;
    while (frames > 0) {
      std::optional<WebMessage> message = stream.NextMessage(absl::Seconds(5));
      EXPECT_TRUE(message.has_value()) << frames << " frames short";
      if (!message.has_value()) break;
      if (message->text) {
        texts->push_back(message->data);
        continue;
      }
      EXPECT_EQ(message->data.size(), frame_bytes);
      const size_t old = pcm.size();
      pcm.resize(old + message->data.size() / 2);
      std::memcpy(pcm.data() + old, message->data.data(), message->data.size());
      --frames;
    }
    return pcm;
  }

  // Reads `stream` until audio-stopped (frames are skipped); then the close.
  static void ExpectStopped(WebClient& stream, const std::string& reason) {
    std::optional<NativeEvent> stopped =
        stream.WaitFor([](const NativeEvent& e) { return e.event() == "audio-stopped"; });
    ASSERT_TRUE(stopped.has_value()) << "no audio-stopped";
    EXPECT_EQ(stopped->Str("reason"), reason) << stopped->json;
    EXPECT_FALSE(stream.NextMessage(absl::Seconds(5)).has_value());
    EXPECT_TRUE(stream.closed());
    EXPECT_EQ(stream.close_code(), 1000);
  }

  // What the gateway sent on call `id` (its recording's right channel).
  std::vector<double> GatewaySent(int64_t id) {
    absl::StatusOr<WavAudio> wav = ReadWav(absl::StrCat(record_dir_, "/", id, "-account-1.wav"));
    EXPECT_TRUE(wav.ok()) << wav.status();
    if (!wav.ok() || wav->channels.size() != 2) return {};
    return wav->channels[1];
  }

  // What baresip received (its sndfile recording).
  WavAudio BaresipHeard() {
    std::vector<std::string> decoded = FilesEndingWith(baresip_->record_dir(), "-dec.wav");
    EXPECT_EQ(decoded.size(), 1u) << "baresip recordings in " << baresip_->record_dir();
    if (decoded.empty()) return {};
    absl::StatusOr<WavAudio> wav = ReadWav(decoded[0]);
    EXPECT_TRUE(wav.ok()) << wav.status();
    return wav.ok() ? *wav : WavAudio{};
  }

  std::string record_dir_;
  std::unique_ptr<BaresipProcess> baresip_;
};

TEST_F(CallAudioWsTest, ListenHearsBaresipAndBaresipHearsWhatASpeakStreamSays) {
  int64_t id = -1;
  ASSERT_NO_FATAL_FAILURE(BaresipCalls(&id));
  // A stream may start while the call rings.
  NativeEvent listen_started;
  std::unique_ptr<WebClient> listen = OpenStream(id, "listen", 8000, &listen_started);
  ASSERT_NE(listen, nullptr);
  EXPECT_EQ(listen_started.Int("call_id"), id);
  EXPECT_EQ(listen_started.Int("sample_rate"), 8000);
  // Not answered yet: no codec chosen.
  EXPECT_EQ(listen_started.Str("codec"), "") << listen_started.json;
  EXPECT_EQ(listen_started.Str("direction"), "listen");
  ASSERT_NO_FATAL_FAILURE(Answer(id));

  // 1.5 s of what the gateway hears: baresip's tone, after the jitter
  // buffer's start (the first half second is skipped).
  std::vector<std::string> texts;
  std::vector<int16_t> heard = Hear(*listen, 100, 320, &texts);
  ASSERT_EQ(heard.size(), 100u * 160);
  absl::Span<const int16_t> steady(heard.data() + 4000, heard.size() - 4000);
  const double at_tone = backend::testing::GoertzelPower(steady, kBaresipHz, 8000);
  EXPECT_GT(at_tone, 0.25 * 1000.0 * 1000.0) << "baresip's tone is not in the stream";
  EXPECT_LT(backend::testing::GoertzelPower(steady, kGatewayHz, 8000), 0.05 * at_tone);
  EXPECT_LT(backend::testing::GoertzelPower(steady, kSpokenHz, 8000), 0.05 * at_tone);

  // 2 s of 700 Hz said at once, then a mark: it comes back once all of it
  // has gone out on the wire.
  NativeEvent speak_started;
  std::unique_ptr<WebClient> speak = OpenStream(id, "speak", 8000, &speak_started);
  ASSERT_NE(speak, nullptr);
  EXPECT_EQ(speak_started.Str("direction"), "speak");
  const absl::Time spoken_at = absl::Now();
  ASSERT_TRUE(speak->SendBinary(ToneBytes(8000, kSpokenHz, 2.0)));
  ASSERT_TRUE(speak->Send(R"({"cmd":"mark","name":"tone-done"})"));
  std::optional<NativeEvent> mark = speak->Next(absl::Seconds(10));
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->json, R"({"event":"mark","name":"tone-done"})");
  EXPECT_GE(absl::Now() - spoken_at, absl::Milliseconds(1900)) << "the mark came back early";
  // The listen stream went on meanwhile (its frames waited in the socket).
  Hear(*listen, 10, 320, &texts);

  ASSERT_TRUE(baresip_->Command("hangup", "").ok());
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", id));
  ASSERT_TRUE(ended.has_value());
  ASSERT_NO_FATAL_FAILURE(ExpectStopped(*listen, "Call ended"));
  ASSERT_NO_FATAL_FAILURE(ExpectStopped(*speak, "Call ended"));
  ASSERT_TRUE(baresip_->WaitEvent("CALL_CLOSED").has_value());

  // The 700 Hz tone went out: in the gateway's recording (right channel =
  // sent) and in what baresip received.
  std::vector<double> sent = GatewaySent(id);
  ASSERT_FALSE(sent.empty());
  EXPECT_GT(BestToneShare(sent, 8000, kSpokenHz), 0.8);
  EXPECT_GT(BestToneShare(sent, 8000, kGatewayHz), 0.8) << "the account's tone before the stream";
  WavAudio baresip_heard = BaresipHeard();
  ASSERT_EQ(baresip_heard.channels.size(), 1u);
  EXPECT_GT(BestToneShare(baresip_heard.channels[0], baresip_heard.sample_rate, kSpokenHz), 0.6);
  EXPECT_GE(Metric(*gateway_, "telestra_call_audio_streams_opened_total"), 2);
}

TEST_F(CallAudioWsTest, BothAt16KilohertzHearsSpeaksAndGetsDigitsUntilTheGatewayHangsUp) {
  int64_t id = -1;
  ASSERT_NO_FATAL_FAILURE(BaresipCalls(&id));
  ASSERT_NO_FATAL_FAILURE(Answer(id));
  // Another account's call, an unknown one: 404 before the upgrade.
  WebClientOptions wrong;
  wrong.target = absl::StrCat("/ws/audio?account=account-2&call_id=", id);
  auto refused = WebClient::Connect(gateway_->web_port(), wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "HTTP 404")) << refused.status();

  NativeEvent started;
  std::unique_ptr<WebClient> both = OpenStream(id, "both", 16000, &started);
  ASSERT_NE(both, nullptr);
  EXPECT_EQ(started.Int("sample_rate"), 16000);
  EXPECT_EQ(started.Str("codec"), "PCMU") << started.json;  // baresip's first choice
  EXPECT_EQ(started.Str("direction"), "both");
  // Say 1.5 s of 700 Hz at 16 kHz while listening.
  ASSERT_TRUE(both->SendBinary(ToneBytes(16000, kSpokenHz, 1.5)));
  ASSERT_TRUE(both->Send(R"({"cmd":"mark","name":"said"})"));
  std::vector<std::string> texts;
  std::vector<int16_t> heard = Hear(*both, 100, 640, &texts);
  ASSERT_EQ(heard.size(), 100u * 320);
  absl::Span<const int16_t> steady(heard.data() + 8000, heard.size() - 8000);
  const double at_tone = backend::testing::GoertzelPower(steady, kBaresipHz, 16000);
  EXPECT_GT(at_tone, 0.25 * 1000.0 * 1000.0);
  EXPECT_LT(backend::testing::GoertzelPower(steady, kSpokenHz, 16000), 0.05 * at_tone)
      << "the stream hears what it says";
  // The mark came back among the frames (1.5 s of audio, 2 s heard).
  bool marked = false;
  for (const std::string& text : texts) marked |= text == R"({"event":"mark","name":"said"})";
  if (!marked) {
    marked = both->WaitFor([](const NativeEvent& e) { return e.event() == "mark"; }).has_value();
  }
  EXPECT_TRUE(marked);

  // A digit from baresip (RFC 4733) comes as a dtmf event.
  ASSERT_TRUE(baresip_->Command("sndcode", "7").ok());
  std::optional<NativeEvent> dtmf =
      both->WaitFor([](const NativeEvent& e) { return e.event() == "dtmf"; });
  ASSERT_TRUE(dtmf.has_value());
  EXPECT_EQ(dtmf->Str("digit"), "7") << dtmf->json;

  client_->Send(absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", id, "}"));
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-1", id)).has_value());
  ASSERT_NO_FATAL_FAILURE(ExpectStopped(*both, "Call ended"));
  ASSERT_TRUE(baresip_->WaitEvent("CALL_CLOSED").has_value());
  std::vector<double> sent = GatewaySent(id);
  EXPECT_GT(BestToneShare(sent, 8000, kSpokenHz), 0.8);
  WavAudio baresip_heard = BaresipHeard();
  ASSERT_EQ(baresip_heard.channels.size(), 1u);
  EXPECT_GT(BestToneShare(baresip_heard.channels[0], baresip_heard.sample_rate, kSpokenHz), 0.6);
}

}  // namespace
}  // namespace telestra::testing
