#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "backend/media/audio_format.h"

namespace telestra::backend {

// A fixed-depth receive jitter buffer for decoded 8 kHz audio, indexed by
// RTP timestamp (so any packet size works, and telephone-event packets that
// use up sequence numbers leave no trace).
//
// Put() stores a packet's samples at its timestamp; Get() is called once per
// 20 ms tick by the playout (recording) clock and returns the next frame,
// with silence where nothing arrived. Playout starts `depth` after the first
// packet of a stream, so up to `depth` of network jitter is absorbed.
//  - late packets (behind the playout point) are dropped and counted;
//  - when nothing is buffered at a tick (underrun) playout pauses and starts
//    again `depth` after the next packet;
//  - the buffered delay is bounded by `capacity` (2 x depth + 80 ms): a
//    packet beyond it moves the playout point forward (overflow, counted),
//    which also absorbs a sender whose clock runs fast;
//  - a timestamp jump of more than a second either way restarts the buffer.
// It never allocates after construction.
//
// Why not speexdsp's jitter buffer: it adapts its delay on its own (the
// configured depth would only be a margin), copies each packet into a
// malloc'd buffer unless ownership is handed over by callback, and keeps a
// fixed 200-packet table per instance; this one is a few dozen lines, does
// exactly the configured depth and is allocation-free.
//
// Thread: owned by one call; the engine's lock serialises access.
class JitterBuffer {
 public:
  // `depth_ms` is clamped to 20..1000 and rounded up to whole frames.
  explicit JitterBuffer(int depth_ms);

  // kTooLarge: a packet longer than the capacity (dropped).
  enum class PutResult { kStored, kLate, kTooLarge };
  PutResult Put(uint32_t timestamp, absl::Span<const int16_t> samples);

  // Writes kFrameSamples samples to `frame`; true if any of them came from a
  // packet (false: all silence).
  bool Get(int16_t* frame);

  // Forgets everything (a new source).
  void Reset();

  int depth_samples() const { return depth_samples_; }
  int capacity_samples() const { return capacity_; }

  struct Counters {
    uint64_t packets_stored = 0;
    uint64_t packets_late = 0;
    uint64_t overflows = 0;
    uint64_t underruns = 0;
    uint64_t resyncs = 0;           // timestamp jumps
    uint64_t frames_played = 0;     // frames with at least one received sample
    uint64_t frames_concealed = 0;  // of those, frames with missing samples
  };
  const Counters& counters() const { return counters_; }

 private:
  enum class State { kWaiting, kPrefill, kPlaying };

  void Discard(uint32_t samples);
  void Start(uint32_t timestamp);
  void Clear(int start, int length);
  template <typename Segment>
  void ForEachSegment(int start, int length, Segment segment) const;

  const int depth_frames_;
  const int depth_samples_;
  const int capacity_;
  std::vector<int16_t> samples_;  // ring, capacity_ samples (from the first packet on)
  std::vector<uint8_t> present_;  // 1 where a sample was received
  State state_ = State::kWaiting;
  bool have_cursor_ = false;
  uint32_t cursor_ = 0;  // RTP timestamp of the next sample to play
  int head_ = 0;         // ring index of cursor_
  uint32_t end_ = 0;     // end of the newest buffered sample (valid unless kWaiting)
  int prefill_left_ = 0;
  Counters counters_;
};

}  // namespace telestra::backend
