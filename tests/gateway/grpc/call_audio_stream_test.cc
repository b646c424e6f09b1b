// The gRPC CallAudio RPC in-process: the real GrpcServer on a loopback port,
// a fake Backend that keeps every CallAudioTap it is given, and the test
// playing the media thread (OnAttached, OnHeard, TakeSpoken, OnDtmf,
// OnStopped, each followed by the wakeup when due).
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backend/backend.h"
#include "backend/call_audio_tap.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "gateway/audio/call_audio_session.h"
#include "gateway/grpc/grpc_server.h"
#include "gtest/gtest.h"
#include "proto/telestra_service.grpc.pb.h"
#include "tests/gateway/grpc/call_audio_client.h"
#include "tests/gateway/grpc/grpc_test_client.h"

namespace telestra::gateway {
namespace {

using backend::CallAudioTap;
using telestra::testing::AudioClear;
using telestra::testing::AudioMark;
using telestra::testing::AudioPcm;
using telestra::testing::AudioStart;
using telestra::testing::CallAudioClient;
using telestra::testing::ChannelOptions;
using telestra::testing::MakeChannel;
using telestra::testing::PcmBytes;
using telestra::testing::PcmSamples;
using telestra::testing::Sine;
using telestra::v1::AUDIO_DIRECTION_BOTH;
using telestra::v1::AUDIO_DIRECTION_LISTEN;
using telestra::v1::AUDIO_DIRECTION_SPEAK;
using telestra::v1::CallAudioResponse;

constexpr size_t kFrame = backend::kFrameSamples;  // 160 at 8 kHz

// account-1 has call 1, account-2 call 2. OpenCallAudio keeps each tap (in
// order) or refuses as the real backend does: NotFound, ResourceExhausted
// beyond max_per_call open taps on a call.
// Thread: any.
class AudioBackend : public backend::Backend {
 public:
  explicit AudioBackend(int max_per_call) : max_per_call_(max_per_call) {}

  absl::Status OpenCallAudio(absl::string_view account, int64_t call_id,
                             std::shared_ptr<CallAudioTap> tap) override {
    absl::MutexLock lock(&mu_);
    auto call = calls_.find(call_id);
    if (account != "account-1" && account != "account-2") {
      return absl::NotFoundError(absl::StrCat("Unknown account: ", account));
    }
    if (call == calls_.end() || call->second != account) {
      return absl::NotFoundError(
          absl::StrCat("Unknown call id ", call_id, " for account: ", account));
    }
    int open = 0;
    for (const auto& [id, t] : taps_) open += id == call_id && !t->stopped();
    if (open >= max_per_call_) {
      return absl::ResourceExhaustedError(absl::StrCat("Too many audio streams on call ", call_id,
                                                       " (max-streams-per-call is ", max_per_call_,
                                                       ")"));
    }
    taps_.emplace_back(call_id, std::move(tap));
    return absl::OkStatus();
  }

  // The n-th tap opened (from 0), once it exists; nullptr after `timeout`.
  std::shared_ptr<CallAudioTap> WaitForTap(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto opened = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return taps_.size() > n; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&opened), timeout)) return nullptr;
    return taps_[n].second;
  }
  size_t taps() const {
    absl::MutexLock lock(&mu_);
    return taps_.size();
  }
  int hangups() const {
    absl::MutexLock lock(&mu_);
    return hangups_;
  }

  // The rest of the Backend: unused here.
  absl::Status Login(const telestra::v1::LoginCommand&) override { return Unused(); }
  absl::Status Logout(absl::string_view) override { return Unused(); }
  absl::StatusOr<int64_t> MakeCall(absl::string_view, absl::string_view,
                                   absl::FunctionRef<void(int64_t)>) override {
    return Unused();
  }
  absl::Status AnswerCall(absl::string_view, int64_t) override { return Unused(); }
  absl::Status SwitchCall(absl::string_view, int64_t) override { return Unused(); }
  absl::Status HangupCall(absl::string_view, int64_t) override {
    absl::MutexLock lock(&mu_);
    ++hangups_;
    return absl::OkStatus();
  }
  absl::Status SendDtmf(absl::string_view, int64_t, absl::string_view, int, DtmfDone) override {
    return Unused();
  }
  absl::Status TransferCall(absl::string_view, int64_t, absl::string_view,
                            std::optional<int64_t>) override {
    return Unused();
  }
  absl::StatusOr<telestra::v1::Status> GetStatus(absl::string_view) const override {
    return Unused();
  }
  std::vector<telestra::v1::Status> ListAccounts() const override { return {}; }

 private:
  static absl::Status Unused() { return absl::UnimplementedError("not in this test"); }

  const int max_per_call_;
  mutable absl::Mutex mu_;
  const std::map<int64_t, std::string> calls_ = {{1, "account-1"}, {2, "account-2"}};
  std::vector<std::pair<int64_t, std::shared_ptr<CallAudioTap>>> taps_ ABSL_GUARDED_BY(mu_);
  int hangups_ ABSL_GUARDED_BY(mu_) = 0;
};

// ---- The media thread, played by the test: each step runs the wakeup
// when the tap says it is due, with no lock held (as the engine does).

void Attach(CallAudioTap& tap, const std::string& codec = "PCMU") {
  if (tap.OnAttached(codec)) tap.RunWakeup();
}

// A frame whose samples are all `value` (so that frames tell each other apart).
CallAudioTap::Frame FlatFrame(int16_t value) {
  CallAudioTap::Frame frame;
  frame.fill(value);
  return frame;
}

void Hear(CallAudioTap& tap, const CallAudioTap::Frame& frame) {
  if (tap.OnHeard(frame.data())) tap.RunWakeup();
}

// The next spoken frame; nullopt on an underrun.
std::optional<CallAudioTap::Frame> TakeSpoken(CallAudioTap& tap) {
  CallAudioTap::Frame frame;
  bool wake = false;
  bool taken = tap.TakeSpoken(frame.data(), &wake);
  if (wake) tap.RunWakeup();
  if (!taken) return std::nullopt;
  return frame;
}

void Stop(CallAudioTap& tap, const std::string& reason = "Call ended") {
  if (tap.OnStopped(reason)) tap.RunWakeup();
}

// Polls `condition` (every millisecond) until it holds or `timeout` passes.
bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// Power of `hz` in `samples` at `rate` (Goertzel), relative to the signal's
// total power: about 1 for a pure tone of `hz`, about 0 for another.
double ToneShare(const std::vector<int16_t>& samples, double hz, int rate) {
  const double w = 2 * M_PI * hz / rate;
  const double coeff = 2 * std::cos(w);
  double s1 = 0, s2 = 0, energy = 0;
  for (int16_t sample : samples) {
    const double s0 = sample + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
    energy += static_cast<double>(sample) * sample;
  }
  const double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return energy == 0 ? 0 : 2 * power / (energy * static_cast<double>(samples.size()));
}

bool IsAudio(const CallAudioResponse& r) { return r.has_audio(); }
bool IsMark(const CallAudioResponse& r) { return r.has_mark(); }
bool IsStopped(const CallAudioResponse& r) { return r.has_stopped(); }

struct ServerSetup {
  std::string token;
  int max_per_call = 4;
  size_t max_streams = 1024;
};

class CallAudioStreamTest : public ::testing::Test {
 protected:
  void Start(const ServerSetup& setup = {}) {
    hub_ = std::make_unique<backend::EventHub>();
    backend_ = std::make_unique<AudioBackend>(setup.max_per_call);
    dispatcher_ = std::make_unique<backend::CommandDispatcher>(backend_.get(), hub_.get());
    GrpcServer::Options options;
    options.port = 0;
    options.token = setup.token;
    options.max_streams = setup.max_streams;
    options.call_audio_stats = &stats_;
    server_ = std::make_unique<GrpcServer>(options, backend_.get(), hub_.get(), dispatcher_.get());
    ASSERT_TRUE(server_->Start().ok());
    stub_ = telestra::v1::Telestra::NewStub(MakeChannel(server_->port()));
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  std::unique_ptr<CallAudioClient> Open(uint32_t rate, telestra::v1::AudioDirection direction,
                                        const std::string& account = "account-1",
                                        int64_t call_id = 1) {
    return CallAudioClient::Open(stub_.get(), AudioStart(account, call_id, rate, direction));
  }

  // Opens a stream, attaches its tap (the n-th) and checks `started`.
  std::unique_ptr<CallAudioClient> OpenStarted(uint32_t rate,
                                               telestra::v1::AudioDirection direction, size_t n,
                                               std::shared_ptr<CallAudioTap>* tap) {
    auto client = Open(rate, direction);
    *tap = backend_->WaitForTap(n);
    EXPECT_NE(*tap, nullptr);
    if (*tap == nullptr) return client;
    Attach(**tap);
    auto started = client->Next();
    EXPECT_TRUE(started.has_value() && started->has_started());
    return client;
  }

  // The stream's status once it ended.
  static grpc::Status EndOf(CallAudioClient& client) {
    std::optional<grpc::Status> end = client.WaitForEnd();
    EXPECT_TRUE(end.has_value()) << "the stream did not end";
    return end.value_or(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "did not end"));
  }

  // Every stream is gone (its session destroyed, its slot free).
  bool AllStreamsClosed() {
    return WaitUntil([&] { return stats_.streams_active == 0 && server_->stats().streams == 0; });
  }

  CallAudioStats stats_;
  std::unique_ptr<backend::EventHub> hub_;
  std::unique_ptr<AudioBackend> backend_;
  std::unique_ptr<backend::CommandDispatcher> dispatcher_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<telestra::v1::Telestra::Stub> stub_;
};

TEST_F(CallAudioStreamTest, ListenGetsStartedThenNumberedFramesThenStoppedAndOk) {
  Start();
  auto client = Open(8000, AUDIO_DIRECTION_LISTEN);
  std::shared_ptr<CallAudioTap> tap = backend_->WaitForTap(0);
  ASSERT_NE(tap, nullptr);
  EXPECT_FALSE(tap->speaks());
  Attach(*tap, "PCMA");
  auto started = client->Next();
  ASSERT_TRUE(started.has_value());
  ASSERT_TRUE(started->has_started()) << started->ShortDebugString();
  EXPECT_EQ(started->started().sample_rate(), 8000u);
  EXPECT_EQ(started->started().codec(), "PCMA");
  EXPECT_EQ(started->started().account(), "account-1");
  EXPECT_EQ(started->started().call_id(), 1);
  EXPECT_EQ(started->started().direction(), AUDIO_DIRECTION_LISTEN);

  for (int i = 0; i < 5; ++i) Hear(*tap, FlatFrame(static_cast<int16_t>(100 * (i + 1))));
  for (uint32_t i = 0; i < 5; ++i) {
    auto audio = client->Next();
    ASSERT_TRUE(audio.has_value());
    ASSERT_TRUE(audio->has_audio()) << audio->ShortDebugString();
    EXPECT_EQ(audio->audio().sequence(), i);
    EXPECT_EQ(audio->audio().timestamp(), uint64_t{i} * kFrame);
    ASSERT_EQ(audio->audio().pcm().size(), 320u);
    std::vector<int16_t> samples = PcmSamples(audio->audio().pcm());
    EXPECT_EQ(samples.front(), 100 * static_cast<int>(i + 1));
    EXPECT_EQ(samples.back(), 100 * static_cast<int>(i + 1));
  }
  EXPECT_EQ(stats_.frames_sent, 5u);
  EXPECT_EQ(stats_.streams_opened, 1u);
  EXPECT_EQ(stats_.streams_active, 1);

  Stop(*tap);
  auto stopped = client->Next();
  ASSERT_TRUE(stopped.has_value());
  ASSERT_TRUE(stopped->has_stopped()) << stopped->ShortDebugString();
  EXPECT_EQ(stopped->stopped().reason(), "Call ended");
  EXPECT_EQ(stopped->stopped().frames_sent(), 5u);
  EXPECT_EQ(stopped->stopped().frames_dropped(), 0u);
  grpc::Status end = EndOf(*client);
  EXPECT_TRUE(end.ok()) << end.error_message();
  EXPECT_TRUE(AllStreamsClosed());
  EXPECT_EQ(backend_->hangups(), 0);
}

TEST_F(CallAudioStreamTest, SixteenKilohertzStreamsCarry640ByteFramesBothWays) {
  Start();
  std::shared_ptr<CallAudioTap> tap;
  auto client = Open(16000, AUDIO_DIRECTION_BOTH);
  tap = backend_->WaitForTap(0);
  ASSERT_NE(tap, nullptr);
  Attach(*tap);
  auto started = client->Next();
  ASSERT_TRUE(started.has_value());
  EXPECT_EQ(started->started().sample_rate(), 16000u);
  EXPECT_EQ(started->started().codec(), "PCMU");

  // Heard: a 1000 Hz tone at 8 kHz comes out at 16 kHz, 640 bytes a frame.
  constexpr int kHeard = 10;
  for (int i = 0; i < kHeard; ++i) {
    std::vector<int16_t> tone = Sine(1000, 8000, kFrame, i * kFrame);
    CallAudioTap::Frame frame;
    std::copy(tone.begin(), tone.end(), frame.begin());
    Hear(*tap, frame);
  }
  ASSERT_TRUE(client->WaitForFrames(kHeard));
  std::vector<int16_t> heard;
  std::vector<telestra::v1::CallAudioFrame> frames = client->frames();
  for (uint32_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].sequence(), i);
    EXPECT_EQ(frames[i].timestamp(), uint64_t{i} * 320);
    ASSERT_EQ(frames[i].pcm().size(), 640u);
    std::vector<int16_t> samples = PcmSamples(frames[i].pcm());
    if (i >= 2)
      heard.insert(heard.end(), samples.begin(), samples.end());  // past the filter's start
  }
  EXPECT_GT(ToneShare(heard, 1000, 16000), 0.8);

  // Spoken: 10 frames of 700 Hz at 16 kHz reach the call at 8 kHz.
  constexpr int kSpoken = 10;
  ASSERT_TRUE(client->Send(AudioPcm(PcmBytes(Sine(700, 16000, kSpoken * 320)))));
  ASSERT_TRUE(WaitUntil([&] { return tap->spoken_queued() >= kSpoken - 1; }))
      << tap->spoken_queued();
  std::vector<int16_t> spoken;
  while (std::optional<CallAudioTap::Frame> frame = TakeSpoken(*tap)) {
    spoken.insert(spoken.end(), frame->begin(), frame->end());
  }
  ASSERT_GE(spoken.size(), (kSpoken - 1) * kFrame);
  std::vector<int16_t> settled(spoken.begin() + 2 * kFrame, spoken.end());
  EXPECT_GT(ToneShare(settled, 700, 8000), 0.8);
  EXPECT_LT(ToneShare(settled, 1000, 8000), 0.05);

  // A wrong size for this rate (a whole 8 kHz frame) ends the stream.
  client->Send(AudioPcm(std::string(320, '\0')));
  grpc::Status end = EndOf(*client);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(end.error_message(),
            "Bad audio size 320 bytes: whole 20 ms frames of 640 bytes (16-bit mono at 16000 Hz)");
  EXPECT_TRUE(AllStreamsClosed());
  EXPECT_TRUE(tap->stopped());  // detached; the call goes on
  EXPECT_EQ(backend_->hangups(), 0);
}

TEST_F(CallAudioStreamTest, SpokenAudioReachesTheCallInOrderAndItsMarkComesBackOnceTaken) {
  Start();
  std::shared_ptr<CallAudioTap> tap;
  auto client = OpenStarted(8000, AUDIO_DIRECTION_SPEAK, 0, &tap);
  ASSERT_NE(tap, nullptr);
  std::vector<int16_t> samples;
  for (int f = 0; f < 3; ++f) samples.insert(samples.end(), kFrame, static_cast<int16_t>(f + 1));
  ASSERT_TRUE(client->Send(AudioPcm(PcmBytes(samples))));
  ASSERT_TRUE(client->Send(AudioMark("after-3")));
  ASSERT_TRUE(WaitUntil([&] { return tap->spoken_queued() == 3; }));
  EXPECT_FALSE(client->WaitFor(IsMark, absl::Milliseconds(100)).has_value())
      << "the mark came back before its audio was sent";
  for (int f = 0; f < 3; ++f) {
    std::optional<CallAudioTap::Frame> frame = TakeSpoken(*tap);
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ((*frame)[0], f + 1);
    EXPECT_EQ((*frame)[kFrame - 1], f + 1);
  }
  auto mark = client->WaitFor(IsMark);
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->mark().name(), "after-3");
  EXPECT_FALSE(TakeSpoken(*tap).has_value());  // an underrun: nothing more

  // A mark with nothing queued is due at once.
  ASSERT_TRUE(client->Send(AudioMark("now")));
  mark = client->WaitFor(IsMark);
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->mark().name(), "now");
}

TEST_F(CallAudioStreamTest, ClearDropsTheQueuedAudioAndReturnsThePendingMarksInOrder) {
  Start();
  std::shared_ptr<CallAudioTap> tap;
  auto client = OpenStarted(8000, AUDIO_DIRECTION_SPEAK, 0, &tap);
  ASSERT_NE(tap, nullptr);
  const std::string ten_frames = PcmBytes(std::vector<int16_t>(10 * kFrame, 1000));
  ASSERT_TRUE(client->Send(AudioPcm(ten_frames)));
  ASSERT_TRUE(client->Send(AudioMark("a")));
  ASSERT_TRUE(client->Send(AudioPcm(ten_frames)));
  ASSERT_TRUE(client->Send(AudioMark("b")));
  ASSERT_TRUE(WaitUntil([&] { return tap->spoken_queued() == 20; }));
  ASSERT_TRUE(client->Send(AudioClear()));
  auto a = client->WaitFor(IsMark);
  auto b = client->WaitFor(IsMark);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->mark().name(), "a");
  EXPECT_EQ(b->mark().name(), "b");
  EXPECT_EQ(tap->spoken_queued(), 0u);
  EXPECT_FALSE(TakeSpoken(*tap).has_value());
}

TEST_F(CallAudioStreamTest, AudioFasterThanRealTimeIsHeldBackNotDropped) {
  Start();
  std::shared_ptr<CallAudioTap> tap;
  auto client = OpenStarted(8000, AUDIO_DIRECTION_SPEAK, 0, &tap);
  ASSERT_NE(tap, nullptr);
  // 8 s at once (the call's queue holds 5 s), in messages of 1 s (below
  // the 64 KiB limit), then a mark: every frame reaches the call, in order.
  constexpr int kFrames = 400;
  for (int first = 0; first < kFrames; first += 50) {
    std::vector<int16_t> samples;
    for (int f = first; f < first + 50; ++f) samples.insert(samples.end(), kFrame, f);
    ASSERT_TRUE(client->Send(AudioPcm(PcmBytes(samples))));
  }
  ASSERT_TRUE(client->Send(AudioMark("end")));
  ASSERT_TRUE(WaitUntil([&] { return tap->spoken_queued() == CallAudioTap::kSpokenCapacity; }));
  int taken = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (taken < kFrames && absl::Now() < deadline) {
    std::optional<CallAudioTap::Frame> frame = TakeSpoken(*tap);
    if (!frame.has_value()) {  // the held-back audio is on its way
      ASSERT_TRUE(WaitUntil([&] { return tap->spoken_queued() > 0; })) << "after " << taken;
      continue;
    }
    ASSERT_EQ((*frame)[0], taken) << "frame " << taken;
    ++taken;
  }
  EXPECT_EQ(taken, kFrames);
  auto mark = client->WaitFor(IsMark);
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->mark().name(), "end");
  EXPECT_EQ(tap->counters().frames_spoken, static_cast<uint64_t>(kFrames));
}

TEST_F(CallAudioStreamTest, DtmfFromTheFarEndIsANotice) {
  Start();
  std::shared_ptr<CallAudioTap> tap;
  auto client = OpenStarted(8000, AUDIO_DIRECTION_LISTEN, 0, &tap);
  ASSERT_NE(tap, nullptr);
  if (tap->OnDtmf('5', 120)) tap->RunWakeup();
  auto dtmf = client->WaitFor([](const CallAudioResponse& r) { return r.has_dtmf(); });
  ASSERT_TRUE(dtmf.has_value());
  EXPECT_EQ(dtmf->dtmf().digit(), "5");
  EXPECT_EQ(dtmf->dtmf().duration_ms(), 120);
}

TEST_F(CallAudioStreamTest, StalledClientLosesTheOldestFramesAndLearnsHowManyWithoutSlowingOthers) {
  Start();
  ChannelOptions small;
  small.small_window = true;
  auto stalled_stub = telestra::v1::Telestra::NewStub(MakeChannel(server_->port(), small));
  auto stalled = CallAudioClient::Open(stalled_stub.get(),
                                       AudioStart("account-1", 1, 8000, AUDIO_DIRECTION_LISTEN), "",
                                       /*paused=*/true);
  auto fast = Open(8000, AUDIO_DIRECTION_LISTEN);
  std::shared_ptr<CallAudioTap> first = backend_->WaitForTap(0);
  std::shared_ptr<CallAudioTap> second = backend_->WaitForTap(1);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  Attach(*first);
  Attach(*second);

  // Bursts of 10 frames that the fast reader keeps up with (its tap holds
  // 50); the stalled one's writes stop at its flow-control window.
  constexpr int kFrames = 600;
  for (int i = 0; i < kFrames; i += 10) {
    for (int j = i; j < i + 10; ++j) {
      CallAudioTap::Frame frame = FlatFrame(static_cast<int16_t>(j));
      Hear(*first, frame);
      Hear(*second, frame);
    }
    ASSERT_TRUE(fast->WaitForFrames(i + 10)) << i;
  }
  Stop(*first);
  Stop(*second);

  auto fast_stopped = fast->WaitFor(IsStopped);
  ASSERT_TRUE(fast_stopped.has_value());
  EXPECT_EQ(fast_stopped->stopped().frames_dropped(), 0u);
  EXPECT_EQ(fast_stopped->stopped().frames_sent(), static_cast<uint64_t>(kFrames));
  EXPECT_TRUE(EndOf(*fast).ok());
  std::vector<telestra::v1::CallAudioFrame> fast_frames = fast->frames();
  ASSERT_EQ(fast_frames.size(), static_cast<size_t>(kFrames));
  for (int i = 0; i < kFrames; ++i) ASSERT_EQ(fast_frames[i].sequence(), static_cast<uint32_t>(i));

  // The stalled client reads again: what was in flight and what was still
  // queued, then how many frames it lost.
  stalled->Resume();
  auto stopped = stalled->WaitFor(IsStopped);
  ASSERT_TRUE(stopped.has_value());
  EXPECT_TRUE(EndOf(*stalled).ok());
  std::vector<telestra::v1::CallAudioFrame> frames = stalled->frames();
  const uint64_t dropped = stopped->stopped().frames_dropped();
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(frames.size() + dropped, static_cast<size_t>(kFrames));
  EXPECT_EQ(stopped->stopped().frames_sent(), frames.size());
  for (size_t i = 1; i < frames.size(); ++i) {
    ASSERT_GT(frames[i].sequence(), frames[i - 1].sequence());
    // Each frame is the one its sequence number says.
    ASSERT_EQ(PcmSamples(frames[i].pcm())[0], static_cast<int16_t>(frames[i].sequence()));
  }
  EXPECT_EQ(frames.back().sequence(), static_cast<uint32_t>(kFrames - 1));  // the newest kept
  EXPECT_TRUE(AllStreamsClosed());
  EXPECT_EQ(stats_.frames_dropped, dropped);
  EXPECT_EQ(stats_.frames_sent, kFrames + frames.size());
}

TEST_F(CallAudioStreamTest, UnknownAccountOrCallIsNotFound) {
  Start();
  auto unknown_call = Open(8000, AUDIO_DIRECTION_LISTEN, "account-1", 99);
  grpc::Status end = EndOf(*unknown_call);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(end.error_message(), "Unknown call id 99 for account: account-1");
  // Another account's call.
  auto other = Open(8000, AUDIO_DIRECTION_LISTEN, "account-1", 2);
  EXPECT_EQ(EndOf(*other).error_code(), grpc::StatusCode::NOT_FOUND);
  auto unknown_account = Open(8000, AUDIO_DIRECTION_LISTEN, "nobody", 1);
  end = EndOf(*unknown_account);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(end.error_message(), "Unknown account: nobody");
  EXPECT_EQ(backend_->taps(), 0u);
  EXPECT_EQ(stats_.streams_refused, 3u);
  EXPECT_TRUE(unknown_call->responses().empty());
}

TEST_F(CallAudioStreamTest, BadStartsAreInvalidArgument) {
  Start();
  struct Case {
    std::optional<telestra::v1::CallAudioRequest> first;
    std::string message;
  };
  const std::vector<Case> cases = {
      {AudioStart("account-1", 1, 44100, AUDIO_DIRECTION_LISTEN),
       "Unsupported sample rate 44100: use 8000 or 16000"},
      {AudioStart("account-1", 1, 8000, telestra::v1::AUDIO_DIRECTION_UNSPECIFIED),
       "Missing direction: use listen, speak or both"},
      {AudioStart("", 1, 8000, AUDIO_DIRECTION_LISTEN), "Missing account"},
      {AudioStart("account-1", -1, 8000, AUDIO_DIRECTION_LISTEN),
       "Bad call_id -1: a call id is 0 or more"},
      {AudioPcm(std::string(320, '\0')), "The first request must be start"},
      {AudioMark("m"), "The first request must be start"},
      {telestra::v1::CallAudioRequest(), "The first request must be start"},
  };
  for (const Case& c : cases) {
    auto client = CallAudioClient::Open(stub_.get(), c.first);
    grpc::Status end = EndOf(*client);
    EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_EQ(end.error_message(), c.message);
  }
  // No request at all, only the end of the client's side.
  auto silent = CallAudioClient::Open(stub_.get(), std::nullopt);
  silent->SendDone();
  grpc::Status end = EndOf(*silent);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(end.error_message(), "The first request must be start");
  EXPECT_EQ(backend_->taps(), 0u);
  EXPECT_EQ(stats_.streams_refused, cases.size() + 1);
}

TEST_F(CallAudioStreamTest, BadRequestsAfterTheStartEndTheStreamButNotTheCall) {
  Start();
  struct Case {
    telestra::v1::AudioDirection direction;
    telestra::v1::CallAudioRequest request;
    std::string message;
  };
  const std::vector<Case> cases = {
      {AUDIO_DIRECTION_SPEAK, AudioPcm(std::string(100, '\0')),
       "Bad audio size 100 bytes: whole 20 ms frames of 320 bytes (16-bit mono at 8000 Hz)"},
      {AUDIO_DIRECTION_BOTH, AudioPcm(""),
       "Bad audio size 0 bytes: whole 20 ms frames of 320 bytes (16-bit mono at 8000 Hz)"},
      {AUDIO_DIRECTION_LISTEN, AudioPcm(std::string(320, '\0')),
       "This stream only listens: it takes no audio"},
      {AUDIO_DIRECTION_BOTH, AudioStart("account-1", 1, 8000, AUDIO_DIRECTION_BOTH),
       "A stream has one start: this is a second one"},
      {AUDIO_DIRECTION_BOTH, telestra::v1::CallAudioRequest(),
       "Empty request: expected audio, mark or clear"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    std::shared_ptr<CallAudioTap> tap;
    auto client = OpenStarted(8000, cases[i].direction, i, &tap);
    ASSERT_NE(tap, nullptr);
    ASSERT_TRUE(client->Send(cases[i].request));
    grpc::Status end = EndOf(*client);
    EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << cases[i].message;
    EXPECT_EQ(end.error_message(), cases[i].message);
    EXPECT_TRUE(WaitUntil([&] { return tap->stopped(); }));  // detached
  }
  EXPECT_EQ(backend_->hangups(), 0);
  EXPECT_TRUE(AllStreamsClosed());
}

TEST_F(CallAudioStreamTest, BackendLimitPerCallIsResourceExhausted) {
  ServerSetup setup;
  setup.max_per_call = 2;
  Start(setup);
  auto one = Open(8000, AUDIO_DIRECTION_LISTEN);
  ASSERT_NE(backend_->WaitForTap(0), nullptr);
  auto two = Open(8000, AUDIO_DIRECTION_LISTEN);  // tap 1
  ASSERT_NE(backend_->WaitForTap(1), nullptr);
  auto three = Open(8000, AUDIO_DIRECTION_LISTEN);
  grpc::Status end = EndOf(*three);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(end.error_message(), "Too many audio streams on call 1 (max-streams-per-call is 2)");
  EXPECT_FALSE(one->WaitForEnd(absl::Milliseconds(1)).has_value());
  // A slot is free again once a stream ends.
  two->Cancel();
  ASSERT_TRUE(two->WaitForEnd().has_value());
  ASSERT_TRUE(WaitUntil([&] { return backend_->WaitForTap(1)->stopped(); }));
  auto four = Open(8000, AUDIO_DIRECTION_LISTEN);
  std::shared_ptr<CallAudioTap> tap = backend_->WaitForTap(2);
  ASSERT_NE(tap, nullptr);
  Attach(*tap);
  auto started = four->Next();
  ASSERT_TRUE(started.has_value());
  EXPECT_TRUE(started->has_started());
}

TEST_F(CallAudioStreamTest, MaxStreamsOfTheServerCountsCallAudioStreams) {
  ServerSetup setup;
  setup.max_streams = 1;
  Start(setup);
  auto one = Open(8000, AUDIO_DIRECTION_LISTEN);
  ASSERT_NE(backend_->WaitForTap(0), nullptr);
  auto two = Open(8000, AUDIO_DIRECTION_LISTEN);
  grpc::Status end = EndOf(*two);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(end.error_message(), "Too many streams (max-streams is 1)");
  EXPECT_EQ(server_->stats().streams_refused, 1u);
}

TEST_F(CallAudioStreamTest, MessageOverTheReceiveLimitIsResourceExhaustedFromGrpc) {
  Start();
  std::shared_ptr<CallAudioTap> tap;
  auto client = OpenStarted(8000, AUDIO_DIRECTION_SPEAK, 0, &tap);
  ASSERT_NE(tap, nullptr);
  // 16 MiB of audio at once: 52428 whole frames and a bit; gRPC refuses it
  // before anything reads it.
  client->Send(AudioPcm(std::string(16 << 20, '\0')));
  grpc::Status end = EndOf(*client);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << end.error_message();
  // The request's own 10 bytes around the audio (docs/grpc-api.md).
  EXPECT_EQ(end.error_message(), "Received message larger than max (16777226 vs. 65536)");
  EXPECT_TRUE(WaitUntil([&] { return tap->stopped(); }));
  EXPECT_EQ(tap->counters().frames_spoken, 0u);
  EXPECT_EQ(tap->spoken_queued(), 0u);
  EXPECT_EQ(backend_->hangups(), 0);
  EXPECT_TRUE(AllStreamsClosed());
}

TEST_F(CallAudioStreamTest, CallEndedBeforeTheStreamAttachedIsNotFound) {
  Start();
  auto client = Open(8000, AUDIO_DIRECTION_BOTH);
  std::shared_ptr<CallAudioTap> tap = backend_->WaitForTap(0);
  ASSERT_NE(tap, nullptr);
  Stop(*tap);
  grpc::Status end = EndOf(*client);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(end.error_message(), "Call 1 ended before the audio stream started: Call ended");
  EXPECT_TRUE(client->responses().empty());
}

TEST_F(CallAudioStreamTest, HalfClosedStreamGoesOnUntilTheCallEnds) {
  Start();
  std::shared_ptr<CallAudioTap> tap;
  auto client = OpenStarted(8000, AUDIO_DIRECTION_BOTH, 0, &tap);
  ASSERT_NE(tap, nullptr);
  ASSERT_TRUE(client->Send(AudioPcm(PcmBytes(std::vector<int16_t>(2 * kFrame, 7)))));
  ASSERT_TRUE(client->Send(AudioMark("said")));
  client->SendDone();
  ASSERT_TRUE(WaitUntil([&] { return tap->spoken_queued() == 2; }));
  for (int i = 0; i < 3; ++i) Hear(*tap, FlatFrame(1));
  ASSERT_TRUE(client->WaitForFrames(3));
  ASSERT_TRUE(TakeSpoken(*tap).has_value());
  ASSERT_TRUE(TakeSpoken(*tap).has_value());
  auto mark = client->WaitFor(IsMark);
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->mark().name(), "said");
  EXPECT_FALSE(client->WaitForEnd(absl::Milliseconds(50)).has_value());
  Stop(*tap);
  auto stopped = client->WaitFor(IsStopped);
  ASSERT_TRUE(stopped.has_value());
  EXPECT_EQ(stopped->stopped().frames_spoken(), 2u);
  EXPECT_TRUE(EndOf(*client).ok());
}

TEST_F(CallAudioStreamTest, WrongTokenIsUnauthenticatedBeforeAnythingOpens) {
  ServerSetup setup;
  setup.token = "s3cret";
  Start(setup);
  const auto start = AudioStart("account-1", 1, 8000, AUDIO_DIRECTION_LISTEN);
  auto missing = CallAudioClient::Open(stub_.get(), start);
  EXPECT_EQ(EndOf(*missing).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto wrong = CallAudioClient::Open(stub_.get(), start, "guess");
  grpc::Status end = EndOf(*wrong);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(end.error_message(), "Invalid bearer token");
  EXPECT_EQ(backend_->taps(), 0u);
  EXPECT_EQ(server_->stats().unauthenticated, 2u);
  auto good = CallAudioClient::Open(stub_.get(), start, "s3cret");
  EXPECT_NE(backend_->WaitForTap(0), nullptr);
}

TEST_F(CallAudioStreamTest, ShutdownEndsStreamsWithUnavailable) {
  Start();
  std::shared_ptr<CallAudioTap> tap;
  auto client = OpenStarted(8000, AUDIO_DIRECTION_LISTEN, 0, &tap);
  ASSERT_NE(tap, nullptr);
  Hear(*tap, FlatFrame(3));
  ASSERT_TRUE(client->WaitForFrames(1));
  server_->Stop();
  grpc::Status end = EndOf(*client);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(end.error_message(), "Gateway shutting down");
  EXPECT_TRUE(tap->stopped());
  EXPECT_EQ(stats_.streams_active, 0);
  EXPECT_EQ(server_->stats().streams, 0u);
}

}  // namespace
}  // namespace telestra::gateway
