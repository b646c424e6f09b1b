// Call audio (issue 19, docs/audio.md): the latency the gateway adds to a
// call's audio on gRPC CallAudio streams, and how many calls with one BOTH
// stream each it carries.
//
//   call_audio --calls=200 --seconds=60 [--warmup_seconds=3] [--channels=1]
//
// Everything runs on 127.0.0.1; run it with bench/run-call-audio.sh, which
// builds with -c opt and points TEST_SRCDIR at the runfiles.
//  - The gateway is the real binary (GatewayProcess) with one account whose
//    registrar and far end is a FakeSipPeer in this process: it answers the
//    REGISTER, and each INVITE with 200 OK and an SDP that names that call's
//    socket of an RtpFarEnd (also in this process), which takes the
//    gateway's RTP port from the INVITE's SDP.
//  - --calls calls are made with gRPC MakeCall (to numbers 10000 + i), and
//    each gets one CallAudio stream, BOTH at 8000 Hz, from this process
//    (gRPC's callback API over --channels connections).
//  - Every 20 ms the far end sends each call an RTP packet whose audio
//    carries the frame's number (pcm_marker.h), and each stream's client
//    sends a numbered frame; call i does both in millisecond i % 20 of the
//    20 ms, so that the calls are spread over the frame as independent far
//    ends and clients would be.
//
// Measured, for each frame sent in the window of --seconds (after
// --warmup_seconds):
//  - listen latency: from the far end's sendto of the RTP packet until the
//    stream's client has the LISTEN frame that holds it (this includes the
//    jitter buffer's depth: the target is at most one frame beyond it);
//  - speak latency: from the client's StartWrite of the SPEAK frame until
//    its RTP packet reached the far end's socket (the kernel's receive
//    time);
//  - glitches: frames lost (never arrived); listening, frames late (more
//    than --late_ms after the median latency of their stream: a listener
//    with one frame of slack would have had to skip them); speaking,
//    underruns (silence the gateway sent between a stream's frames because
//    the spoken frame was not there at its tick: the frame goes out at the
//    next tick and the stream stays that frame behind, on time on the wire
//    but with 20 ms more latency, which the first and last 5 s medians
//    show). The run passes when the glitches are under
//    --max_glitch_percent of the frames (0.1 %).
//  - where the CPU went over the window: each thread of the gateway and of
//    this process (by name), and the rest of the machine.
#include <pthread.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/media/audio_format.h"
#include "bench/pcm_marker.h"
#include "bench/proc_cpu.h"
#include "bench/rtp_far_end.h"
#include "grpcpp/grpcpp.h"
#include "proto/telestra_service.grpc.pb.h"
#include "tests/backend/sip/fake_sip_peer.h"
#include "tests/integration/gateway_process.h"
#include "tests/support/loopback_socket.h"
#include "tests/support/ports.h"

ABSL_FLAG(int, calls, 100, "calls, each with one BOTH stream (1..2000)");
ABSL_FLAG(int, seconds, 60, "measured window (1..600)");
ABSL_FLAG(int, warmup_seconds, 3, "streaming before the window (0..60)");
ABSL_FLAG(int, channels, 1, "gRPC connections the streams are spread over (1..64)");
ABSL_FLAG(int, late_ms, 20, "a frame later than its stream's median latency by more is late");
ABSL_FLAG(double, max_glitch_percent, 0.1, "pass when lost + late + underruns stay below this");
ABSL_FLAG(std::vector<std::string>, gateway_flags, {}, "more flags for the gateway");

namespace telestra::bench {
namespace {

using backend::kFrameSamples;
using backend::testing::FakeSipPeer;
using backend::testing::SipMessage;
using telestra::testing::GatewayOptions;
using telestra::testing::GatewayProcess;
using telestra::v1::CallAudioRequest;
using telestra::v1::CallAudioResponse;

constexpr char kAccount[] = "bench";
constexpr int kFirstNumber = 10000;
constexpr int kFrameBytes = kFrameSamples * 2;
constexpr int kSlots = backend::kFrameMs;  // milliseconds of a frame
// Frames a client may be behind with its writes (one in flight at a time)
// before it skips a frame (counted): 1 s.
constexpr uint32_t kMaxWriteBacklog = 50;
constexpr size_t kMaxUnderrunTimes = 65536;
const absl::Duration kSetupTimeout = absl::Seconds(60);

// Microseconds since the benchmark started (CLOCK_REALTIME), never 0: the
// frame tables store these, 0 meaning "not yet".
int64_t g_epoch_ns = 0;
int32_t SinceEpochUs(int64_t realtime_ns) {
  return static_cast<int32_t>(std::max<int64_t>(1, (realtime_ns - g_epoch_ns) / 1000));
}

// The measured window, in microseconds since the epoch ([start, end)); 0:
// not set yet.
std::atomic<int32_t> g_window_start_us{0};
std::atomic<int32_t> g_window_end_us{0};
bool InWindow(int32_t us) {
  const int32_t start = g_window_start_us.load(std::memory_order_relaxed);
  const int32_t end = g_window_end_us.load(std::memory_order_relaxed);
  return start != 0 && us >= start && (end == 0 || us < end);
}

// When each frame of one direction of one call was sent and when it first
// arrived. A frame's number is its marker (pcm_marker.h), so a run holds at
// most 65,536 frames (21 minutes).
// Thread: any (the sender and the receiver each write their own column).
class FrameTimes {
 public:
  explicit FrameTimes(uint32_t capacity)
      : capacity_(capacity),
        sent_(std::make_unique<std::atomic<int32_t>[]>(capacity)),
        arrived_(std::make_unique<std::atomic<int32_t>[]>(capacity)) {}

  void Sent(uint32_t frame, int64_t realtime_ns) {
    if (frame >= capacity_) return;
    sent_[frame].store(SinceEpochUs(realtime_ns), std::memory_order_relaxed);
    if (frame + 1 > sent_count_.load(std::memory_order_relaxed)) sent_count_.store(frame + 1);
  }
  void Arrived(uint32_t frame, int64_t realtime_ns) {
    if (frame >= capacity_) return;
    int32_t expected = 0;
    arrived_[frame].compare_exchange_strong(expected, SinceEpochUs(realtime_ns));
  }

  struct Result {
    uint64_t frames = 0;  // sent in the window
    uint64_t lost = 0;
    uint64_t late = 0;
    std::vector<int32_t> latency_us;  // of the frames that arrived
    std::vector<int32_t> sent_us;     // when those were sent
    std::vector<int32_t> lost_at_us;  // when the lost frames were sent
    std::vector<int32_t> late_at_us;  // and the late ones
  };
  // The frames sent in the window; late: more than `late_us` after the
  // median of this stream's latencies.
  Result Collect(int32_t late_us) const {
    Result result;
    const uint32_t count = std::min(sent_count_.load(), capacity_);
    for (uint32_t frame = 0; frame < count; ++frame) {
      const int32_t sent = sent_[frame].load();
      if (sent == 0 || !InWindow(sent)) continue;
      ++result.frames;
      const int32_t arrived = arrived_[frame].load();
      if (arrived == 0) {
        ++result.lost;
        result.lost_at_us.push_back(sent);
      } else {
        result.latency_us.push_back(arrived - sent);
        result.sent_us.push_back(sent);
      }
    }
    if (!result.latency_us.empty()) {
      std::vector<int32_t> sorted = result.latency_us;
      std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
      const int32_t median = sorted[sorted.size() / 2];
      for (size_t i = 0; i < result.latency_us.size(); ++i) {
        if (result.latency_us[i] <= median + late_us) continue;
        ++result.late;
        result.late_at_us.push_back(result.sent_us[i]);
      }
    }
    return result;
  }

 private:
  const uint32_t capacity_;
  std::unique_ptr<std::atomic<int32_t>[]> sent_;
  std::unique_ptr<std::atomic<int32_t>[]> arrived_;
  std::atomic<uint32_t> sent_count_{0};
};

// Counts of streams that reached a state, for the main thread to wait on.
// Thread: any.
class Progress {
 public:
  void Add() {
    absl::MutexLock lock(&mu_);
    ++count_;
  }
  // True once `count` were added, false after `timeout`.
  bool AwaitCount(int count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  int count() {
    absl::MutexLock lock(&mu_);
    return count_;
  }

 private:
  absl::Mutex mu_;  // Lock order: a leaf.
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

// One call under test: its two directions' frame tables and what the far
// end saw of the gateway's RTP.
// Thread: the tables any (FrameTimes); the rest the far end's thread, read
// by the main thread once the far end stopped.
struct CallUnderTest {
  explicit CallUnderTest(uint32_t capacity) : listen(capacity), speak(capacity) {}
  int64_t call_id = -1;
  FrameTimes listen;  // far end -> gateway -> LISTEN frame at the client
  FrameTimes speak;   // client's SPEAK frame -> gateway -> RTP at the far end
  // Far end thread only (read once it stopped).
  bool speak_flowing = false;  // a numbered frame came already
  // Unnumbered (silence) packets in the window after that: when they came
  // (at most kMaxUnderrunTimes kept).
  uint64_t speak_underruns = 0;
  std::vector<int32_t> underrun_at_us;
};

// The far ends' audio: numbered frames out, numbers read back.
// Thread: the far end's (RtpFarEnd::Handler).
class FarEndAudio final : public RtpFarEnd::Handler {
 public:
  explicit FarEndAudio(std::vector<std::unique_ptr<CallUnderTest>>* calls) : calls_(calls) {}

  void Fill(int, uint32_t frame, int16_t* pcm) override {
    WriteMarkedFrame(static_cast<uint16_t>(frame), pcm);
  }
  void OnSent(int slot, uint32_t frame, int64_t realtime_ns) override {
    (*calls_)[slot]->listen.Sent(frame, realtime_ns);
  }
  void OnHeard(int slot, const int16_t* pcm, int samples, int64_t realtime_ns) override {
    CallUnderTest& call = *(*calls_)[slot];
    std::optional<uint16_t> frame = samples == kFrameSamples ? ReadMarkedFrame(pcm) : std::nullopt;
    if (frame) {
      call.speak_flowing = true;
      call.speak.Arrived(*frame, realtime_ns);
    } else if (call.speak_flowing && InWindow(SinceEpochUs(realtime_ns))) {
      ++call.speak_underruns;
      if (call.underrun_at_us.size() < kMaxUnderrunTimes) {
        call.underrun_at_us.push_back(SinceEpochUs(realtime_ns));
      }
    }
  }

 private:
  std::vector<std::unique_ptr<CallUnderTest>>* const calls_;
};

// One CallAudio stream (BOTH, 8000 Hz) in the shape of gRPC's callback
// client examples: one read always outstanding; writes one at a time, the
// next started from OnWriteDone. Speak() (the pacer, every 20 ms) makes one
// more frame due; a hold keeps the RPC alive while the pacer may write.
// Thread: Begin, Speak, StopSpeaking from the main and pacer threads; the
// reactions on gRPC's threads. mu_ guards the writing side; the reading side
// is only touched by OnReadDone (one read at a time).
class AudioClient final : public grpc::ClientBidiReactor<CallAudioRequest, CallAudioResponse> {
 public:
  AudioClient(CallUnderTest* call, Progress* started, Progress* done)
      : call_(call), started_progress_(started), done_progress_(done) {}

  void Begin(telestra::v1::Telestra::Stub* stub) {
    stub->async()->CallAudio(&context_, this);
    {
      absl::MutexLock lock(&mu_);
      auto* start = request_.mutable_start();
      start->set_account(kAccount);
      start->set_call_id(call_->call_id);
      start->set_sample_rate(8000);
      start->set_direction(telestra::v1::AUDIO_DIRECTION_BOTH);
      writing_ = true;
      StartWrite(&request_);  // sent once the call starts
    }
    StartRead(&response_);
    AddHold();  // the pacer writes from outside the reactions
    StartCall();
  }

  // One more frame is due.
  void Speak() {
    absl::MutexLock lock(&mu_);
    if (stopped_speaking_) return;
    if (frames_due_ - frames_written_ >= kMaxWriteBacklog) {
      ++frames_skipped_;  // the client itself cannot keep up
      ++frames_written_;
    }
    ++frames_due_;
    if (!writing_) WriteNextLocked();
  }

  // No more frames; the RPC ends when the gateway ends it (the call's end).
  void StopSpeaking() {
    absl::MutexLock lock(&mu_);
    stopped_speaking_ = true;
    if (!writing_) ReleaseHoldLocked();
  }

  bool started() const { return started_.load(std::memory_order_acquire); }

  struct Report {
    uint64_t silences = 0;        // unnumbered frames in the window after the first numbered one
    uint64_t sequence_gaps = 0;   // frames the gateway skipped (dropped for this client)
    uint64_t frames_skipped = 0;  // by this client (write backlog)
    uint32_t max_backlog = 0;
    telestra::v1::CallAudioStopped stopped;
    grpc::Status status;
  };
  // After OnDone.
  Report report() {
    absl::MutexLock lock(&mu_);
    report_.frames_skipped = frames_skipped_;
    report_.max_backlog = max_backlog_;
    return report_;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (ok && !stopped_speaking_ && frames_written_ < frames_due_) {
      WriteNextLocked();
      return;
    }
    if (!ok) stopped_speaking_ = true;  // the stream is over
    if (stopped_speaking_) ReleaseHoldLocked();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    const int64_t now = RealtimeNs();
    switch (response_.response_case()) {
      case CallAudioResponse::kStarted:
        started_.store(true, std::memory_order_release);
        started_progress_->Add();
        break;
      case CallAudioResponse::kAudio:
        OnAudio(response_.audio(), now);
        break;
      case CallAudioResponse::kStopped:
        report_.stopped = response_.stopped();
        break;
      default:
        break;
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      report_.status = status;
    }
    done_progress_->Add();
  }

 private:
  // RemoveHold never runs a reaction inline (gRPC schedules OnDone).
  void ReleaseHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (hold_removed_) return;
    hold_removed_ = true;
    RemoveHold();
  }

  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const uint32_t frame = frames_written_++;
    max_backlog_ = std::max(max_backlog_, frames_due_ - frame);
    int16_t pcm[kFrameSamples];
    WriteMarkedFrame(static_cast<uint16_t>(frame), pcm);
    request_.mutable_audio()->set_pcm(pcm, kFrameBytes);
    writing_ = true;
    call_->speak.Sent(frame, RealtimeNs());
    StartWrite(&request_);
  }

  void OnAudio(const telestra::v1::CallAudioFrame& audio, int64_t now) {
    if (last_sequence_ >= 0 && audio.sequence() > last_sequence_ + 1) {
      report_.sequence_gaps += audio.sequence() - last_sequence_ - 1;
    }
    last_sequence_ = audio.sequence();
    if (audio.pcm().size() != kFrameBytes) return;
    int16_t pcm[kFrameSamples];
    std::memcpy(pcm, audio.pcm().data(), kFrameBytes);
    if (std::optional<uint16_t> frame = ReadMarkedFrame(pcm)) {
      flowing_ = true;
      call_->listen.Arrived(*frame, now);
    } else if (flowing_ && InWindow(SinceEpochUs(now))) {
      ++report_.silences;
    }
  }

  CallUnderTest* const call_;
  Progress* const started_progress_;
  Progress* const done_progress_;
  grpc::ClientContext context_;
  std::atomic<bool> started_{false};

  // Reading side (OnReadDone only, one read at a time; report_ also after
  // OnDone).
  CallAudioResponse response_;
  int64_t last_sequence_ = -1;
  bool flowing_ = false;

  absl::Mutex mu_;  // Lock order: a leaf (gRPC's Start* do not call back inline).
  CallAudioRequest request_ ABSL_GUARDED_BY(mu_);  // the write in flight
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_speaking_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_removed_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t frames_due_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t frames_written_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t frames_skipped_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t max_backlog_ ABSL_GUARDED_BY(mu_) = 0;
  Report report_;
};

// Every 20 ms, one frame per started stream, stream i in millisecond i % 20
// (as RtpFarEnd does for the far ends).
// Thread: its own ("client-pacer") between Start and Stop.
class Pacer {
 public:
  explicit Pacer(std::vector<std::unique_ptr<AudioClient>>* clients) : clients_(clients) {}
  ~Pacer() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  uint64_t late_slots() const { return late_slots_.load(); }
  int64_t max_lateness_ns() const { return max_lateness_ns_.load(); }

 private:
  void Run() {
    pthread_setname_np(pthread_self(), "client-pacer");
    const int timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    itimerspec spec{};
    spec.it_value.tv_nsec = 1'000'000;
    spec.it_interval.tv_nsec = 1'000'000;
    const absl::Time start = absl::Now();
    timerfd_settime(timer, 0, &spec, nullptr);
    int64_t next_ms = 0;
    const int count = static_cast<int>(clients_->size());
    while (!stop_.load()) {
      uint64_t expirations = 0;
      if (read(timer, &expirations, sizeof(expirations)) != sizeof(expirations)) break;
      const int64_t lateness =
          absl::ToInt64Nanoseconds(absl::Now() - start - absl::Milliseconds(next_ms + 1));
      if (lateness > 2'000'000) {
        late_slots_.fetch_add(1);
        if (lateness > max_lateness_ns_.load()) max_lateness_ns_.store(lateness);
      }
      for (uint64_t e = 0; e < expirations; ++e) {
        for (int i = static_cast<int>(next_ms % kSlots); i < count; i += kSlots) {
          AudioClient& client = *(*clients_)[i];
          if (client.started()) client.Speak();
        }
        ++next_ms;
      }
    }
    close(timer);
  }

  std::vector<std::unique_ptr<AudioClient>>* const clients_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> late_slots_{0};
  std::atomic<int64_t> max_lateness_ns_{0};
  std::thread thread_;
};

// The call's index from the INVITE's request line ("INVITE sip:10042@..."),
// -1 if it is not one of ours.
int SlotOf(const SipMessage& invite, int calls) {
  const size_t user = invite.text.find("sip:");
  const size_t at = invite.text.find('@', user);
  int number = 0;
  if (user == std::string::npos || at == std::string::npos ||
      !absl::SimpleAtoi(invite.text.substr(user + 4, at - user - 4), &number)) {
    return -1;
  }
  const int slot = number - kFirstNumber;
  return slot >= 0 && slot < calls ? slot : -1;
}

// The audio port of an SDP ("m=audio 24000 RTP/AVP ..."), 0 if none.
int AudioPortOf(const std::string& sdp) {
  const size_t m = sdp.find("m=audio ");
  if (m == std::string::npos) return 0;
  int port = 0;
  const size_t end = sdp.find(' ', m + 8);
  return absl::SimpleAtoi(sdp.substr(m + 8, end - m - 8), &port) ? port : 0;
}

// The gateway's /metrics counters that say whether it kept up: media ticks
// missed beyond the catch-up (the far ends heard a gap), heard frames
// dropped for slow clients, underruns of speaking streams. -1 when the page
// could not be read.
struct GatewayCounters {
  double frames_skipped = -1;
  double frames_dropped = -1;
  double underruns = -1;
};
GatewayCounters ReadGatewayCounters(int metrics_port) {
  GatewayCounters counters;
  absl::StatusOr<int> fd = telestra::testing::ConnectLoopback(metrics_port);
  if (!fd.ok()) return counters;
  std::string page;
  if (telestra::testing::SendAll(*fd, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (telestra::testing::ReadSome(*fd, deadline, &page) ==
           telestra::testing::ReadResult::kData) {
    }
  }
  close(*fd);
  auto value = [&page](const std::string& name) {
    const size_t at = page.find("\n" + name + " ");
    double v = -1;
    if (at == std::string::npos) return v;
    const size_t start = at + name.size() + 2;
    return absl::SimpleAtod(page.substr(start, page.find('\n', start) - start), &v) ? v : -1;
  };
  counters.frames_skipped = value("telestra_media_frames_skipped_total");
  counters.frames_dropped = value("telestra_call_audio_frames_dropped_total");
  counters.underruns = value("telestra_call_audio_underruns_total");
  return counters;
}

double Percentile(std::vector<int32_t>& values, double p) {
  if (values.empty()) return 0;
  size_t index = std::min(values.size() - 1, static_cast<size_t>(p * (values.size() - 1) + 0.5));
  std::nth_element(values.begin(), values.begin() + index, values.end());
  return values[index] / 1000.0;
}

// One direction's frames over all calls, for the report.
// Thread: the main thread, once everything stopped.
struct DirectionTotals {
  uint64_t frames = 0;
  uint64_t lost = 0;
  uint64_t late = 0;
  std::vector<int32_t> latency_us;
  std::vector<int32_t> early_us;  // latencies of frames sent in the window's first 5 s
  std::vector<int32_t> late_us;   // and in its last 5 s
  std::vector<int32_t> glitch_at_us;

  // Lost frames are glitches; late ones too when `late_is_glitch`.
  void Add(FrameTimes::Result&& result, bool late_is_glitch) {
    frames += result.frames;
    lost += result.lost;
    late += result.late;
    latency_us.insert(latency_us.end(), result.latency_us.begin(), result.latency_us.end());
    const int32_t start = g_window_start_us.load(), end = g_window_end_us.load();
    for (size_t i = 0; i < result.sent_us.size(); ++i) {
      if (result.sent_us[i] < start + 5'000'000) early_us.push_back(result.latency_us[i]);
      if (result.sent_us[i] >= end - 5'000'000) late_us.push_back(result.latency_us[i]);
    }
    glitch_at_us.insert(glitch_at_us.end(), result.lost_at_us.begin(), result.lost_at_us.end());
    if (late_is_glitch) {
      glitch_at_us.insert(glitch_at_us.end(), result.late_at_us.begin(), result.late_at_us.end());
    }
  }
  std::string Latency() {
    if (latency_us.empty()) return "no frame arrived";
    return absl::StrFormat("median %.1f ms, p99 %.1f ms, p99.9 %.1f ms, min %.1f ms, max %.1f ms",
                           Percentile(latency_us, 0.5), Percentile(latency_us, 0.99),
                           Percentile(latency_us, 0.999), Percentile(latency_us, 0),
                           Percentile(latency_us, 1));
  }
  // Whether the latency crept up over the window.
  std::string Drift() {
    return absl::StrFormat(
        "first 5 s of the window: median %.1f ms, p99 %.1f ms; last 5 s: median %.1f ms, p99 %.1f "
        "ms",
        Percentile(early_us, 0.5), Percentile(early_us, 0.99), Percentile(late_us, 0.5),
        Percentile(late_us, 0.99));
  }
};

// Glitches by second of the window: "4 of 60 s; 17: 120, 3: 65, ..." (the
// busiest seconds first). A few stalls that hit every stream at once look
// different from a steady trickle.
std::string GlitchSeconds(const std::vector<int32_t>& at_us, int seconds) {
  std::map<int, uint64_t> by_second;
  const int32_t start = g_window_start_us.load();
  for (int32_t us : at_us) ++by_second[(us - start) / 1'000'000];
  std::vector<std::pair<int, uint64_t>> busiest(by_second.begin(), by_second.end());
  std::sort(busiest.begin(), busiest.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out = absl::StrCat(busiest.size(), " of ", seconds, " s");
  for (size_t i = 0; i < busiest.size() && i < 8; ++i) {
    absl::StrAppend(&out, i == 0 ? "; " : ", ", busiest[i].first, ": ", busiest[i].second);
  }
  return out;
}

int Run() {
  const int calls = std::clamp(absl::GetFlag(FLAGS_calls), 1, 2000);
  const int seconds = std::clamp(absl::GetFlag(FLAGS_seconds), 1, 600);
  const int warmup = std::clamp(absl::GetFlag(FLAGS_warmup_seconds), 0, 60);
  const int channels = std::clamp(absl::GetFlag(FLAGS_channels), 1, 64);
  const int32_t late_us = absl::GetFlag(FLAGS_late_ms) * 1000;
  g_epoch_ns = RealtimeNs();
  // Frames per stream: the run plus set-up time (at most kSetupTimeout x 3).
  const uint32_t capacity = static_cast<uint32_t>(std::min<int64_t>(
      65536, 50 * (seconds + warmup + 5 + 3 * absl::ToInt64Seconds(kSetupTimeout))));

  // The far end's sockets, the gateway's RTP ports and gRPC streams all
  // need descriptors; the gateway inherits the limit.
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);

  std::vector<std::unique_ptr<CallUnderTest>> under_test;
  for (int i = 0; i < calls; ++i) under_test.push_back(std::make_unique<CallUnderTest>(capacity));
  FarEndAudio audio(&under_test);
  RtpFarEnd far_end(calls, &audio);
  if (absl::Status started = far_end.Start(); !started.ok()) {
    std::fprintf(stderr, "%s\n", started.ToString().c_str());
    return 2;
  }
  Progress answered;
  FakeSipPeer peer([&](int, const SipMessage& request) -> std::vector<FakeSipPeer::Response> {
    const std::string method = request.Method();
    if (method == "REGISTER") return {{"200 OK\r\nExpires: 3600", ""}};
    if (method != "INVITE") return {{"200 OK", ""}};  // BYE and anything else
    const int slot = SlotOf(request, calls);
    const int gateway_port = AudioPortOf(request.Body());
    if (slot < 0 || gateway_port == 0) return {{"404 Not Found", ""}};
    far_end.SetRemote(slot, gateway_port);
    answered.Add();
    return {{"200 OK", backend::testing::PeerSdp(far_end.port(slot))}};
  });

  GatewayOptions options;
  options.accounts = {{kAccount, "3001", "bench", peer.address(), true}};
  // RTP: two ports a call, and the pairs the engine binds ahead (an eighth).
  const int rtp_ports = 2 * (calls + calls / 8 + 64);
  const int rtp_base = telestra::testing::PickFreeUdpRun(rtp_ports);
  if (rtp_base == 0) {
    std::fprintf(stderr, "no free run of %d UDP ports\n", rtp_ports);
    return 2;
  }
  options.rtp_settings = {absl::StrCat("port-min = ", rtp_base),
                          absl::StrCat("port-max = ", rtp_base + rtp_ports - 1)};
  if (calls > 1000) options.grpc_settings = {absl::StrCat("max-streams = ", calls + 16)};
  options.extra_args = {"--log_level=warn", "--mutex_deadlock_detection=false"};
  for (const std::string& flag : absl::GetFlag(FLAGS_gateway_flags)) {
    options.extra_args.push_back(flag);
  }
  absl::StatusOr<std::unique_ptr<GatewayProcess>> gateway = GatewayProcess::Start(options);
  if (!gateway.ok()) {
    std::fprintf(stderr, "gateway: %s\n", gateway.status().ToString().c_str());
    return 2;
  }
  const int gateway_pid = (*gateway)->process().pid();
  if (!telestra::testing::WaitForTcpPort((*gateway)->grpc_port(), absl::Seconds(10))) {
    std::fprintf(stderr, "the gateway's gRPC port did not open\n");
    return 2;
  }
  const std::string target = absl::StrCat("127.0.0.1:", (*gateway)->grpc_port());
  std::vector<std::unique_ptr<telestra::v1::Telestra::Stub>> stubs;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection each
    stubs.push_back(telestra::v1::Telestra::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
  }
  telestra::v1::Telestra::Stub& control = *stubs[0];

  // Registered (the fake registrar says 200 at once)?
  const absl::Time setup_start = absl::Now();
  for (;;) {
    grpc::ClientContext context;
    telestra::v1::GetStatusCommand command;
    command.set_account(kAccount);
    telestra::v1::Status status;
    if (control.GetStatus(&context, command, &status).ok() && status.account_status() == 200) break;
    if (absl::Now() - setup_start > absl::Seconds(10)) {
      std::fprintf(stderr, "the account did not register\n");
      return 2;
    }
    absl::SleepFor(absl::Milliseconds(20));  // set-up only
  }
  for (int i = 0; i < calls; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    telestra::v1::MakeCallCommand command;
    command.set_account(kAccount);
    command.set_num(std::to_string(kFirstNumber + i));
    telestra::v1::CallReturn reply;
    grpc::Status status = control.MakeCall(&context, command, &reply);
    if (!status.ok()) {
      std::fprintf(stderr, "make-call %d: %s\n", i, status.error_message().c_str());
      return 2;
    }
    under_test[i]->call_id = reply.call_id();
  }
  if (!answered.AwaitCount(calls, kSetupTimeout)) {
    std::fprintf(stderr, "only %d of %d calls were answered\n", answered.count(), calls);
    return 2;
  }
  Progress started, done;
  std::vector<std::unique_ptr<AudioClient>> clients;
  for (int i = 0; i < calls; ++i) {
    clients.push_back(std::make_unique<AudioClient>(under_test[i].get(), &started, &done));
    clients.back()->Begin(stubs[i % channels].get());
  }
  if (!started.AwaitCount(calls, kSetupTimeout)) {
    std::fprintf(stderr, "only %d of %d streams started\n", started.count(), calls);
    return 2;
  }
  const double setup_seconds = absl::ToDoubleSeconds(absl::Now() - setup_start);
  Pacer pacer(&clients);
  pacer.Start();
  absl::SleepFor(absl::Seconds(warmup));

  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  const auto gateway_before = ThreadCpuByName(gateway_pid);
  const auto bench_before = ThreadCpuByName(0);
  const GatewayCounters counters_before = ReadGatewayCounters((*gateway)->metrics_port());
  const double idle_before = MachineIdleSeconds();
  OtherProcessesCpu others({getpid(), gateway_pid});
  others.Start();
  const absl::Time window_start = absl::Now();
  g_window_start_us.store(SinceEpochUs(RealtimeNs()));
  absl::SleepFor(absl::Seconds(seconds));
  g_window_end_us.store(SinceEpochUs(RealtimeNs()));
  const double window = absl::ToDoubleSeconds(absl::Now() - window_start);
  const auto gateway_cpu = Subtract(ThreadCpuByName(gateway_pid), gateway_before);
  const auto bench_cpu = Subtract(ThreadCpuByName(0), bench_before);
  const double idle = MachineIdleSeconds() - idle_before;
  others.Stop();
  const RtpFarEnd::Counters far_counters = far_end.counters();
  const GatewayCounters counters_after = ReadGatewayCounters((*gateway)->metrics_port());

  // The frames of the window's last moment arrive (listening: after the
  // jitter buffer), then everything stops: the calls' end stops the streams.
  absl::SleepFor(absl::Seconds(1));
  pacer.Stop();
  for (auto& client : clients) client->StopSpeaking();
  for (int i = 0; i < calls; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    telestra::v1::HangupCallCommand command;
    command.set_account(kAccount);
    command.set_call_id(under_test[i]->call_id);
    telestra::v1::HangupCallResponse reply;
    (void)control.HangupCall(&context, command, &reply);
  }
  const bool all_done = done.AwaitCount(calls, absl::Seconds(30));
  far_end.Stop();

  // ---- Figures.
  DirectionTotals listen, speak;
  uint64_t speak_underruns = 0, listen_silences = 0, sequence_gaps = 0, client_skipped = 0;
  uint64_t dropped = 0, underruns = 0, frames_sent = 0, frames_spoken = 0;
  uint32_t max_backlog = 0;
  int failed_streams = 0;
  for (int i = 0; i < calls; ++i) {
    listen.Add(under_test[i]->listen.Collect(late_us), /*late_is_glitch=*/true);
    // A spoken frame that misses its tick is an underrun (counted below);
    // the frames after it follow a frame later, on time on the wire.
    speak.Add(under_test[i]->speak.Collect(late_us), /*late_is_glitch=*/false);
    speak_underruns += under_test[i]->speak_underruns;
    speak.glitch_at_us.insert(speak.glitch_at_us.end(), under_test[i]->underrun_at_us.begin(),
                              under_test[i]->underrun_at_us.end());
    if (!all_done) continue;  // the reports are written by gRPC's threads
    AudioClient::Report report = clients[i]->report();
    listen_silences += report.silences;
    sequence_gaps += report.sequence_gaps;
    client_skipped += report.frames_skipped;
    max_backlog = std::max(max_backlog, report.max_backlog);
    dropped += report.stopped.frames_dropped();
    underruns += report.stopped.underruns();
    frames_sent += report.stopped.frames_sent();
    frames_spoken += report.stopped.frames_spoken();
    if (!report.status.ok()) ++failed_streams;
  }
  const uint64_t frames = listen.frames + speak.frames;
  const uint64_t glitches =
      listen.lost + listen.late + speak.lost + speak_underruns + client_skipped;
  const double glitch_percent = frames > 0 ? 100.0 * glitches / frames : 100.0;
  const bool pass = frames > 0 && glitch_percent < absl::GetFlag(FLAGS_max_glitch_percent) &&
                    all_done && failed_streams == 0;

  const ThreadGroupCpu gateway_total = Total(gateway_cpu);
  const ThreadGroupCpu bench_total = Total(bench_cpu);
  const int cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  const double machine_busy = std::max(0.0, cores * window - idle);
  std::printf(
      "call_audio calls=%d seconds=%.1f warmup=%d channels=%d: %s (glitches %.4f%% of %llu "
      "frames; bound %.2f%%)\n",
      calls, window, warmup, channels, pass ? "PASS" : "FAIL", glitch_percent,
      static_cast<unsigned long long>(frames), absl::GetFlag(FLAGS_max_glitch_percent));
  std::printf("  listen (far end's RTP sendto -> LISTEN frame at the client): %llu frames, %s\n",
              static_cast<unsigned long long>(listen.frames), listen.Latency().c_str());
  std::printf(
      "    lost %llu, late %llu (> %d ms after the stream's median); silence frames %llu, "
      "sequence gaps %llu; %s\n",
      static_cast<unsigned long long>(listen.lost), static_cast<unsigned long long>(listen.late),
      late_us / 1000, static_cast<unsigned long long>(listen_silences),
      static_cast<unsigned long long>(sequence_gaps), listen.Drift().c_str());
  std::printf("  speak (client's StartWrite -> RTP at the far end's socket): %llu frames, %s\n",
              static_cast<unsigned long long>(speak.frames), speak.Latency().c_str());
  std::printf(
      "    lost %llu, underruns on the wire %llu, client skipped %llu (max write backlog %u "
      "frames); more than %d ms behind the stream's median %llu; %s\n",
      static_cast<unsigned long long>(speak.lost), static_cast<unsigned long long>(speak_underruns),
      static_cast<unsigned long long>(client_skipped), max_backlog, late_us / 1000,
      static_cast<unsigned long long>(speak.late), speak.Drift().c_str());
  std::vector<int32_t> glitch_at_us = listen.glitch_at_us;
  glitch_at_us.insert(glitch_at_us.end(), speak.glitch_at_us.begin(), speak.glitch_at_us.end());
  std::printf("  glitches by second of the window (second: count): %s\n",
              GlitchSeconds(glitch_at_us, seconds).c_str());
  std::printf(
      "  gateway's stopped (whole streams): frames_sent %llu, frames_dropped %llu, "
      "frames_spoken %llu, underruns %llu; streams done %d/%d, failed %d\n",
      static_cast<unsigned long long>(frames_sent), static_cast<unsigned long long>(dropped),
      static_cast<unsigned long long>(frames_spoken), static_cast<unsigned long long>(underruns),
      done.count(), calls, failed_streams);
  std::printf(
      "  gateway's /metrics over the window: media ticks skipped %.0f, heard frames dropped %.0f "
      "(the gateway adds the streams' drops and underruns every 50 frames), underruns %.0f\n",
      counters_after.frames_skipped - counters_before.frames_skipped,
      counters_after.frames_dropped - counters_before.frames_dropped,
      counters_after.underruns - counters_before.underruns);
  std::printf(
      "  cpu over the window (%% of one core; %d cores): machine busy %.1f%% = gateway %.1f%% + "
      "bench %.1f%% + the rest %.1f%%; load average before %.2f\n",
      cores, 100 * machine_busy / window, 100 * gateway_total.cpu_seconds / window,
      100 * bench_total.cpu_seconds / window,
      100 * std::max(0.0, machine_busy - gateway_total.cpu_seconds - bench_total.cpu_seconds) /
          window,
      load[0]);
  std::printf("  other processes (sampled every second): %s\n",
              FormatProcessCpu(others.seconds_by_name(), window).c_str());
  std::printf("  gateway threads (%%cpu, threads, waited for a cpu): %s\n",
              FormatThreadCpu(gateway_cpu, window).c_str());
  std::printf("  bench threads: %s\n", FormatThreadCpu(bench_cpu, window).c_str());
  std::printf(
      "  far end: sent %llu, received %llu, send errors %llu, not rtp %llu, late "
      "milliseconds %llu (max %.1f ms); pacer late milliseconds %llu (max %.1f ms); "
      "set-up %.1f s\n",
      static_cast<unsigned long long>(far_counters.sent),
      static_cast<unsigned long long>(far_counters.received),
      static_cast<unsigned long long>(far_counters.send_errors),
      static_cast<unsigned long long>(far_counters.not_rtp),
      static_cast<unsigned long long>(far_counters.late_slots), far_counters.max_lateness_ns / 1e6,
      static_cast<unsigned long long>(pacer.late_slots()), pacer.max_lateness_ns() / 1e6,
      setup_seconds);
  std::fflush(stdout);
  if (!all_done) {
    std::fprintf(stderr, "only %d of %d streams ended after the hang-ups\n", done.count(), calls);
    // The reactors may still be called: leave them (and the process) to exit.
    std::fflush(stderr);
    std::_Exit(pass ? 0 : 1);
  }
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace telestra::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As the gateway does (gateway/main.cc): the detector's bookkeeping on
  // every lock would be CPU taken from the gateway on a shared machine.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return telestra::bench::Run();
}
