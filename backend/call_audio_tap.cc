#include "backend/call_audio_tap.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace telestra::backend {

CallAudioTap::CallAudioTap(Direction direction) : direction_(direction) {
  absl::MutexLock lock(&mu_);
  if (listens()) heard_.resize(kHeardCapacity);
  if (speaks()) spoken_.resize(kSpokenCapacity);
}

void CallAudioTap::SetWakeup(std::function<void()> wakeup) {
  absl::MutexLock lock(&wake_mu_);
  wakeup_ = std::move(wakeup);
}

void CallAudioTap::Detach(const std::string& reason) {
  OnStopped(reason);
  absl::MutexLock lock(&wake_mu_);  // waits for a wakeup that is running
  wakeup_ = nullptr;
}

void CallAudioTap::RunWakeup() {
  absl::MutexLock lock(&wake_mu_);
  if (wakeup_) wakeup_();
}

CallAudioTap::State CallAudioTap::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

std::string CallAudioTap::codec() const {
  absl::MutexLock lock(&mu_);
  return codec_;
}

std::string CallAudioTap::stop_reason() const {
  absl::MutexLock lock(&mu_);
  return stop_reason_;
}

bool CallAudioTap::stopped() const {
  absl::MutexLock lock(&mu_);
  return state_ == State::kStopped;
}

bool CallAudioTap::TakeHeard(Heard* out) {
  absl::MutexLock lock(&mu_);
  if (heard_count_ == 0) {
    wants_data_ = true;
    return false;
  }
  *out = heard_[heard_head_];
  heard_head_ = (heard_head_ + 1) % heard_.size();
  --heard_count_;
  return true;
}

bool CallAudioTap::TakeNotice(Notice* out) {
  absl::MutexLock lock(&mu_);
  if (notices_taken_ == notices_.size()) {
    notices_.clear();
    notices_taken_ = 0;
    wants_data_ = true;
    return false;
  }
  *out = std::move(notices_[notices_taken_++]);
  return true;
}

size_t CallAudioTap::Speak(absl::Span<const int16_t> samples) {
  absl::MutexLock lock(&mu_);
  if (!speaks() || state_ == State::kStopped) return 0;
  size_t frames = samples.size() / kFrameSamples;
  size_t room = kSpokenCapacity - spoken_count_;
  size_t taken = std::min(frames, room);
  for (size_t i = 0; i < taken; ++i) {
    size_t slot = (spoken_head_ + spoken_count_) % spoken_.size();
    std::memcpy(spoken_[slot].data(), samples.data() + i * kFrameSamples, sizeof(Frame));
    ++spoken_count_;
  }
  frames_queued_total_ += taken;
  if (taken < frames) wants_room_ = true;
  return taken * kFrameSamples;
}

bool CallAudioTap::Mark(std::string name) {
  absl::MutexLock lock(&mu_);
  if (marks_.size() >= kMaxPendingMarks) return false;
  marks_.push_back(PendingMark{frames_queued_total_, std::move(name)});
  // Nothing queued before it: it is due now (the next tick would add no
  // information); the application sees it on its next TakeNotice.
  ReleaseMarksLocked();
  return true;
}

void CallAudioTap::Clear() {
  absl::MutexLock lock(&mu_);
  spoken_head_ = 0;
  spoken_count_ = 0;
  frames_played_total_ = frames_queued_total_;
  late_ticks_ = 0;  // what comes next starts afresh
  silent_ticks_ = kPauseTicks;
  ReleaseMarksLocked();
}

size_t CallAudioTap::spoken_queued() const {
  absl::MutexLock lock(&mu_);
  return spoken_count_;
}

CallAudioTap::Counters CallAudioTap::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

bool CallAudioTap::WakeHeardLocked() {
  if (!wants_data_) return false;
  wants_data_ = false;
  return true;
}

bool CallAudioTap::PushNoticeLocked(Notice notice) {
  if (notices_.size() - notices_taken_ >= kNoticeCapacity) {
    ++notices_taken_;  // the oldest untaken one is lost
    ++counters_.notices_dropped;
  }
  if (notices_taken_ > 0 && notices_taken_ * 2 >= notices_.size()) {
    notices_.erase(notices_.begin(), notices_.begin() + static_cast<ptrdiff_t>(notices_taken_));
    notices_taken_ = 0;
  }
  notices_.push_back(std::move(notice));
  return true;
}

bool CallAudioTap::ReleaseMarksLocked() {
  bool wake = false;
  size_t released = 0;
  while (released < marks_.size() && marks_[released].after_frames <= frames_played_total_) {
    Notice notice;
    notice.kind = Notice::Kind::kMark;
    notice.mark = std::move(marks_[released].name);
    wake |= PushNoticeLocked(std::move(notice));
    ++released;
  }
  if (released > 0) marks_.erase(marks_.begin(), marks_.begin() + static_cast<ptrdiff_t>(released));
  return wake;  // a notice was added
}

bool CallAudioTap::OnAttached(const std::string& codec) {
  absl::MutexLock lock(&mu_);
  if (state_ != State::kPending) return false;
  state_ = State::kAttached;
  codec_ = codec;
  wants_data_ = false;
  return true;
}

bool CallAudioTap::OnHeard(const int16_t* frame) {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kStopped || !listens()) return false;
  ++counters_.frames_heard;
  if (heard_count_ == heard_.size()) {  // the oldest is lost
    heard_head_ = (heard_head_ + 1) % heard_.size();
    --heard_count_;
    ++counters_.frames_dropped;
  }
  Heard& slot = heard_[(heard_head_ + heard_count_) % heard_.size()];
  slot.sequence = next_sequence_++;
  std::memcpy(slot.pcm.data(), frame, sizeof(Frame));
  ++heard_count_;
  return WakeHeardLocked();
}

bool CallAudioTap::TakeSpoken(int16_t* frame, bool* wake) {
  absl::MutexLock lock(&mu_);
  *wake = false;
  if (state_ == State::kStopped || !speaks()) return false;
  if (spoken_count_ == 0) {
    ++counters_.underruns;
    if (silent_ticks_ == 0) ++late_ticks_;  // the stream was talking: a late frame
    if (silent_ticks_ < kPauseTicks) ++silent_ticks_;
    if (silent_ticks_ >= kPauseTicks) late_ticks_ = 0;  // a pause: forgiven
    return false;
  }
  silent_ticks_ = 0;
  // A deep queue: the client is ahead (a prompt, back-pressure), not late.
  if (spoken_count_ > kCatchUpQueued) late_ticks_ = 0;
  if (late_ticks_ > 0 && spoken_count_ >= 2) {  // catch up: skip the older frame
    --late_ticks_;
    spoken_head_ = (spoken_head_ + 1) % spoken_.size();
    --spoken_count_;
    ++frames_played_total_;
    ++counters_.frames_skipped;
  }
  std::memcpy(frame, spoken_[spoken_head_].data(), sizeof(Frame));
  spoken_head_ = (spoken_head_ + 1) % spoken_.size();
  --spoken_count_;
  ++frames_played_total_;
  ++counters_.frames_spoken;
  if (!marks_.empty() && ReleaseMarksLocked()) *wake |= WakeHeardLocked();
  if (wants_room_ && spoken_count_ <= kSpokenCapacity / 2) {
    wants_room_ = false;
    *wake = true;
  }
  return true;
}

bool CallAudioTap::OnDtmf(char digit, int duration_ms) {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kStopped || !listens()) return false;
  Notice notice;
  notice.kind = Notice::Kind::kDtmf;
  notice.digit = digit;
  notice.duration_ms = duration_ms;
  PushNoticeLocked(std::move(notice));
  return WakeHeardLocked();
}

bool CallAudioTap::OnStopped(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kStopped) return false;
  state_ = State::kStopped;
  stop_reason_ = reason;
  spoken_count_ = 0;
  wants_room_ = false;
  wants_data_ = false;
  return true;  // the application always hears of the stop
}

}  // namespace telestra::backend
