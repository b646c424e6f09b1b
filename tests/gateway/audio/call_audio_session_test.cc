#include "gateway/audio/call_audio_session.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/media/audio_format.h"
#include "gtest/gtest.h"
#include "tests/backend/media/media_test_support.h"
#include "tests/gateway/audio/fake_audio_backend.h"

namespace telestra::gateway {
namespace {

using backend::CallAudioTap;
using backend::kFrameSamples;
using telestra::v1::CallAudioResponse;
using telestra::v1::CallAudioStart;
using testing::FakeAudioBackend;

constexpr double kPi = 3.14159265358979323846;

CallAudioStart Start(int rate = 8000,
                     telestra::v1::AudioDirection direction = telestra::v1::AUDIO_DIRECTION_BOTH,
                     int64_t call_id = 1, const std::string& account = "account-1") {
  CallAudioStart start;
  start.set_account(account);
  start.set_call_id(call_id);
  start.set_sample_rate(static_cast<uint32_t>(rate));
  start.set_direction(direction);
  return start;
}

// A sine of `hz` at `rate`, `samples` long, as little-endian bytes.
std::string ToneBytes(int rate, double hz, size_t samples, size_t phase = 0) {
  std::vector<int16_t> pcm(samples);
  for (size_t i = 0; i < samples; ++i) {
    pcm[i] = static_cast<int16_t>(8000 * std::sin(2 * kPi * hz * static_cast<double>(i + phase) /
                                                  rate));
  }
  return std::string(reinterpret_cast<const char*>(pcm.data()), pcm.size() * 2);
}

std::vector<int16_t> Samples(const std::string& bytes) {
  std::vector<int16_t> samples(bytes.size() / 2);
  std::memcpy(samples.data(), bytes.data(), samples.size() * 2);
  return samples;
}

class CallAudioSessionTest : public ::testing::Test {
 protected:
  CallAudioSessionTest() { backend_.AddCall("account-1", 1); }

  std::unique_ptr<CallAudioSession> Open(const CallAudioStart& start) {
    absl::StatusOr<std::unique_ptr<CallAudioSession>> session =
        CallAudioSession::Open(&backend_, start, [this] { ++wakeups_; }, &stats_);
    EXPECT_TRUE(session.ok()) << session.status();
    if (!session.ok()) return nullptr;
    tap_ = backend_.Taps(start.call_id()).back();
    return *std::move(session);
  }

  absl::Status OpenError(const CallAudioStart& start) {
    return CallAudioSession::Open(&backend_, start, [] {}, &stats_).status();
  }

  FakeAudioBackend backend_;
  CallAudioStats stats_;
  std::atomic<int> wakeups_{0};
  std::shared_ptr<CallAudioTap> tap_;
};

TEST_F(CallAudioSessionTest, BadStartsAreInvalidArgumentNamingTheProblem) {
  absl::Status status = OpenError(Start(44100));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "Unsupported sample rate 44100: use 8000 or 16000");
  status = OpenError(Start(8000, telestra::v1::AUDIO_DIRECTION_UNSPECIFIED));
  EXPECT_EQ(status.message(), "Missing direction: use listen, speak or both");
  status = OpenError(Start(8000, telestra::v1::AUDIO_DIRECTION_BOTH, -1));
  EXPECT_EQ(status.message(), "Bad call_id -1: a call id is 0 or more");
  status = OpenError(Start(8000, telestra::v1::AUDIO_DIRECTION_BOTH, 1, ""));
  EXPECT_EQ(status.message(), "Missing account");
  EXPECT_EQ(stats_.streams_refused.load(), 4u);
  EXPECT_TRUE(backend_.Taps(1).empty());
}

TEST_F(CallAudioSessionTest, TheBackendsRefusalsComeThroughAndLeaveNoStreamBehind) {
  absl::Status status = OpenError(Start(8000, telestra::v1::AUDIO_DIRECTION_BOTH, 2));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  status = OpenError(Start(8000, telestra::v1::AUDIO_DIRECTION_BOTH, 1, "account-2"));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  backend_.set_max_streams(1);
  auto first = Open(Start());
  status = OpenError(Start());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(stats_.streams_opened.load(), 1u);
  EXPECT_EQ(stats_.streams_active.load(), 1);
  first.reset();
  EXPECT_EQ(stats_.streams_active.load(), 0);
  EXPECT_EQ(tap_->stop_reason(), "Client went away");
}

TEST_F(CallAudioSessionTest, StartedComesOnceAttachedThenFramesNumberedInOrder) {
  auto session = Open(Start());
  CallAudioResponse response;
  EXPECT_FALSE(session->Next(&response)) << "nothing before the attach";
  FakeAudioBackend::Attach(*tap_, "PCMA");
  EXPECT_GE(wakeups_.load(), 1);
  ASSERT_TRUE(session->Next(&response));
  ASSERT_TRUE(response.has_started());
  EXPECT_EQ(response.started().codec(), "PCMA");
  EXPECT_EQ(response.started().sample_rate(), 8000u);
  EXPECT_EQ(response.started().call_id(), 1);
  EXPECT_EQ(response.started().account(), "account-1");
  EXPECT_EQ(response.started().direction(), telestra::v1::AUDIO_DIRECTION_BOTH);

  for (int16_t level : {100, 200, 300}) FakeAudioBackend::Hear(*tap_, level);
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(session->Next(&response));
    ASSERT_TRUE(response.has_audio());
    EXPECT_EQ(response.audio().sequence(), i);
    EXPECT_EQ(response.audio().timestamp(), uint64_t{i} * 160);
    ASSERT_EQ(response.audio().pcm().size(), 320u);
    EXPECT_EQ(Samples(response.audio().pcm())[10], static_cast<int16_t>(100 * (i + 1)));
  }
  EXPECT_FALSE(session->Next(&response));
}

TEST_F(CallAudioSessionTest, At16kHzHeardFramesAreResampledAndKeepTheirPitch) {
  auto session = Open(Start(16000, telestra::v1::AUDIO_DIRECTION_LISTEN));
  FakeAudioBackend::Attach(*tap_);
  CallAudioResponse response;
  ASSERT_TRUE(session->Next(&response));
  // 25 frames (0.5 s) of 1000 Hz at 8 kHz.
  std::vector<int16_t> heard;
  for (int f = 0; f < 25; ++f) {
    std::vector<int16_t> frame = Samples(ToneBytes(8000, 1000, kFrameSamples, f * kFrameSamples));
    FakeAudioBackend::HearFrame(*tap_, frame.data());
    ASSERT_TRUE(session->Next(&response));
    ASSERT_EQ(response.audio().pcm().size(), 640u);
    EXPECT_EQ(response.audio().timestamp(), uint64_t(f) * 320);
    std::vector<int16_t> samples = Samples(response.audio().pcm());
    heard.insert(heard.end(), samples.begin(), samples.end());
  }
  auto tail = absl::MakeConstSpan(heard).subspan(heard.size() / 2);
  double tone = backend::testing::GoertzelPower(tail, 1000, 16000);
  EXPECT_GT(tone, 0.2 * backend::testing::MeanSquare(tail));
  EXPECT_LT(backend::testing::GoertzelPower(tail, 3000, 16000), 0.01 * tone);
}

TEST_F(CallAudioSessionTest, SpokenAudioMustBeWholeFramesOfTheStreamsRate) {
  auto session = Open(Start(16000));
  absl::Status status = session->OnAudio(std::string(320, '\0'));  // an 8 kHz frame
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "Bad audio size 320 bytes: whole 20 ms frames of 640 bytes (16-bit mono at 16000 Hz)");
  EXPECT_EQ(session->OnAudio("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(session->OnAudio(std::string(1280, '\0')).ok());
  EXPECT_EQ(tap_->spoken_queued(), 2u);

  auto listener = Open(Start(8000, telestra::v1::AUDIO_DIRECTION_LISTEN));
  status = listener->OnAudio(std::string(320, '\0'));
  EXPECT_EQ(status.message(), "This stream only listens: it takes no audio");
  telestra::v1::CallAudioRequest second;
  *second.mutable_start() = Start();
  EXPECT_EQ(listener->OnRequest(second).message(),
            "A stream has one start: this is a second one");
  EXPECT_EQ(listener->OnRequest(telestra::v1::CallAudioRequest()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CallAudioSessionTest, SpokenAudioAt16kHzReachesTheCallAt8kHzWithItsPitch) {
  auto session = Open(Start(16000, telestra::v1::AUDIO_DIRECTION_SPEAK));
  ASSERT_TRUE(session->OnAudio(ToneBytes(16000, 700, 320 * 25)).ok());  // 0.5 s
  std::vector<int16_t> sent;
  std::vector<int16_t> frame;
  while (FakeAudioBackend::TakeSpoken(*tap_, &frame)) sent.insert(sent.end(), frame.begin(), frame.end());
  ASSERT_GE(sent.size(), 24u * kFrameSamples);
  auto tail = absl::MakeConstSpan(sent).subspan(sent.size() / 2);
  double tone = backend::testing::GoertzelPower(tail, 700);
  EXPECT_GT(tone, 0.2 * backend::testing::MeanSquare(tail));
  EXPECT_LT(backend::testing::GoertzelPower(tail, 2000), 0.01 * tone);
}

TEST_F(CallAudioSessionTest, AudioBeyondTheCallsQueueIsHeldBackNotLost) {
  auto session = Open(Start(8000, telestra::v1::AUDIO_DIRECTION_SPEAK));
  const size_t frames = CallAudioTap::kSpokenCapacity + 100;
  std::string audio;
  for (size_t f = 0; f < frames; ++f) {
    std::vector<int16_t> frame(kFrameSamples, static_cast<int16_t>(f));
    audio.append(reinterpret_cast<const char*>(frame.data()), frame.size() * 2);
  }
  ASSERT_TRUE(session->OnAudio(audio).ok());
  EXPECT_FALSE(session->ReadyForInput());
  std::vector<int16_t> frame;
  size_t played = 0;
  int before = wakeups_.load();
  while (FakeAudioBackend::TakeSpoken(*tap_, &frame)) {
    EXPECT_EQ(frame[0], static_cast<int16_t>(played)) << "in order, none lost";
    ++played;
    if (wakeups_.load() > before) {
      before = wakeups_.load();
      session->ReadyForInput();  // the front end's reaction to the wakeup
    }
  }
  EXPECT_EQ(played, frames);
  EXPECT_TRUE(session->ReadyForInput());
}

TEST_F(CallAudioSessionTest, MarksClearAndDtmfBecomeResponses) {
  auto session = Open(Start());
  FakeAudioBackend::Attach(*tap_);
  CallAudioResponse response;
  ASSERT_TRUE(session->Next(&response));
  ASSERT_TRUE(session->OnAudio(std::string(320 * 3, '\0')).ok());
  session->OnMark("after-three");
  session->OnMark("also");
  EXPECT_FALSE(session->Next(&response));
  session->OnClear();
  ASSERT_TRUE(session->Next(&response));
  EXPECT_EQ(response.mark().name(), "after-three");
  ASSERT_TRUE(session->Next(&response));
  EXPECT_EQ(response.mark().name(), "also");
  FakeAudioBackend::Dtmf(*tap_, '#', 90);
  ASSERT_TRUE(session->Next(&response));
  EXPECT_EQ(response.dtmf().digit(), "#");
  EXPECT_EQ(response.dtmf().duration_ms(), 90);
}

TEST_F(CallAudioSessionTest, TheFramesBeforeTheStopComeFirstThenOneStopped) {
  auto session = Open(Start());
  FakeAudioBackend::Attach(*tap_);
  CallAudioResponse response;
  ASSERT_TRUE(session->Next(&response));
  FakeAudioBackend::Hear(*tap_, 1);
  FakeAudioBackend::Hear(*tap_, 2);
  std::vector<int16_t> frame;
  FakeAudioBackend::TakeSpoken(*tap_, &frame);  // an underrun
  FakeAudioBackend::Stop(*tap_);
  ASSERT_TRUE(session->Next(&response));
  EXPECT_TRUE(response.has_audio());
  ASSERT_TRUE(session->Next(&response));
  EXPECT_TRUE(response.has_audio());
  ASSERT_TRUE(session->Next(&response));
  ASSERT_TRUE(response.has_stopped());
  EXPECT_EQ(response.stopped().reason(), "Call ended");
  EXPECT_EQ(response.stopped().frames_sent(), 2u);
  EXPECT_EQ(response.stopped().underruns(), 1u);
  EXPECT_EQ(response.stopped().frames_dropped(), 0u);
  EXPECT_TRUE(session->finished());
  EXPECT_TRUE(session->started());
  EXPECT_FALSE(session->Next(&response));
}

TEST_F(CallAudioSessionTest, ACallThatEndsBeforeTheAttachStopsWithoutStarting) {
  auto session = Open(Start());
  FakeAudioBackend::Stop(*tap_);
  CallAudioResponse response;
  ASSERT_TRUE(session->Next(&response));
  ASSERT_TRUE(response.has_stopped());
  EXPECT_FALSE(session->started());
  EXPECT_TRUE(session->finished());
}

TEST_F(CallAudioSessionTest, DroppedFramesReachTheStatsAndTheStopped) {
  auto session = Open(Start(8000, telestra::v1::AUDIO_DIRECTION_LISTEN));
  FakeAudioBackend::Attach(*tap_);
  CallAudioResponse response;
  ASSERT_TRUE(session->Next(&response));
  for (size_t i = 0; i < CallAudioTap::kHeardCapacity + 5; ++i) FakeAudioBackend::Hear(*tap_, 1);
  FakeAudioBackend::Stop(*tap_);
  uint32_t first = 0;
  bool got_first = false;
  while (session->Next(&response) && !response.has_stopped()) {
    if (!got_first) first = response.audio().sequence();
    got_first = true;
  }
  EXPECT_EQ(first, 5u) << "the oldest were dropped";
  EXPECT_EQ(response.stopped().frames_dropped(), 5u);
  session.reset();
  EXPECT_EQ(stats_.frames_dropped.load(), 5u);
  EXPECT_EQ(stats_.frames_sent.load(), CallAudioTap::kHeardCapacity);
}

}  // namespace
}  // namespace telestra::gateway
