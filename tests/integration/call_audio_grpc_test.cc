// gRPC CallAudio (issue 19) against real peers: the gateway binary, a real
// Kamailio and baresip (its ausine tone, its sndfile recording), or two of
// the gateway's own accounts calling each other; and early media (issue 20)
// from a sipp callee that plays a 1000 Hz tone after its 183.
//
// account-1 (3001) sends `audio = tone:440` and records every call
// (`record = DIR`: left = received, right = sent); baresip (3006) sends a
// 1000 Hz sine. A LISTEN stream must find 1000 Hz in what it gets; a SPEAK
// stream's 700 Hz must replace the 440 Hz in what account-1 sends (its own
// recording) and reach baresip (its recording).
#include <dirent.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/telestra_service.grpc.pb.h"
#include "tests/gateway/grpc/call_audio_client.h"
#include "tests/gateway/grpc/grpc_test_client.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"
#include "tests/support/ports.h"

namespace telestra::testing {
namespace {

using telestra::v1::AUDIO_DIRECTION_BOTH;
using telestra::v1::AUDIO_DIRECTION_LISTEN;
using telestra::v1::AUDIO_DIRECTION_SPEAK;
using telestra::v1::AudioDirection;
using telestra::v1::CallAudioFrame;
using telestra::v1::CallAudioResponse;

constexpr int kGatewayHz = 440;   // account-1's own source
constexpr int kBaresipHz = 1000;  // baresip's ausine
constexpr int kSpeakHz = 700;     // what the SPEAK streams say
constexpr int kRate = 8000;
constexpr size_t kFrame = 160;  // samples of 20 ms at 8 kHz

bool IsMark(const CallAudioResponse& r) { return r.has_mark(); }
bool IsStopped(const CallAudioResponse& r) { return r.has_stopped(); }

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

// The frames' samples, full scale = 1, from frame `skip` on.
std::vector<double> Samples(const std::vector<CallAudioFrame>& frames, size_t skip = 0) {
  std::vector<double> samples;
  for (size_t i = skip; i < frames.size(); ++i) {
    for (int16_t s : PcmSamples(frames[i].pcm())) samples.push_back(s / 32768.0);
  }
  return samples;
}

// The half second of `samples` where `hz` has the largest share, and that
// share; `other_hz`'s share in the same window.
struct Window {
  double share = 0;
  double other_share = 1;
};
Window BestWindow(const std::vector<double>& samples, int rate, double hz, double other_hz) {
  Window best;
  const size_t length = static_cast<size_t>(rate) / 2;
  for (size_t start = 0; start + length <= samples.size(); start += length / 4) {
    std::vector<double> window(samples.begin() + start, samples.begin() + start + length);
    if (Rms(window) < 0.01) continue;  // silence says nothing
    double share = ToneShare(window, rate, hz);
    if (share > best.share) best = {share, ToneShare(window, rate, other_hz)};
  }
  return best;
}

// How long `hz` sounds alone in `samples`: the 100 ms windows where it has
// most of the energy.
absl::Duration TimeOf(const std::vector<double>& samples, int rate, double hz) {
  const size_t length = static_cast<size_t>(rate) / 10;
  int windows = 0;
  for (size_t start = 0; start + length <= samples.size(); start += length) {
    std::vector<double> window(samples.begin() + start, samples.begin() + start + length);
    if (Rms(window) >= 0.01 && ToneShare(window, rate, hz) > 0.8) ++windows;
  }
  return windows * absl::Milliseconds(100);
}

// `frames` 20 ms frames of `hz` at 8 kHz, as little-endian PCM.
std::string TonePcm(double hz, size_t frames, size_t first_frame = 0) {
  return PcmBytes(Sine(hz, kRate, frames * kFrame, first_frame * kFrame));
}

// `frames` frames of noise (a fixed pseudo-random sequence): no two frames
// alike, so that frames can be matched by their content.
std::string NoisePcm(size_t frames) {
  std::vector<int16_t> samples(frames * kFrame);
  uint32_t state = 12345;
  for (int16_t& s : samples) {
    state = state * 1664525u + 1013904223u;
    s = static_cast<int16_t>(static_cast<int32_t>(state >> 16) % 16000 - 8000);
  }
  return PcmBytes(samples);
}

class CallAudioGrpcTest : public GatewayTest {
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
    ASSERT_TRUE(WaitForTcpPort(gateway_->grpc_port(), absl::Seconds(10)));
    stub_ = telestra::v1::Telestra::NewStub(MakeChannel(gateway_->grpc_port()));
  }

  std::string FailureDetails() override {
    return baresip_ ? "baresip log:\n" + baresip_->Log() : "";
  }

  void StartBaresip() {
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

  // account-1 calls `number`, which answers (baresip by itself; account-2
  // when told): `*id` is account-1's call, `*other` account-2's (or -1).
  void Call(const std::string& number, int64_t* id, int64_t* other = nullptr) {
    client_->Send(
        absl::StrCat(R"({"cmd":"make-call","account":"account-1","num":")", number, R"("})"));
    auto call_return =
        client_->WaitFor([](const NativeEvent& e) { return e.event() == "call-return"; });
    ASSERT_TRUE(call_return.has_value());
    *id = call_return->Int("call_id");
    if (other != nullptr) {
      auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-2"));
      ASSERT_TRUE(incoming.has_value());
      *other = incoming->Int("call_id");
      Command("answer-call", "account-2", *other);
    }
    ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", *id)).has_value());
  }

  std::unique_ptr<CallAudioClient> Open(const std::string& account, int64_t id, uint32_t rate,
                                        AudioDirection direction,
                                        telestra::v1::Telestra::Stub* stub = nullptr,
                                        bool paused = false) {
    return CallAudioClient::Open(stub != nullptr ? stub : stub_.get(),
                                 AudioStart(account, id, rate, direction), "", paused);
  }

  // The stream's `started`, checked. Its codec is "" on a call whose media
  // is not negotiated yet (`answered` false).
  static void ExpectStarted(CallAudioClient& stream, uint32_t rate, bool answered = true) {
    auto started = stream.Next();
    if (!started.has_value()) {
      std::optional<grpc::Status> end = stream.WaitForEnd(absl::ZeroDuration());
      FAIL() << "no started; the stream " << (end ? "ended: " + end->error_message() : "is open");
    }
    ASSERT_TRUE(started->has_started()) << started->ShortDebugString();
    EXPECT_EQ(started->started().sample_rate(), rate);
    const std::string& codec = started->started().codec();
    EXPECT_TRUE(codec == "PCMU" || codec == "PCMA" || (!answered && codec.empty())) << codec;
  }

  // The stream's status once it ended (DEADLINE_EXCEEDED if it did not).
  static grpc::Status EndOf(CallAudioClient& stream) {
    std::optional<grpc::Status> end = stream.WaitForEnd();
    EXPECT_TRUE(end.has_value()) << "the stream did not end";
    return end.value_or(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "did not end"));
  }

  // Each frame's sequence follows the previous one's (no frame lost) and
  // its timestamp is sequence * samples per frame.
  static void ExpectConsecutive(const std::vector<CallAudioFrame>& frames, size_t frame_samples) {
    for (size_t i = 0; i < frames.size(); ++i) {
      ASSERT_EQ(frames[i].sequence(), frames[0].sequence() + i) << "frame " << i;
      ASSERT_EQ(frames[i].timestamp(), uint64_t{frames[i].sequence()} * frame_samples);
      ASSERT_EQ(frames[i].pcm().size(), frame_samples * 2);
    }
  }

  // account-1's recording of call `id`: {received, sent}.
  std::vector<std::vector<double>> Recording(int64_t id) {
    absl::StatusOr<WavAudio> wav = ReadWav(absl::StrCat(record_dir_, "/", id, "-account-1.wav"));
    EXPECT_TRUE(wav.ok()) << wav.status();
    if (!wav.ok() || wav->channels.size() != 2) return {{}, {}};
    return wav->channels;
  }

  std::string record_dir_;
  std::unique_ptr<BaresipProcess> baresip_;
  std::unique_ptr<telestra::v1::Telestra::Stub> stub_;
};

// baresip calls account-1. A LISTEN stream opened while the call rings gets
// `started`; once answered, 8 and 16 kHz LISTEN streams hear baresip's
// tone; a SPEAK stream's 700 Hz replaces account-1's 440 Hz on the wire
// (account-1's recording, baresip's recording) and its mark comes back only
// once the 2 s before it were sent; baresip's hangup stops every stream
// with "Call ended" and OK.
TEST_F(CallAudioGrpcTest, ListenHearsBaresipAndSpeakIsHeardByIt) {
  ASSERT_NO_FATAL_FAILURE(StartBaresip());
  ASSERT_TRUE(baresip_->Command("dial", absl::StrCat("sip:3001@", kamailio().server())).ok());
  auto incoming = client_->WaitFor(IsEventOf("call-incoming", "account-1"));
  ASSERT_TRUE(incoming.has_value());
  const int64_t id = incoming->Int("call_id");
  auto early = Open("account-1", id, 8000, AUDIO_DIRECTION_LISTEN);
  ASSERT_NO_FATAL_FAILURE(ExpectStarted(*early, 8000, /*answered=*/false));
  ASSERT_TRUE(early->WaitForFrames(5));  // silence frames keep the time while it rings
  Command("answer-call", "account-1", id);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
  ASSERT_TRUE(baresip_->WaitEvent("CALL_ESTABLISHED").has_value());

  auto narrow = Open("account-1", id, 8000, AUDIO_DIRECTION_LISTEN);
  auto wide = Open("account-1", id, 16000, AUDIO_DIRECTION_LISTEN);
  ASSERT_NO_FATAL_FAILURE(ExpectStarted(*narrow, 8000));
  ASSERT_NO_FATAL_FAILURE(ExpectStarted(*wide, 16000));
  // A second of audio each (the first frames may still be the jitter
  // buffer's silence).
  ASSERT_TRUE(narrow->WaitForFrames(60));
  ASSERT_TRUE(wide->WaitForFrames(60));
  std::vector<CallAudioFrame> narrow_frames = narrow->frames();
  std::vector<CallAudioFrame> wide_frames = wide->frames();
  ASSERT_NO_FATAL_FAILURE(ExpectConsecutive(narrow_frames, 160));
  ASSERT_NO_FATAL_FAILURE(ExpectConsecutive(wide_frames, 320));
  std::vector<double> heard = Samples(narrow_frames, 10);
  EXPECT_GT(Rms(heard), 0.05);
  EXPECT_GT(ToneShare(heard, 8000, kBaresipHz), 0.6);
  EXPECT_LT(ToneShare(heard, 8000, kGatewayHz), 0.05);
  std::vector<double> heard_wide = Samples(wide_frames, 10);
  EXPECT_GT(ToneShare(heard_wide, 16000, kBaresipHz), 0.6);

  // 2 s of 700 Hz at once, then a mark: it comes back once they were sent.
  auto speak = Open("account-1", id, 8000, AUDIO_DIRECTION_SPEAK);
  ASSERT_NO_FATAL_FAILURE(ExpectStarted(*speak, 8000));
  ASSERT_TRUE(speak->Send(AudioPcm(TonePcm(kSpeakHz, 50))));
  ASSERT_TRUE(speak->Send(AudioPcm(TonePcm(kSpeakHz, 50, 50))));
  const absl::Time queued = absl::Now();
  ASSERT_TRUE(speak->Send(AudioMark("after-2s")));
  auto mark = speak->WaitFor(IsMark);
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->mark().name(), "after-2s");
  EXPECT_GE(absl::Now() - queued, absl::Milliseconds(1800)) << "the mark came back too early";

  ASSERT_TRUE(baresip_->Command("hangup", "").ok());
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-1", id)).has_value());
  for (CallAudioClient* stream : {early.get(), narrow.get(), wide.get(), speak.get()}) {
    auto stopped = stream->WaitFor(IsStopped);
    ASSERT_TRUE(stopped.has_value());
    EXPECT_EQ(stopped->stopped().reason(), "Call ended");
    EXPECT_EQ(stopped->stopped().frames_dropped(), 0u);
    grpc::Status end = EndOf(*stream);
    EXPECT_TRUE(end.ok()) << end.error_message();
  }
  ASSERT_TRUE(baresip_->WaitEvent("CALL_CLOSED").has_value());
  // The stream that started while the call rang went on through the answer.
  std::vector<CallAudioFrame> early_frames = early->frames();
  ASSERT_NO_FATAL_FAILURE(ExpectConsecutive(early_frames, 160));
  EXPECT_GT(ToneShare(Samples(early_frames), 8000, kBaresipHz), 0.5);

  // What account-1 sent: 440 Hz, and 700 Hz alone while the stream spoke.
  std::vector<std::vector<double>> recording = Recording(id);
  Window sent = BestWindow(recording[1], kRate, kSpeakHz, kGatewayHz);
  EXPECT_GT(sent.share, 0.8);
  EXPECT_LT(sent.other_share, 0.05);
  const absl::Duration spoken = TimeOf(recording[1], kRate, kSpeakHz);
  EXPECT_GE(spoken, absl::Milliseconds(1800));
  EXPECT_LE(spoken, absl::Milliseconds(2100));
  EXPECT_GT(BestWindow(recording[1], kRate, kGatewayHz, kSpeakHz).share, 0.8);
  EXPECT_GT(ToneShare(recording[0], kRate, kBaresipHz), 0.5);  // recording still works
  // What baresip heard.
  std::vector<std::string> decoded = FilesEndingWith(baresip_->record_dir(), "-dec.wav");
  ASSERT_EQ(decoded.size(), 1u);
  absl::StatusOr<WavAudio> wav = ReadWav(decoded[0]);
  ASSERT_TRUE(wav.ok()) << wav.status();
  Window at_baresip = BestWindow(wav->channels[0], wav->sample_rate, kSpeakHz, kGatewayHz);
  EXPECT_GT(at_baresip.share, 0.8);
  EXPECT_LT(at_baresip.other_share, 0.05);
}

// Barge-in: 4 s queued, a mark, then clear after half a second: the mark
// comes back at once (not after 4 s), the call sends silence while the
// stream stays (nothing queued), and account-1's own tone once it ends.
TEST_F(CallAudioGrpcTest, ClearEmptiesTheQueueAndReturnsItsMarkAtOnce) {
  ASSERT_NO_FATAL_FAILURE(StartBaresip());
  int64_t id = -1;
  ASSERT_NO_FATAL_FAILURE(Call("3006", &id));
  ASSERT_TRUE(baresip_->WaitEvent("CALL_ESTABLISHED").has_value());
  // `clock` only counts the call's frames (20 ms each).
  auto clock = Open("account-1", id, 8000, AUDIO_DIRECTION_LISTEN);
  auto speak = Open("account-1", id, 8000, AUDIO_DIRECTION_SPEAK);
  ASSERT_NO_FATAL_FAILURE(ExpectStarted(*clock, 8000));
  ASSERT_NO_FATAL_FAILURE(ExpectStarted(*speak, 8000));
  for (size_t first = 0; first < 200; first += 50) {
    ASSERT_TRUE(speak->Send(AudioPcm(TonePcm(kSpeakHz, 50, first))));
  }
  ASSERT_TRUE(speak->Send(AudioMark("end-of-prompt")));
  ASSERT_TRUE(clock->WaitForFrames(clock->frame_count() + 25));  // some of it plays
  const absl::Time cleared = absl::Now();
  ASSERT_TRUE(speak->Send(AudioClear()));
  auto mark = speak->WaitFor(IsMark);
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->mark().name(), "end-of-prompt");
  EXPECT_LT(absl::Now() - cleared, absl::Seconds(1));
  // With nothing queued a mark is due at once.
  ASSERT_TRUE(speak->Send(AudioMark("empty")));
  mark = speak->WaitFor(IsMark, absl::Seconds(1));
  ASSERT_TRUE(mark.has_value());
  EXPECT_EQ(mark->mark().name(), "empty");
  // Half a second of silence, then the stream ends: the tone comes back.
  ASSERT_TRUE(clock->WaitForFrames(clock->frame_count() + 25));
  speak->SendDone();
  speak->Cancel();
  ASSERT_TRUE(speak->WaitForEnd().has_value());
  ASSERT_TRUE(clock->WaitForFrames(clock->frame_count() + 50));
  Command("hangup-call", "account-1", id);
  auto stopped = clock->WaitFor(IsStopped);
  ASSERT_TRUE(stopped.has_value());
  EXPECT_EQ(stopped->stopped().reason(), "Call ended");
  EXPECT_TRUE(EndOf(*clock).ok());
  ASSERT_TRUE(baresip_->WaitEvent("CALL_CLOSED").has_value());

  std::vector<std::vector<double>> recording = Recording(id);
  const absl::Duration spoken = TimeOf(recording[1], kRate, kSpeakHz);
  EXPECT_GE(spoken, absl::Milliseconds(300));
  EXPECT_LT(spoken, absl::Milliseconds(1500));  // not the 4 s queued
  const size_t tail = static_cast<size_t>(kRate) / 2;
  ASSERT_GT(recording[1].size(), tail);
  std::vector<double> last(recording[1].end() - tail, recording[1].end());
  EXPECT_GT(ToneShare(last, kRate, kGatewayHz), 0.8);
}

// account-1 calls account-2 (both gateway accounts, through Kamailio). A
// SPEAK stream on account-1's leg sends noise; two LISTEN streams on
// account-2's leg get the same frames (matched by content: each tap numbers
// its frames from its own start); a LISTEN client that stops reading for
// 3 s disturbs neither them nor the call, and its losses show in its
// stopped message and in /metrics.
TEST_F(CallAudioGrpcTest, ListenersGetTheSameFramesAndAStalledOneDisturbsNobody) {
  int64_t id = -1, other = -1;
  ASSERT_NO_FATAL_FAILURE(Call("3002", &id, &other));
  ChannelOptions small;
  small.small_window = true;
  auto stalled_stub = telestra::v1::Telestra::NewStub(MakeChannel(gateway_->grpc_port(), small));
  auto first = Open("account-2", other, 8000, AUDIO_DIRECTION_LISTEN);
  auto second = Open("account-2", other, 8000, AUDIO_DIRECTION_LISTEN);
  auto stalled =
      Open("account-2", other, 8000, AUDIO_DIRECTION_LISTEN, stalled_stub.get(), /*paused=*/true);
  ASSERT_NO_FATAL_FAILURE(ExpectStarted(*first, 8000));
  ASSERT_NO_FATAL_FAILURE(ExpectStarted(*second, 8000));
  auto speak = Open("account-1", id, 8000, AUDIO_DIRECTION_SPEAK);
  ASSERT_NO_FATAL_FAILURE(ExpectStarted(*speak, 8000));
  const std::string noise = NoisePcm(200);  // 4 s
  for (size_t at = 0; at < noise.size(); at += 50 * kFrame * 2) {
    ASSERT_TRUE(speak->Send(AudioPcm(noise.substr(at, 50 * kFrame * 2))));
  }
  ASSERT_TRUE(speak->Send(AudioMark("noise-sent")));
  // 3 s and more of the call pass while `stalled` reads nothing.
  const absl::Time start = absl::Now();
  ASSERT_TRUE(speak->WaitFor(IsMark, absl::Seconds(10)).has_value());
  EXPECT_GE(absl::Now() - start, absl::Seconds(3));
  ASSERT_TRUE(first->WaitForFrames(200));
  ASSERT_TRUE(second->WaitForFrames(200));
  EXPECT_EQ(CallState(*client_, "account-2", other), "active");
  EXPECT_EQ(CallState(*client_, "account-1", id), "active");

  std::vector<CallAudioFrame> a = first->frames();
  std::vector<CallAudioFrame> b = second->frames();
  ASSERT_NO_FATAL_FAILURE(ExpectConsecutive(a, 160));
  ASSERT_NO_FATAL_FAILURE(ExpectConsecutive(b, 160));
  // The loudest frame of `a` (noise, unique) is in `b` once: the offset.
  size_t loudest = 0;
  double loudest_rms = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    std::vector<double> samples = Samples({a[i]});
    if (Rms(samples) > loudest_rms) {
      loudest_rms = Rms(samples);
      loudest = i;
    }
  }
  ASSERT_GT(loudest_rms, 0.05) << "no noise heard";
  std::vector<size_t> found;
  for (size_t j = 0; j < b.size(); ++j) {
    if (b[j].pcm() == a[loudest].pcm()) found.push_back(j);
  }
  ASSERT_EQ(found.size(), 1u);
  const int64_t offset = static_cast<int64_t>(found[0]) - static_cast<int64_t>(loudest);
  size_t compared = 0, noisy = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int64_t j = static_cast<int64_t>(i) + offset;
    if (j < 0 || j >= static_cast<int64_t>(b.size())) continue;
    ASSERT_EQ(a[i].pcm(), b[j].pcm()) << "frame " << i << " of the first listener";
    ++compared;
    noisy += Rms(Samples({a[i]})) > 0.05;
  }
  EXPECT_GT(compared, 150u);
  EXPECT_GT(noisy, 150u);  // most of the 200 frames of noise

  Command("hangup-call", "account-1", id);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-2", other)).has_value());
  for (CallAudioClient* listener : {first.get(), second.get()}) {
    auto stopped = listener->WaitFor(IsStopped);
    ASSERT_TRUE(stopped.has_value());
    EXPECT_EQ(stopped->stopped().frames_dropped(), 0u);
    EXPECT_TRUE(EndOf(*listener).ok());
  }
  stalled->Resume();
  auto stopped = stalled->WaitFor(IsStopped);
  ASSERT_TRUE(stopped.has_value());
  const uint64_t dropped = stopped->stopped().frames_dropped();
  EXPECT_GT(dropped, 50u);  // 3 s and more unread, 1 s kept
  EXPECT_EQ(stopped->stopped().frames_sent(), stalled->frame_count());
  EXPECT_TRUE(EndOf(*stalled).ok());
  std::vector<CallAudioFrame> kept = stalled->frames();
  for (size_t i = 1; i < kept.size(); ++i) {
    ASSERT_GT(kept[i].sequence(), kept[i - 1].sequence());
  }
  // Counted once the stream is gone.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  double counted = -1;
  while (absl::Now() < deadline) {
    counted = Metric(*gateway_, "telestra_call_audio_frames_dropped_total");
    if (counted >= static_cast<double>(dropped)) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(counted, static_cast<double>(dropped));
}

// Refused and failed streams end with their status and leave the call (and
// the other streams) alone: another account's call, a fifth stream, bad
// starts, bad audio, a second start, 16 MiB at once.
TEST_F(CallAudioGrpcTest, RefusedAndFailedStreamsLeaveTheCallAlone) {
  int64_t id = -1, other = -1;
  ASSERT_NO_FATAL_FAILURE(Call("3002", &id, &other));

  // account-2 has no call `id` (it is account-1's).
  auto foreign = Open("account-2", id, 8000, AUDIO_DIRECTION_LISTEN);
  grpc::Status end = EndOf(*foreign);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::NOT_FOUND) << end.error_message();

  // max-streams-per-call is 4.
  std::vector<std::unique_ptr<CallAudioClient>> four;
  for (int i = 0; i < 4; ++i) {
    four.push_back(
        Open("account-1", id, 8000, i == 0 ? AUDIO_DIRECTION_LISTEN : AUDIO_DIRECTION_BOTH));
    ASSERT_NO_FATAL_FAILURE(ExpectStarted(*four.back(), 8000));
  }
  auto fifth = Open("account-1", id, 8000, AUDIO_DIRECTION_LISTEN);
  end = EndOf(*fifth);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(end.error_message(),
            absl::StrCat("Too many audio streams on call ", id, " (max-streams-per-call is 4)"));
  // Three slots free again for what follows; four[0] watches the call.
  for (int i = 1; i < 4; ++i) {
    four[i]->Cancel();
    ASSERT_TRUE(four[i]->WaitForEnd().has_value());
  }

  struct Case {
    std::string name;
    std::optional<telestra::v1::CallAudioRequest> first;
    std::optional<telestra::v1::CallAudioRequest> then;
    grpc::StatusCode code;
  };
  const std::vector<Case> cases = {
      {"rate 44100", AudioStart("account-1", id, 44100, AUDIO_DIRECTION_LISTEN), std::nullopt,
       grpc::StatusCode::INVALID_ARGUMENT},
      {"no direction", AudioStart("account-1", id, 8000, telestra::v1::AUDIO_DIRECTION_UNSPECIFIED),
       std::nullopt, grpc::StatusCode::INVALID_ARGUMENT},
      {"audio before start", AudioPcm(TonePcm(kSpeakHz, 1)), std::nullopt,
       grpc::StatusCode::INVALID_ARGUMENT},
      {"frame of the wrong size", AudioStart("account-1", id, 8000, AUDIO_DIRECTION_SPEAK),
       AudioPcm(std::string(300, '\0')), grpc::StatusCode::INVALID_ARGUMENT},
      {"second start", AudioStart("account-1", id, 8000, AUDIO_DIRECTION_SPEAK),
       AudioStart("account-1", id, 8000, AUDIO_DIRECTION_SPEAK),
       grpc::StatusCode::INVALID_ARGUMENT},
      {"16 MiB at once", AudioStart("account-1", id, 8000, AUDIO_DIRECTION_SPEAK),
       AudioPcm(std::string(16 << 20, '\0')), grpc::StatusCode::RESOURCE_EXHAUSTED},
  };
  for (const Case& c : cases) {
    auto stream = CallAudioClient::Open(stub_.get(), c.first);
    if (c.then.has_value()) {
      ASSERT_NO_FATAL_FAILURE(ExpectStarted(*stream, 8000)) << c.name;
      stream->Send(*c.then);
    }
    end = EndOf(*stream);
    EXPECT_EQ(end.error_code(), c.code) << c.name << ": " << end.error_message();
  }

  // The call and the watching stream went on throughout.
  EXPECT_EQ(CallState(*client_, "account-1", id), "active");
  EXPECT_FALSE(four[0]->WaitForEnd(absl::ZeroDuration()).has_value());
  const size_t seen = four[0]->frame_count();
  ASSERT_TRUE(four[0]->WaitForFrames(seen + 25));
  ASSERT_NO_FATAL_FAILURE(ExpectConsecutive(four[0]->frames(), 160));
  Command("hangup-call", "account-1", id);
  auto stopped = four[0]->WaitFor(IsStopped);
  ASSERT_TRUE(stopped.has_value());
  EXPECT_EQ(stopped->stopped().reason(), "Call ended");
  EXPECT_TRUE(EndOf(*four[0]).ok());

  // A stream on the call that has ended: NOT_FOUND.
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-1", id)).has_value());
  auto late = Open("account-1", id, 8000, AUDIO_DIRECTION_LISTEN);
  EXPECT_EQ(EndOf(*late).error_code(), grpc::StatusCode::NOT_FOUND);
}

// Early media (issue 20) to a LISTEN stream: account-1 calls a sipp UAS
// (uas_early_media_tone.xml) that answers 183 with SDP, plays a 1000 Hz tone
// (tone_1000hz.pcap) at once and sends its 200 only 2.5 s later.
class CallAudioEarlyMediaTest : public SipPeerTest {
 protected:
  static constexpr int kSippToneHz = 1000;
};

// A LISTEN stream opened after the 183 starts with the early SDP's codec and
// hears the far end's tone while the call still rings; the same stream goes
// on, frame after frame, through the 200 to the end of the call.
TEST_F(CallAudioEarlyMediaTest, ListenHearsTheFarEndsEarlyMediaBeforeTheAnswer) {
  ASSERT_NO_FATAL_FAILURE(StartTwoAccounts());
  ASSERT_TRUE(WaitForTcpPort(gateway_->grpc_port(), absl::Seconds(10)));
  auto stub = telestra::v1::Telestra::NewStub(MakeChannel(gateway_->grpc_port()));
  SippProcess* sipp = StartUas("uas_early_media_tone.xml");
  ASSERT_NE(sipp, nullptr);
  client_->Send(
      absl::StrCat(R"({"cmd":"make-call","account":"account-1","num":")", kSippUser, R"("})"));
  auto call_return = client_->WaitFor(IsEventOf("call-return", "account-1"));
  ASSERT_TRUE(call_return.has_value());
  const int64_t id = call_return->Int("call_id");
  auto progress = client_->WaitFor(IsCallEvent("call-progress", "account-1", id));
  ASSERT_TRUE(progress.has_value()) << sipp->Describe();
  EXPECT_EQ(progress->Int("code"), 183) << progress->json;
  ASSERT_NE(progress->json.find("\"early_media\":true"), std::string::npos) << progress->json;

  auto listen =
      CallAudioClient::Open(stub.get(), AudioStart("account-1", id, kRate, AUDIO_DIRECTION_LISTEN));
  auto started = listen->Next();
  ASSERT_TRUE(started.has_value() && started->has_started())
      << (started ? started->ShortDebugString() : "no started");
  // The 183's SDP answer set the codec: not "" as for a call still dialing.
  EXPECT_EQ(started->started().codec(), "PCMA");
  // 0.8 s of frames, then the call must still be ringing: all of them were
  // heard before the answer (sipp sends its 200 2.5 s after the 183).
  ASSERT_TRUE(listen->WaitForFrames(40));
  std::vector<CallAudioFrame> early = listen->frames();
  EXPECT_EQ(CallState(*client_, "account-1", id), "ringing") << "answered too soon to tell";
  // Skip the first frames: silence while the jitter buffer fills.
  std::vector<double> heard = Samples(early, 10);
  EXPECT_GT(Rms(heard), 0.1) << "no early media heard";
  EXPECT_GT(ToneShare(heard, kRate, kSippToneHz), 0.8);

  auto answered = client_->WaitFor(IsCallEvent("call-answered", "account-1", id));
  ASSERT_TRUE(answered.has_value()) << sipp->Describe();
  const size_t at_answer = listen->frame_count();
  ASSERT_TRUE(listen->WaitForFrames(at_answer + 25));  // the tone goes on after the 200
  client_->Send(absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", id, "}"));
  auto stopped = listen->WaitFor(IsStopped);
  ASSERT_TRUE(stopped.has_value());
  EXPECT_EQ(stopped->stopped().reason(), "Call ended");
  EXPECT_EQ(stopped->stopped().frames_dropped(), 0u);
  std::optional<grpc::Status> end = listen->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_TRUE(end->ok()) << end->error_message();
  ExpectSippSucceeds(*sipp);
  std::vector<CallAudioFrame> frames = listen->frames();
  for (size_t i = 1; i < frames.size(); ++i) {
    ASSERT_EQ(frames[i].sequence(), frames[i - 1].sequence() + 1) << "frame " << i;
  }
  std::vector<CallAudioFrame> after(frames.begin() + at_answer, frames.begin() + at_answer + 25);
  EXPECT_GT(ToneShare(Samples(after), kRate, kSippToneHz), 0.8);
}

}  // namespace
}  // namespace telestra::testing
