#include "backend/media/jitter_buffer.h"

#include <algorithm>
#include <cstring>

namespace telestra::backend {
namespace {

constexpr int kMinDepthMs = kFrameMs;
constexpr int kMaxDepthMs = 1000;
constexpr int32_t kResyncSamples = kSampleRate;  // a jump of over 1 s restarts

int DepthFrames(int depth_ms) {
  int ms = std::clamp(depth_ms, kMinDepthMs, kMaxDepthMs);
  return (ms + kFrameMs - 1) / kFrameMs;
}

// Signed distance a - b in RTP timestamp arithmetic (mod 2^32).
int32_t Diff(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b); }

}  // namespace

JitterBuffer::JitterBuffer(int depth_ms)
    : depth_frames_(DepthFrames(depth_ms)),
      depth_samples_(depth_frames_ * kFrameSamples),
      capacity_((2 * depth_frames_ + 4) * kFrameSamples) {}

void JitterBuffer::Reset() {
  std::fill(samples_.begin(), samples_.end(), 0);
  std::fill(present_.begin(), present_.end(), 0);
  state_ = State::kWaiting;
  have_cursor_ = false;
  head_ = 0;
}

void JitterBuffer::Start(uint32_t timestamp) {
  // The ring is allocated with the first packet: a call that never receives
  // audio (or is set up on the SIP thread and ended at once) never pays
  // for it.
  if (samples_.empty()) {
    samples_.assign(capacity_, 0);
    present_.assign(capacity_, 0);
  }
  // Only reached in kWaiting, where nothing is buffered: no clearing needed.
  if (!have_cursor_ || Diff(timestamp, cursor_) > 0) cursor_ = timestamp;
  have_cursor_ = true;
  end_ = cursor_;
  state_ = State::kPrefill;
  prefill_left_ = depth_frames_;
}

template <typename Segment>
void JitterBuffer::ForEachSegment(int start, int length, Segment segment) const {
  // A run of `length` (<= capacity) ring slots from `start`: one or two
  // contiguous pieces.
  int first = std::min(length, capacity_ - start);
  segment(start, 0, first);
  if (first < length) segment(0, first, length - first);
}

void JitterBuffer::Clear(int start, int length) {
  ForEachSegment(start, length, [this](int index, int, int count) {
    std::memset(&samples_[index], 0, count * sizeof(int16_t));
    std::memset(&present_[index], 0, count);
  });
}

void JitterBuffer::Discard(uint32_t samples) {
  Clear(head_, static_cast<int>(std::min<uint32_t>(samples, capacity_)));
  head_ = static_cast<int>((head_ + samples) % static_cast<uint32_t>(capacity_));
  cursor_ += samples;
}

JitterBuffer::PutResult JitterBuffer::Put(uint32_t timestamp, absl::Span<const int16_t> samples) {
  int32_t size = static_cast<int32_t>(samples.size());
  if (size > capacity_) return PutResult::kTooLarge;
  if (size == 0) return PutResult::kStored;

  if (have_cursor_) {
    int32_t offset = Diff(timestamp, cursor_);
    if (offset > kResyncSamples || offset + size < -kResyncSamples) {
      ++counters_.resyncs;
      Reset();
    }
  }
  if (state_ == State::kWaiting) {
    if (have_cursor_ && Diff(timestamp + size, cursor_) <= 0) {
      ++counters_.packets_late;
      return PutResult::kLate;
    }
    Start(timestamp);
  }

  int32_t offset = Diff(timestamp, cursor_);
  if (offset + size <= 0) {
    ++counters_.packets_late;
    return PutResult::kLate;
  }
  if (offset + size > capacity_) {
    // Beyond the bound: move the playout point so that this packet ends
    // `depth` ahead of it (or starts at it, if it is longer than that),
    // dropping the oldest buffered audio.
    ++counters_.overflows;
    Discard(static_cast<uint32_t>(offset + size - std::max(depth_samples_, size)));
    offset = Diff(timestamp, cursor_);
  }
  int32_t skip = offset < 0 ? -offset : 0;  // the part already played
  ForEachSegment(
      (head_ + offset + skip) % capacity_, size - skip, [&](int index, int from, int count) {
        std::memcpy(&samples_[index], samples.data() + skip + from, count * sizeof(int16_t));
        std::memset(&present_[index], 1, count);
      });
  uint32_t end = timestamp + static_cast<uint32_t>(size);
  if (Diff(end, end_) > 0) end_ = end;
  ++counters_.packets_stored;
  return PutResult::kStored;
}

bool JitterBuffer::Get(int16_t* frame) {
  if (state_ == State::kPrefill) {
    if (--prefill_left_ <= 0) state_ = State::kPlaying;
  } else if (state_ == State::kPlaying && Diff(end_, cursor_) <= 0) {
    ++counters_.underruns;
    state_ = State::kWaiting;
  } else if (state_ == State::kPlaying) {
    int received = 0;
    ForEachSegment(head_, kFrameSamples, [&](int index, int from, int count) {
      std::memcpy(frame + from, &samples_[index], count * sizeof(int16_t));
      for (int i = 0; i < count; ++i) received += present_[index + i];
    });
    Clear(head_, kFrameSamples);
    head_ = (head_ + kFrameSamples) % capacity_;
    cursor_ += kFrameSamples;
    if (received > 0) {
      ++counters_.frames_played;
      if (received < kFrameSamples) ++counters_.frames_concealed;
    }
    return received > 0;
  }
  std::memset(frame, 0, kFrameSamples * sizeof(int16_t));
  return false;
}

}  // namespace telestra::backend
