#include "gateway/session/outbox.h"

#include <utility>

namespace telestra::gateway {

Outbox::Added Outbox::Add(Frame frame, uint64_t* lost) {
  absl::MutexLock lock(&mu_);
  if (closed_) return Added::kClosed;
  // As the native port always had it: a client is dropped once more than
  // the bound is queued (so one large frame never is refused alone).
  if (queued_bytes_ > max_queued_bytes_) {
    if (lost != nullptr) *lost = frames_.size() + 1;
    closed_ = true;
    frames_.clear();
    queued_bytes_ = 0;
    offset_ = 0;
    return Added::kOverflow;
  }
  queued_bytes_ += frame->size();
  frames_.push_back(std::move(frame));
  if (writing_) return Added::kQueued;
  writing_ = true;
  return Added::kWrite;
}

size_t Outbox::Gather(iovec* iov, size_t max, bool* drained_for_close) {
  absl::MutexLock lock(&mu_);
  *drained_for_close = false;
  if (closed_ || frames_.empty()) {
    writing_ = false;
    *drained_for_close = close_when_drained_ && !closed_;
    return 0;
  }
  // push_back on a deque keeps references to its elements valid, and only
  // the writer removes frames: the buffers stay valid after the unlock.
  size_t n = 0;
  for (const Frame& frame : frames_) {
    if (n == max) break;
    const size_t skip = n == 0 ? offset_ : 0;
    iov[n].iov_base = const_cast<char*>(frame->data() + skip);
    iov[n].iov_len = frame->size() - skip;
    ++n;
  }
  return n;
}

void Outbox::Consume(size_t bytes) {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  queued_bytes_ -= bytes;
  while (bytes > 0 && !frames_.empty()) {
    const size_t left = frames_.front()->size() - offset_;
    if (bytes < left) {
      offset_ += bytes;
      return;
    }
    bytes -= left;
    offset_ = 0;
    frames_.pop_front();
  }
}

bool Outbox::CloseWhenDrained() {
  absl::MutexLock lock(&mu_);
  close_when_drained_ = true;
  return !writing_ && frames_.empty();
}

uint64_t Outbox::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  const uint64_t unsent = frames_.size();
  frames_.clear();
  queued_bytes_ = 0;
  offset_ = 0;
  return unsent;
}

size_t Outbox::queued_bytes() const {
  absl::MutexLock lock(&mu_);
  return queued_bytes_;
}

}  // namespace telestra::gateway
