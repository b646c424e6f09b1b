#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "backend/media/audio_format.h"

namespace telestra::backend {

// One application's audio stream on one call (docs/audio.md, "Call audio
// streams"): the meeting point of the media thread, which hands it a heard
// frame and takes a spoken frame on every 20 ms tick, and a front end (a gRPC
// CallAudio stream, a /ws/audio session), which takes the heard frames and
// queues what it wants said. Everything in here is 8 kHz, 16-bit, mono,
// 20 ms frames (audio_format.h); rate conversion is the front end's.
//
// Bounds, and what happens at them:
//  - heard frames: kHeardCapacity (1 s) queued; beyond it the oldest is
//    dropped and counted (frames_dropped): a slow application never stalls
//    the media thread, and the frame sequence numbers show the gap.
//  - spoken frames: kSpokenCapacity (5 s) queued; Speak() takes what fits
//    and the application keeps the rest (it stops reading its client until
//    the wakeup says there is room again: back-pressure, nothing lost).
//  - notices (marks, DTMF): kNoticeCapacity; beyond it the oldest is dropped
//    and counted (notices_dropped).
//
// Wakeups: the application sets a function that is called (on the media
// thread, or whichever thread adds a DTMF notice or stops the tap, never
// with a lock of the engine or the backend held) when something it waits
// for has arrived: a heard frame or notice after Take* found none, room
// for spoken audio after Speak() could not take everything, the attachment,
// the stop. After Detach() returns the function is not running and never
// runs again.
//
// Thread: any. One small mutex (a leaf) guards the queues; the wakeup runs
// under a second one (wake_mu_, taken only by RunWakeup and Detach).
class CallAudioTap {
 public:
  enum class Direction { kListen, kSpeak, kBoth };
  enum class State { kPending, kAttached, kStopped };

  static constexpr size_t kHeardCapacity = 50;    // frames: 1 s
  static constexpr size_t kSpokenCapacity = 250;  // frames: 5 s
  static constexpr size_t kNoticeCapacity = 256;
  static constexpr size_t kMaxPendingMarks = 256;  // marks waiting for their audio
  // Silent ticks after which a speaking stream counts as having paused
  // (its lateness is forgiven: the next frame starts a new talkspurt).
  static constexpr int kPauseTicks = 5;
  // More frames than this waiting: the client sends ahead, nothing is owed.
  static constexpr size_t kCatchUpQueued = 3;

  using Frame = std::array<int16_t, kFrameSamples>;
  struct Heard {
    uint32_t sequence = 0;  // frame counter from 0; a gap = dropped frames
    Frame pcm{};
  };
  struct Notice {
    enum class Kind { kMark, kDtmf };
    Kind kind = Kind::kMark;
    std::string mark;  // kMark
    char digit = 0;    // kDtmf
    int duration_ms = 0;
  };
  struct Counters {
    uint64_t frames_heard = 0;    // handed to the tap by the media thread
    uint64_t frames_dropped = 0;  // heard frames dropped (the application was slow)
    uint64_t frames_spoken = 0;   // spoken frames taken by the media thread
    uint64_t underruns = 0;       // ticks with nothing to say (speaking directions)
    uint64_t frames_skipped = 0;  // spoken frames skipped to catch up after a late one
    uint64_t notices_dropped = 0;
  };

  explicit CallAudioTap(Direction direction);
  CallAudioTap(const CallAudioTap&) = delete;
  CallAudioTap& operator=(const CallAudioTap&) = delete;

  Direction direction() const { return direction_; }
  bool listens() const { return direction_ != Direction::kSpeak; }
  bool speaks() const { return direction_ != Direction::kListen; }

  // ---- The application's side.

  // Set before the tap is handed to the backend.
  void SetWakeup(std::function<void()> wakeup);
  // Stops the tap (if not stopped yet, with `reason`) and drops the wakeup:
  // when it returns, the wakeup is not running and never runs again. Never
  // call it from inside the wakeup.
  void Detach(const std::string& reason);

  State state() const;
  // The codec the call uses (PCMU, PCMA), "" before one was negotiated;
  // meaningful from kAttached on.
  std::string codec() const;
  // Why the tap stopped ("Call ended", ...); "" while it runs.
  std::string stop_reason() const;

  // The oldest heard frame; false when none is queued (the wakeup will
  // say when one is).
  bool TakeHeard(Heard* out);
  // The oldest notice; false when none (the wakeup will say when one is).
  bool TakeNotice(Notice* out);

  // Queues whole frames of `samples` (a multiple of kFrameSamples) as far
  // as they fit; returns how many samples were taken. Less than all: the
  // wakeup says when there is room again. Nothing is taken once stopped.
  size_t Speak(absl::Span<const int16_t> samples);
  // A mark after the audio queued so far: it comes back as a notice once
  // that audio has been sent (or cleared). With nothing queued it is due at
  // once: look at TakeNotice after Mark (and after Clear). False (and no
  // mark) when kMaxPendingMarks are already waiting.
  bool Mark(std::string name);
  // Drops the queued spoken audio (barge-in); the marks waiting for it come
  // back at once (as notices, in order).
  void Clear();
  size_t spoken_queued() const;

  Counters counters() const;

  // ---- The media side: the engine's lock is held, not this tap's; none of
  // these runs the wakeup: they return true when it is due, and the caller
  // runs RunWakeup() once it has released its own locks.

  bool OnAttached(const std::string& codec);
  bool OnHeard(const int16_t* frame);
  // Writes the next spoken frame to `frame`; false (an underrun, counted)
  // when none is queued: `frame` is untouched then. `wake` is set when the
  // application waits for room and there is some now, or a mark came due.
  // Late frames: a tick that finds nothing while the stream is talking (a
  // frame arrived late) would delay every later frame by a tick for good;
  // instead such a tick is remembered, and the next time two (up to
  // kCatchUpQueued) frames wait, the older is skipped (frames_skipped) to
  // catch up. A pause of kPauseTicks, or more than kCatchUpQueued frames
  // waiting (the client sends ahead: a prompt, back-pressure), forgives what
  // was owed: audio sent ahead is never skipped.
  bool TakeSpoken(int16_t* frame, bool* wake);
  // A DTMF digit the far end sent (any method).
  bool OnDtmf(char digit, int duration_ms);
  // Stops the tap (first reason wins).
  bool OnStopped(const std::string& reason);
  bool stopped() const;

  // Runs the wakeup (if set). Call with no lock held.
  void RunWakeup();

 private:
  // Adds a notice (oldest dropped at the bound). Returns true.
  bool PushNoticeLocked(Notice notice) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the marks whose audio has all been played to the notices.
  bool ReleaseMarksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True (and disarmed) when the application waits for something.
  bool WakeHeardLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Direction direction_;

  // Lock order: a leaf (nothing is called with it held).
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kPending;
  std::string codec_ ABSL_GUARDED_BY(mu_);
  std::string stop_reason_ ABSL_GUARDED_BY(mu_);
  // Heard frames: a ring of kHeardCapacity.
  std::vector<Heard> heard_ ABSL_GUARDED_BY(mu_);
  size_t heard_head_ ABSL_GUARDED_BY(mu_) = 0;
  size_t heard_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // Spoken frames: a ring of kSpokenCapacity (speaking directions only).
  std::vector<Frame> spoken_ ABSL_GUARDED_BY(mu_);
  size_t spoken_head_ ABSL_GUARDED_BY(mu_) = 0;
  size_t spoken_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t frames_queued_total_ ABSL_GUARDED_BY(mu_) = 0;  // ever queued (or cleared)
  uint64_t frames_played_total_ ABSL_GUARDED_BY(mu_) = 0;  // taken by the media thread (or cleared)
  // Late-frame catch-up (TakeSpoken).
  int late_ticks_ ABSL_GUARDED_BY(mu_) = 0;    // ticks owed
  int silent_ticks_ ABSL_GUARDED_BY(mu_) = kPauseTicks;  // consecutive underruns (capped)
  struct PendingMark {
    uint64_t after_frames = 0;  // reported once frames_played_total_ reaches it
    std::string name;
  };
  std::vector<PendingMark> marks_ ABSL_GUARDED_BY(mu_);  // in order
  std::vector<Notice> notices_ ABSL_GUARDED_BY(mu_);     // oldest first
  size_t notices_taken_ ABSL_GUARDED_BY(mu_) = 0;        // of notices_, already taken
  // The application found nothing to take / could not queue everything.
  bool wants_data_ ABSL_GUARDED_BY(mu_) = true;
  bool wants_room_ ABSL_GUARDED_BY(mu_) = false;
  Counters counters_ ABSL_GUARDED_BY(mu_);

  // Lock order: taken before mu_ never; RunWakeup holds it while the wakeup
  // runs (which may take the application's own locks), Detach to clear it.
  absl::Mutex wake_mu_;
  std::function<void()> wakeup_ ABSL_GUARDED_BY(wake_mu_);
};

}  // namespace telestra::backend
