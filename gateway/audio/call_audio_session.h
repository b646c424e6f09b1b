#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/backend.h"
#include "backend/call_audio_tap.h"
#include "proto/telestra.pb.h"

typedef struct SpeexResamplerState_ SpeexResamplerState;

namespace telestra::gateway {

// Counters of every call audio stream of the gateway, for /metrics.
// Thread: any (atomics).
struct CallAudioStats {
  std::atomic<uint64_t> streams_opened{0};
  std::atomic<uint64_t> streams_refused{0};  // bad start, unknown call, over the limit
  std::atomic<int64_t> streams_active{0};
  std::atomic<uint64_t> frames_sent{0};      // heard frames delivered to clients
  std::atomic<uint64_t> frames_dropped{0};   // heard frames dropped (slow clients)
  std::atomic<uint64_t> frames_spoken{0};    // clients' frames sent to calls
  std::atomic<uint64_t> underruns{0};        // ticks a speaking stream had nothing queued
  std::atomic<uint64_t> frames_skipped{0};   // clients' frames skipped to catch up after a late one
};

// One call audio stream as every front end runs it (gRPC CallAudio and
// /ws/audio translate their wire into CallAudioRequest and back from
// CallAudioResponse; docs/audio.md): checks the start, opens the stream on
// the backend (a CallAudioTap), converts between the client's rate and the
// call's 8 kHz (speexdsp), numbers the heard frames and orders what the
// client gets: started, then frames, marks and DTMF as they come, then one
// stopped when the call ends (or the stream could not be attached).
//
// Input back-pressure: a client may send audio faster than real time (a
// prompt at once); what the call's queue (5 s) cannot take is held here and
// ReadyForInput() is false until it has gone in: the front end stops reading
// its client meanwhile (gRPC and TCP flow control do the rest). Nothing is
// dropped.
//
// Thread: the front end calls everything from one strand or under its own
// lock; the wakeup (set at Open) runs on other threads, without any lock of
// this object, and must only schedule work on that strand.
class CallAudioSession {
 public:
  // Checks `start` (InvalidArgument: rate not 8000/16000, no direction, no
  // account, call_id < 0) and opens the stream (the backend's NotFound /
  // ResourceExhausted). `wakeup` is called when Next() may have something
  // or ReadyForInput() may have become true. `stats` may be null.
  static absl::StatusOr<std::unique_ptr<CallAudioSession>> Open(
      backend::Backend* backend, const telestra::v1::CallAudioStart& start,
      std::function<void()> wakeup, CallAudioStats* stats);

  // Detaches from the call (no wakeup runs once this returns).
  ~CallAudioSession();
  CallAudioSession(const CallAudioSession&) = delete;
  CallAudioSession& operator=(const CallAudioSession&) = delete;

  // A request after the start: audio (InvalidArgument: not a whole number
  // of frames, empty, or the stream does not speak), mark, clear. A second
  // start is InvalidArgument. The stream goes on after an error only if the
  // front end wants it to (both end it: docs/audio.md).
  absl::Status OnRequest(const telestra::v1::CallAudioRequest& request);
  absl::Status OnAudio(absl::string_view pcm);
  // ResourceExhausted when CallAudioTap::kMaxPendingMarks marks already
  // wait for their audio.
  absl::Status OnMark(std::string name);
  void OnClear();

  // False while audio is held back (see above); the wakeup says when to ask
  // again.
  bool ReadyForInput();

  // The next message for the client, if any. After the stopped message it
  // returns false for good and finished() is true.
  bool Next(telestra::v1::CallAudioResponse* out);
  bool finished() const { return finished_; }
  // Whether the stream ever got attached (started was or will be sent):
  // false means the call ended before the stream could start.
  bool started() const { return started_; }

  int sample_rate() const { return rate_; }
  int frame_bytes() const { return frame_samples_ * 2; }
  const telestra::v1::CallAudioStart& start() const { return start_; }

 private:
  CallAudioSession(const telestra::v1::CallAudioStart& start,
                   std::shared_ptr<backend::CallAudioTap> tap, CallAudioStats* stats);
  // Moves what is held back into the tap, as far as it fits.
  void FeedHeldBack();
  void FillStopped(telestra::v1::CallAudioResponse* out);
  // Converts one heard 8 kHz frame to the stream's rate into `pcm`.
  void ConvertHeard(const int16_t* frame, std::string* pcm);

  const telestra::v1::CallAudioStart start_;
  const int rate_;
  const int frame_samples_;  // at rate_
  std::shared_ptr<backend::CallAudioTap> tap_;
  CallAudioStats* const stats_;
  // 16 kHz streams: 8 kHz -> 16 kHz for heard frames, 16 -> 8 for spoken.
  SpeexResamplerState* up_ = nullptr;
  SpeexResamplerState* down_ = nullptr;
  std::vector<int16_t> heard_scratch_;
  std::vector<int16_t> held_back_;  // 8 kHz, whole frames, not yet in the tap
  std::vector<int16_t> spoken_scratch_;
  bool started_ = false;
  bool finished_ = false;
  bool counted_active_ = false;  // in stats_->streams_active
  uint64_t frames_sent_ = 0;
  // What of the tap's counters was already added to stats_.
  backend::CallAudioTap::Counters reported_;
};

}  // namespace telestra::gateway
