// /ws/audio in-process (docs/websocket-api.md, "Call audio: /ws/audio"): the
// web server with a FakeAudioBackend whose taps the test drives as the
// media thread would, and the Beast test client of tests/integration.
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backend/call_audio_tap.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "backend/media/audio_format.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "gateway/audio/call_audio_session.h"
#include "gateway/web/web_server.h"
#include "gtest/gtest.h"
#include "tests/backend/media/media_test_support.h"
#include "tests/gateway/audio/fake_audio_backend.h"
#include "tests/integration/web_client.h"

namespace telestra::gateway {
namespace {

using backend::CallAudioTap;
using backend::kFrameSamples;
using telestra::testing::HttpRequest;
using telestra::testing::NativeEvent;
using telestra::testing::WebClient;
using telestra::testing::WebClientOptions;
using telestra::testing::WebMessage;
using testing::FakeAudioBackend;

constexpr double kPi = 3.14159265358979323846;
constexpr absl::Duration kWait = absl::Seconds(5);
// How long "nothing arrives" is watched for.
constexpr absl::Duration kQuiet = absl::Milliseconds(200);

// One 8 kHz frame whose every sample is `level`, as the wire's bytes.
std::string FrameBytes(int16_t level, int samples = kFrameSamples) {
  std::vector<int16_t> pcm(static_cast<size_t>(samples), level);
  return std::string(reinterpret_cast<const char*>(pcm.data()), pcm.size() * 2);
}

std::vector<int16_t> Samples(const std::string& bytes) {
  std::vector<int16_t> samples(bytes.size() / 2);
  std::memcpy(samples.data(), bytes.data(), samples.size() * 2);
  return samples;
}

// The upgrade request a browser sends, as a plain request: a refused one
// shows its status and body.
std::map<std::string, std::string> UpgradeHeaders() {
  return {{"Connection", "Upgrade"},
          {"Upgrade", "websocket"},
          {"Sec-WebSocket-Version", "13"},
          {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}};
}

class AudioSocketTest : public ::testing::Test {
 protected:
  virtual WebServer::Options Options() { return {}; }

  void SetUp() override {
    backend_.AddCall("account-1", 0);
    backend_.AddCall("account-1", 7);
    backend_.set_max_streams(2);
    WebServer::Options options = Options();
    options.port = 0;
    options.call_audio_stats = &stats_;
    server_ = std::make_unique<WebServer>(options, io_, &backend_, &dispatcher_, &hub_);
    ASSERT_TRUE(server_->Start().ok());
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  void TearDown() override {
    server_->Stop();
    work_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
  }

  // A client of /ws/audio?<query> that keeps binary messages.
  absl::StatusOr<std::unique_ptr<WebClient>> Connect(const std::string& query,
                                                     WebClientOptions options = {}) {
    options.target = "/ws/audio?" + query;
    options.keep_binary = true;
    return WebClient::Connect(server_->port(), options);
  }

  // Connects, attaches the tap (codec PCMU) and reads audio-started.
  std::unique_ptr<WebClient> Started(const std::string& query, std::shared_ptr<CallAudioTap>* tap,
                                     int64_t call_id = 0, WebClientOptions options = {}) {
    auto client = Connect(query, options);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    *tap = backend_.Taps(call_id).empty() ? nullptr : backend_.Taps(call_id).back();
    EXPECT_NE(*tap, nullptr);
    if (*tap == nullptr) return nullptr;
    FakeAudioBackend::Attach(**tap, "PCMU");
    std::optional<WebMessage> started = (*client)->NextMessage(kWait);
    EXPECT_TRUE(started.has_value() && started->text);
    if (!started.has_value()) return nullptr;
    EXPECT_TRUE(absl::StartsWith(started->data, R"({"event":"audio-started")")) << started->data;
    return *std::move(client);
  }

  // The status and body of a refused upgrade to /ws/audio?<query>.
  telestra::testing::HttpResult Refusal(const std::string& query,
                                        std::map<std::string, std::string> headers = {}) {
    for (const auto& [name, value] : UpgradeHeaders()) headers[name] = value;
    absl::StatusOr<telestra::testing::HttpResult> result =
        HttpRequest(server_->port(), "GET", "/ws/audio?" + query, headers);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : telestra::testing::HttpResult{};
  }

  // Waits until `condition` holds (polling: it reads the fake media side).
  static bool Eventually(const std::function<bool()>& condition) {
    return backend::testing::WaitFor(condition, kWait);
  }

  CallAudioStats stats_;
  FakeAudioBackend backend_;
  backend::EventHub hub_{1000};
  backend::CommandDispatcher dispatcher_{&backend_, &hub_};
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::unique_ptr<WebServer> server_;
  std::vector<std::thread> threads_;
};

// ---- Refusals before the upgrade

TEST_F(AudioSocketTest, UnknownCallOrAccountIsRefusedWith404BeforeTheUpgrade) {
  telestra::testing::HttpResult refused = Refusal("account=account-1&call_id=5");
  EXPECT_EQ(refused.status, 404);
  EXPECT_EQ(refused.body, "404 Not Found: Unknown call id 5 for account: account-1\n");
  // Call 7 belongs to account-1, not to account-2.
  EXPECT_EQ(Refusal("account=account-2&call_id=7").status, 404);
  EXPECT_EQ(stats_.streams_refused.load(), 2u);
  auto client = Connect("account=account-1&call_id=5");
  ASSERT_FALSE(client.ok());
  EXPECT_TRUE(absl::StrContains(client.status().message(), "HTTP 404")) << client.status();
  EXPECT_TRUE(backend_.Taps(5).empty());
  EXPECT_EQ(stats_.streams_opened.load(), 0u);
}

TEST_F(AudioSocketTest, BadParametersAreRefusedWith400NamingTheParameter) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"call_id=0", "Missing parameter: account"},
      {"account=account-1", "Missing parameter: call_id"},
      {"account=account-1&call_id=-1",
       "Bad parameter call_id: an integer from 0 to 9007199254740992"},
      {"account=account-1&call_id=zero",
       "Bad parameter call_id: an integer from 0 to 9007199254740992"},
      {"account=account-1&call_id=0&rate=44100", "Bad parameter rate: 8000 or 16000"},
      {"account=account-1&call_id=0&direction=loud",
       "Bad parameter direction: listen, speak or both"},
  };
  for (const auto& [query, message] : cases) {
    telestra::testing::HttpResult refused = Refusal(query);
    EXPECT_EQ(refused.status, 400) << query;
    EXPECT_EQ(refused.body, "400 Bad Request: " + message + "\n") << query;
  }
  EXPECT_TRUE(backend_.Taps(0).empty());
  EXPECT_EQ(stats_.streams_refused.load(), cases.size());
}

TEST_F(AudioSocketTest, BeyondMaxStreamsPerCallIsRefusedWith429) {
  std::shared_ptr<CallAudioTap> first_tap, second_tap;
  auto first = Started("account=account-1&call_id=0", &first_tap);
  auto second = Started("account=account-1&call_id=0&direction=listen", &second_tap);
  ASSERT_TRUE(first && second);
  telestra::testing::HttpResult refused = Refusal("account=account-1&call_id=0");
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.body,
            "429 Too Many Requests: Too many audio streams on call 0 (max-streams-per-call is "
            "2)\n");
  // Another call is not affected; a stream that ends frees its place.
  std::shared_ptr<CallAudioTap> other_tap;
  EXPECT_NE(Started("account=account-1&call_id=7", &other_tap, 7), nullptr);
  first->Close();
  ASSERT_TRUE(Eventually([&] { return first_tap->stopped(); }));
  std::shared_ptr<CallAudioTap> third_tap;
  EXPECT_NE(Started("account=account-1&call_id=0", &third_tap), nullptr);
}

TEST_F(AudioSocketTest, PlainGetIsAskedToUpgradeAndOtherSocketPathsAreNotFound) {
  auto plain = HttpRequest(server_->port(), "GET", "/ws/audio?account=account-1&call_id=0");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->status, 426);
  auto other = HttpRequest(server_->port(), "GET", "/ws/other", UpgradeHeaders());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->status, 404);
  EXPECT_TRUE(backend_.Taps(0).empty());
}

class AudioSocketTokenTest : public AudioSocketTest {
 protected:
  WebServer::Options Options() override {
    WebServer::Options options;
    options.token = "s3cret";
    return options;
  }
};

TEST_F(AudioSocketTokenTest, NeedsTheTokenAndASameOriginLikeWs) {
  // No token, a wrong one: 401, and the call is not even looked at.
  EXPECT_EQ(Refusal("account=account-1&call_id=0").status, 401);
  EXPECT_EQ(Refusal("account=account-1&call_id=5&token=wrong").status, 401);
  EXPECT_EQ(Refusal("account=account-1&call_id=0",
                    {{"Authorization", "Bearer s3cret"}, {"Origin", "http://evil.example"}})
                .status,
            403);
  EXPECT_TRUE(backend_.Taps(0).empty());
  // With it: in the query, or as a Bearer header.
  auto by_query = Connect("account=account-1&call_id=0&token=s3cret");
  EXPECT_TRUE(by_query.ok()) << by_query.status();
  WebClientOptions options;
  options.headers["Authorization"] = "Bearer s3cret";
  auto by_header = Connect("account=account-1&call_id=7", options);
  EXPECT_TRUE(by_header.ok()) << by_header.status();
}

// ---- The stream

TEST_F(AudioSocketTest, StartedThenHeardFramesInOrderAsBinaryMessages) {
  auto client = Connect("account=account-1&call_id=0&rate=8000&direction=both");
  ASSERT_TRUE(client.ok()) << client.status();
  std::shared_ptr<CallAudioTap> tap = backend_.WaitForTap(0);
  ASSERT_NE(tap, nullptr);
  FakeAudioBackend::Attach(*tap, "PCMU");
  std::optional<WebMessage> started = (*client)->NextMessage(kWait);
  ASSERT_TRUE(started.has_value());
  EXPECT_TRUE(started->text);
  EXPECT_EQ(started->data,
            R"({"event":"audio-started","account":"account-1","call_id":0,"sample_rate":8000,)"
            R"("codec":"PCMU","direction":"both"})");
  for (int i = 0; i < 30; ++i) FakeAudioBackend::Hear(*tap, static_cast<int16_t>(100 + i));
  for (int i = 0; i < 30; ++i) {
    std::optional<WebMessage> frame = (*client)->NextMessage(kWait);
    ASSERT_TRUE(frame.has_value()) << "frame " << i;
    ASSERT_FALSE(frame->text) << frame->data;
    EXPECT_EQ(frame->data, FrameBytes(static_cast<int16_t>(100 + i))) << "frame " << i;
  }
  EXPECT_EQ(stats_.streams_opened.load(), 1u);
  EXPECT_EQ(stats_.streams_active.load(), 1);
}

TEST_F(AudioSocketTest, SixteenKilohertzFramesAre640BytesAndKeepThePitch) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&rate=16000&direction=listen", &tap);
  ASSERT_NE(client, nullptr);
  constexpr int kFrames = 25;
  std::vector<int16_t> tone(kFrameSamples * kFrames);
  for (size_t i = 0; i < tone.size(); ++i) {
    tone[i] = static_cast<int16_t>(8000 * std::sin(2 * kPi * 1000 * static_cast<double>(i) / 8000));
  }
  for (int f = 0; f < kFrames; ++f) FakeAudioBackend::HearFrame(*tap, &tone[f * kFrameSamples]);
  std::vector<int16_t> heard;
  for (int f = 0; f < kFrames; ++f) {
    std::optional<WebMessage> frame = client->NextMessage(kWait);
    ASSERT_TRUE(frame.has_value() && !frame->text) << "frame " << f;
    ASSERT_EQ(frame->data.size(), 640u);
    std::vector<int16_t> samples = Samples(frame->data);
    heard.insert(heard.end(), samples.begin(), samples.end());
  }
  // After the resampler's start-up: 1000 Hz at 16 kHz, nothing at 3000 Hz.
  absl::Span<const int16_t> steady(heard.data() + 640, heard.size() - 640);
  EXPECT_GT(backend::testing::GoertzelPower(steady, 1000, 16000), 0.1 * 0.25 * 8000 * 8000);
  EXPECT_LT(backend::testing::GoertzelPower(steady, 3000, 16000),
            0.01 * backend::testing::GoertzelPower(steady, 1000, 16000));
}

TEST_F(AudioSocketTest, SpeakStreamQueuesTheClientsFramesForTheCallAndSendsNone) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&direction=speak", &tap);
  ASSERT_NE(client, nullptr);
  // Three frames in one message, then one.
  ASSERT_TRUE(client->SendBinary(FrameBytes(1) + FrameBytes(2) + FrameBytes(3)));
  ASSERT_TRUE(client->SendBinary(FrameBytes(4)));
  ASSERT_TRUE(Eventually([&] { return tap->spoken_queued() == 4; }));
  for (int16_t level = 1; level <= 4; ++level) {
    std::vector<int16_t> frame;
    ASSERT_TRUE(FakeAudioBackend::TakeSpoken(*tap, &frame));
    EXPECT_EQ(frame, std::vector<int16_t>(kFrameSamples, level));
  }
  // A speaking stream hears nothing.
  FakeAudioBackend::Hear(*tap, 5);
  EXPECT_FALSE(client->NextMessage(kQuiet).has_value());
}

TEST_F(AudioSocketTest, MarkComesBackOnceTheAudioBeforeItWasSent) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&direction=speak", &tap);
  ASSERT_NE(client, nullptr);
  // Nothing queued: at once.
  ASSERT_TRUE(client->Send(R"({"cmd":"mark","name":"empty"})"));
  std::optional<NativeEvent> empty = client->Next(kWait);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->json, R"({"event":"mark","name":"empty"})");
  ASSERT_TRUE(client->SendBinary(FrameBytes(1) + FrameBytes(2)));
  ASSERT_TRUE(client->Send(R"({"cmd":"mark","name":"m1"})"));
  ASSERT_TRUE(Eventually([&] { return tap->spoken_queued() == 2; }));
  EXPECT_FALSE(client->NextMessage(kQuiet).has_value()) << "the mark came back early";
  std::vector<int16_t> frame;
  ASSERT_TRUE(FakeAudioBackend::TakeSpoken(*tap, &frame));
  EXPECT_FALSE(client->NextMessage(kQuiet).has_value()) << "the mark came back early";
  ASSERT_TRUE(FakeAudioBackend::TakeSpoken(*tap, &frame));
  std::optional<NativeEvent> mark = client->Next(kWait);
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->json, R"({"event":"mark","name":"m1"})");
}

TEST_F(AudioSocketTest, ClearDropsTheQueuedAudioAndReleasesItsMarks) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&direction=both", &tap);
  ASSERT_NE(client, nullptr);
  std::string five;
  for (int16_t i = 1; i <= 5; ++i) five += FrameBytes(i);
  ASSERT_TRUE(client->SendBinary(five));
  ASSERT_TRUE(client->Send(R"({"cmd":"mark","name":"a"})"));
  ASSERT_TRUE(client->SendBinary(FrameBytes(6)));
  ASSERT_TRUE(client->Send(R"({"cmd":"mark","name":"b"})"));
  ASSERT_TRUE(Eventually([&] { return tap->spoken_queued() == 6; }));
  ASSERT_TRUE(client->Send(R"({"cmd":"clear"})"));
  std::optional<NativeEvent> a = client->Next(kWait);
  std::optional<NativeEvent> b = client->Next(kWait);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->json, R"({"event":"mark","name":"a"})");
  EXPECT_EQ(b->json, R"({"event":"mark","name":"b"})");
  EXPECT_EQ(tap->spoken_queued(), 0u);
  std::vector<int16_t> frame;
  EXPECT_FALSE(FakeAudioBackend::TakeSpoken(*tap, &frame));
  // The stream goes on.
  ASSERT_TRUE(client->SendBinary(FrameBytes(7)));
  ASSERT_TRUE(Eventually([&] { return tap->spoken_queued() == 1; }));
}

TEST_F(AudioSocketTest, FarEndDigitsBecomeDtmfEventsBetweenTheFrames) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&direction=listen", &tap);
  ASSERT_NE(client, nullptr);
  FakeAudioBackend::Hear(*tap, 1);
  std::optional<WebMessage> frame = client->NextMessage(kWait);
  ASSERT_TRUE(frame.has_value() && !frame->text);
  FakeAudioBackend::Dtmf(*tap, '5', 100);
  std::optional<WebMessage> dtmf = client->NextMessage(kWait);
  ASSERT_TRUE(dtmf.has_value() && dtmf->text);
  EXPECT_EQ(dtmf->data, R"({"event":"dtmf","digit":"5","duration_ms":100})");
  FakeAudioBackend::Dtmf(*tap, '#', 0);
  std::optional<NativeEvent> hash = client->Next(kWait);
  ASSERT_TRUE(hash.has_value());
  EXPECT_EQ(hash->json, R"({"event":"dtmf","digit":"#","duration_ms":0})");
}

TEST_F(AudioSocketTest, CallEndGivesAudioStoppedWithItsCountersThenNormalClose) {
  auto client = Connect("account=account-1&call_id=0&direction=listen");
  ASSERT_TRUE(client.ok()) << client.status();
  std::shared_ptr<CallAudioTap> tap = backend_.WaitForTap(0);
  ASSERT_NE(tap, nullptr);
  // 60 frames before the stream is attached: the tap keeps the newest 50.
  for (int i = 0; i < 60; ++i) FakeAudioBackend::Hear(*tap, static_cast<int16_t>(i));
  FakeAudioBackend::Attach(*tap, "PCMA");
  std::optional<NativeEvent> started = (*client)->Next(kWait);
  ASSERT_TRUE(started.has_value());
  EXPECT_EQ(started->Str("codec"), "PCMA");
  EXPECT_EQ(started->Str("direction"), "listen");
  for (int i = 10; i < 60; ++i) {
    std::optional<WebMessage> frame = (*client)->NextMessage(kWait);
    ASSERT_TRUE(frame.has_value() && !frame->text) << i;
    EXPECT_EQ(frame->data, FrameBytes(static_cast<int16_t>(i)));
  }
  FakeAudioBackend::Stop(*tap, "Call ended");
  std::optional<WebMessage> stopped = (*client)->NextMessage(kWait);
  ASSERT_TRUE(stopped.has_value() && stopped->text);
  EXPECT_EQ(stopped->data,
            R"({"event":"audio-stopped","reason":"Call ended","frames_dropped":10,)"
            R"("underruns":0,"frames_sent":50,"frames_spoken":0})");
  EXPECT_FALSE((*client)->NextMessage(kWait).has_value());
  EXPECT_TRUE((*client)->closed());
  EXPECT_EQ((*client)->close_code(), 1000);
  ASSERT_TRUE(Eventually([&] { return stats_.streams_active.load() == 0; }));
  EXPECT_EQ(stats_.frames_dropped.load(), 10u);
  EXPECT_EQ(stats_.frames_sent.load(), 50u);
}

TEST_F(AudioSocketTest, CallEndingBeforeTheAttachGivesAudioStoppedWithoutStarted) {
  auto client = Connect("account=account-1&call_id=0");
  ASSERT_TRUE(client.ok()) << client.status();
  std::shared_ptr<CallAudioTap> tap = backend_.WaitForTap(0);
  ASSERT_NE(tap, nullptr);
  FakeAudioBackend::Stop(*tap, "Call ended");
  std::optional<NativeEvent> stopped = (*client)->Next(kWait);
  ASSERT_TRUE(stopped.has_value());
  EXPECT_EQ(stopped->event(), "audio-stopped") << stopped->json;
  EXPECT_EQ(stopped->Str("reason"), "Call ended");
  EXPECT_FALSE((*client)->Next(kWait).has_value());
  EXPECT_EQ((*client)->close_code(), 1000);
}

TEST_F(AudioSocketTest, ClientThatLeavesDetachesItsStreamAndTheCallGoesOn) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0", &tap);
  ASSERT_NE(client, nullptr);
  client->Close();
  ASSERT_TRUE(Eventually([&] { return tap->stopped(); }));
  EXPECT_EQ(tap->stop_reason(), "Client went away");
  ASSERT_TRUE(Eventually([&] { return server_->stats().sessions == 0; }));
  EXPECT_EQ(stats_.streams_active.load(), 0);
}

// ---- The client's mistakes

TEST_F(AudioSocketTest, WrongFrameSizeGetsFailThenClose1003) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&direction=both", &tap);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->SendBinary(std::string(100, '\0')));
  std::optional<NativeEvent> fail = client->Next(kWait);
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->json,
            R"({"event":"fail","error":"Bad audio size 100 bytes: whole 20 ms frames of 320 )"
            R"j(bytes (16-bit mono at 8000 Hz)"})j");
  EXPECT_FALSE(client->Next(kWait).has_value());
  EXPECT_EQ(client->close_code(), 1003);
  // Only the stream ended.
  ASSERT_TRUE(Eventually([&] { return tap->stopped(); }));
  EXPECT_EQ(tap->stop_reason(), "Client went away");
}

TEST_F(AudioSocketTest, SixteenKilohertzFramesMustBe640Bytes) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&rate=16000&direction=speak", &tap);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->SendBinary(std::string(640 * 2, '\0')));  // two frames: fine
  ASSERT_TRUE(client->SendBinary(FrameBytes(0)));                // 320 bytes: not at 16 kHz
  std::optional<NativeEvent> fail = client->Next(kWait);
  ASSERT_TRUE(fail.has_value());
  EXPECT_TRUE(absl::StrContains(fail->Str("error"), "Bad audio size 320 bytes")) << fail->json;
  EXPECT_FALSE(client->Next(kWait).has_value());
  EXPECT_EQ(client->close_code(), 1003);
}

TEST_F(AudioSocketTest, ListenOnlyStreamRefusesAudioWithFailThenClose1003) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&direction=listen", &tap);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->SendBinary(FrameBytes(1)));
  std::optional<NativeEvent> fail = client->Next(kWait);
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->json,
            R"({"event":"fail","error":"This stream only listens: it takes no audio"})");
  EXPECT_FALSE(client->Next(kWait).has_value());
  EXPECT_EQ(client->close_code(), 1003);
}

TEST_F(AudioSocketTest, BadCommandsGetFailAndTheStreamGoesOn) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&direction=both", &tap);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send(R"({"cmd":"dance"})"));
  ASSERT_TRUE(client->Send("{"));
  ASSERT_TRUE(client->Send(R"({"cmd":"mark"})"));
  std::optional<NativeEvent> unknown = client->Next(kWait);
  std::optional<NativeEvent> malformed = client->Next(kWait);
  std::optional<NativeEvent> no_name = client->Next(kWait);
  ASSERT_TRUE(unknown && malformed && no_name);
  EXPECT_EQ(unknown->json, R"({"event":"fail","error":"Unknown command: dance"})");
  EXPECT_TRUE(absl::StartsWith(malformed->Str("error"), "Malformed JSON: ")) << malformed->json;
  EXPECT_EQ(no_name->json, R"({"event":"fail","error":"Missing field: name"})");
  ASSERT_TRUE(client->Send(R"({"cmd":"mark","name":"still here"})"));
  std::optional<NativeEvent> mark = client->Next(kWait);
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->json, R"({"event":"mark","name":"still here"})");
  FakeAudioBackend::Hear(*tap, 3);
  std::optional<WebMessage> frame = client->NextMessage(kWait);
  ASSERT_TRUE(frame.has_value() && !frame->text);
  EXPECT_FALSE(tap->stopped());
}

TEST_F(AudioSocketTest, TooManyMarksWaitingAreRefused) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&direction=speak", &tap);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->SendBinary(FrameBytes(1)));
  for (int i = 0; i < 101; ++i) {
    ASSERT_TRUE(client->Send(absl::StrCat(R"({"cmd":"mark","name":"m)", i, R"("})")));
  }
  std::optional<NativeEvent> fail = client->Next(kWait);
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->json, R"j({"event":"fail","error":"Too many marks waiting (at most 100)"})j");
  // Once the frame has played, the 100 come back and marks are taken again.
  ASSERT_TRUE(Eventually([&] { return tap->spoken_queued() == 1; }));
  std::vector<int16_t> frame;
  ASSERT_TRUE(FakeAudioBackend::TakeSpoken(*tap, &frame));
  for (int i = 0; i < 100; ++i) {
    std::optional<NativeEvent> mark = client->Next(kWait);
    ASSERT_TRUE(mark.has_value()) << i;
    EXPECT_EQ(mark->Str("name"), absl::StrCat("m", i));
  }
  ASSERT_TRUE(client->Send(R"({"cmd":"mark","name":"again"})"));
  std::optional<NativeEvent> again = client->Next(kWait);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->json, R"({"event":"mark","name":"again"})");
}

TEST_F(AudioSocketTest, MessageOverTheLimitClosesWith1009) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&direction=speak", &tap);
  ASSERT_NE(client, nullptr);
  client->SendBinary(std::string(320 * 210, '\0'));  // 67,200 bytes > 64 KiB
  EXPECT_FALSE(client->NextMessage(kWait).has_value());
  EXPECT_TRUE(client->closed());
  EXPECT_EQ(client->close_code(), 1009);
  // Counted once Beast's read ends (after the close it sent).
  EXPECT_TRUE(Eventually([&] { return server_->stats().oversize_closes == 1; }));
  ASSERT_TRUE(Eventually([&] { return tap->stopped(); }));
  EXPECT_EQ(tap->spoken_queued(), 0u);
}

// ---- Back-pressure and bounds

TEST_F(AudioSocketTest, AudioBeyondTheCallsQueueWaitsInTheSocketAndNothingIsLost) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&direction=speak", &tap);
  ASSERT_NE(client, nullptr);
  // 6 s of audio at once (the tap takes 5 s), in messages of 1 s, then a mark.
  constexpr int kFrames = 300;
  for (int first = 0; first < kFrames; first += 50) {
    std::string second;
    for (int i = first; i < first + 50; ++i) second += FrameBytes(static_cast<int16_t>(i));
    ASSERT_TRUE(client->SendBinary(second));
  }
  ASSERT_TRUE(client->Send(R"({"cmd":"mark","name":"end"})"));
  ASSERT_TRUE(Eventually([&] { return tap->spoken_queued() == CallAudioTap::kSpokenCapacity; }))
      << tap->spoken_queued();
  // Played as the media thread would: every frame, in order, none lost.
  for (int i = 0; i < kFrames; ++i) {
    std::vector<int16_t> frame;
    ASSERT_TRUE(Eventually([&] { return FakeAudioBackend::TakeSpoken(*tap, &frame); }))
        << "frame " << i;
    ASSERT_EQ(frame, std::vector<int16_t>(kFrameSamples, static_cast<int16_t>(i)))
        << "frame " << i;
  }
  std::optional<NativeEvent> mark = client->Next(kWait);
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->json, R"({"event":"mark","name":"end"})");
}

TEST_F(AudioSocketTest, ClientThatDoesNotReadLosesOldFramesNotTheSession) {
  WebClientOptions options;
  options.receive_buffer_bytes = 4096;
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0&direction=listen", &tap, 0, options);
  ASSERT_NE(client, nullptr);
  client->PauseReading();
  // 20 s of frames: far more than the socket buffers and the tap's 1 s.
  constexpr int kFrames = 1000;
  for (int i = 0; i < kFrames; ++i) FakeAudioBackend::Hear(*tap, static_cast<int16_t>(i));
  ASSERT_TRUE(Eventually([&] { return tap->counters().frames_dropped > 0; }));
  EXPECT_FALSE(tap->stopped());
  client->ResumeReading();
  FakeAudioBackend::Stop(*tap, "Call ended");
  int last = -1;
  uint64_t frames = 0;
  std::optional<NativeEvent> stopped;
  while (std::optional<WebMessage> message = client->NextMessage(kWait)) {
    if (message->text) {
      stopped = NativeEvent{message->data};
      break;
    }
    const int level = Samples(message->data)[0];
    EXPECT_GT(level, last) << "frames out of order";
    last = level;
    ++frames;
  }
  ASSERT_TRUE(stopped.has_value());
  EXPECT_EQ(stopped->event(), "audio-stopped");
  EXPECT_EQ(last, kFrames - 1) << "the newest frame arrives";
  EXPECT_GT(stopped->Int("frames_dropped"), 0);
  EXPECT_EQ(static_cast<uint64_t>(stopped->Int("frames_sent")), frames);
  EXPECT_EQ(frames + static_cast<uint64_t>(stopped->Int("frames_dropped")),
            static_cast<uint64_t>(kFrames));
}

// ---- Admission and shutdown

class AudioSocketOneSessionTest : public AudioSocketTest {
 protected:
  WebServer::Options Options() override {
    WebServer::Options options;
    options.max_sessions = 1;
    return options;
  }
};

TEST_F(AudioSocketOneSessionTest, SessionsBeyondMaxSessionsGetFailThen1013AndNoStream) {
  auto events = WebClient::Connect(server_->port());  // /ws takes the only slot
  ASSERT_TRUE(events.ok());
  ASSERT_TRUE((*events)->Next(kWait).has_value());
  auto client = Connect("account=account-1&call_id=0");
  ASSERT_TRUE(client.ok()) << client.status();
  std::optional<NativeEvent> fail = (*client)->Next(kWait);
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->json, R"j({"event":"fail","error":"Too many sessions (max-sessions is 1)"})j");
  EXPECT_FALSE((*client)->Next(kWait).has_value());
  EXPECT_EQ((*client)->close_code(), 1013);
  std::vector<std::shared_ptr<CallAudioTap>> taps = backend_.Taps(0);
  ASSERT_EQ(taps.size(), 1u);
  EXPECT_TRUE(taps[0]->stopped());
  EXPECT_EQ(server_->stats().sessions_refused, 1u);
}

TEST_F(AudioSocketTest, SessionsCountAsWebSocketSessionsAndStopClosesThemWith1001) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0", &tap);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(server_->stats().sessions, 1u);
  FakeAudioBackend::Hear(*tap, 1);
  server_->Stop(absl::Now() + kWait);
  EXPECT_TRUE(server_->WaitForFlush(absl::Now() + kWait));
  EXPECT_EQ(server_->stats().sessions, 0u);
  while (client->NextMessage(kWait).has_value()) {
  }
  EXPECT_TRUE(client->closed());
  EXPECT_EQ(client->close_code(), 1001);
  ASSERT_TRUE(Eventually([&] { return tap->stopped(); }));
}

TEST_F(AudioSocketTest, CallEndedBeforeShutdownStillSendsAudioStoppedThenNormalClose) {
  std::shared_ptr<CallAudioTap> tap;
  auto client = Started("account=account-1&call_id=0", &tap);
  ASSERT_NE(client, nullptr);
  client->PauseReading();
  FakeAudioBackend::Stop(*tap, "Gateway shutting down");
  server_->Stop(absl::Now() + kWait);
  client->ResumeReading();
  std::optional<NativeEvent> stopped = client->Next(kWait);
  ASSERT_TRUE(stopped.has_value());
  EXPECT_EQ(stopped->event(), "audio-stopped");
  EXPECT_EQ(stopped->Str("reason"), "Gateway shutting down");
  EXPECT_FALSE(client->Next(kWait).has_value());
  EXPECT_EQ(client->close_code(), 1000);
}

}  // namespace
}  // namespace telestra::gateway
