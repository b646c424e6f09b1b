#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace telestra::gateway {

// The outbound queue of one connection: encoded frames in the order they
// were added, bounded in bytes, written by one writer at a time.
//
// Whoever adds a frame to an idle outbox becomes its writer (Add returns
// kWrite) and writes until Gather finds nothing left; frames added
// meanwhile by other threads are written by that writer, in order. So the
// common case (the client reads) costs one non-blocking send on the thread
// that produced the frame, and a client whose socket is full is waited for
// by whoever the caller hands the writer role to (the session's strand), not
// by the producer.
//
// Frames are shared, not copied: a broadcast's encoding (EventEncodings)
// sits in the outbox of every client of its format.
//
// Thread: any. Lock order: mu_ is a leaf (no socket call with it held).
class Outbox {
 public:
  using Frame = std::shared_ptr<const std::string>;

  explicit Outbox(size_t max_queued_bytes) : max_queued_bytes_(max_queued_bytes) {}

  enum class Added {
    kQueued,    // a writer is active: it will write the frame
    kWrite,     // the caller is the writer now: Gather, send, Consume
    kOverflow,  // over the bound: the outbox is closed, frames lost (see Add)
    kClosed,    // closed before: the frame is dropped
  };
  // Adds `frame`. On kOverflow, `*lost` is the number of frames lost with
  // it (those still queued and this one).
  Added Add(Frame frame, uint64_t* lost = nullptr);

  // The writer: up to `max` buffers of unsent bytes, oldest first. 0 when
  // nothing is left (or the outbox is closed): the writer role then ends,
  // and `*drained_for_close` says whether CloseWhenDrained was asked for.
  size_t Gather(iovec* iov, size_t max, bool* drained_for_close);
  // The writer: `bytes` of what Gather returned have been written.
  void Consume(size_t bytes);

  // True when nothing is queued and no writer is active (then the caller
  // closes at once); otherwise the writer reports drained_for_close when
  // the queue is empty.
  bool CloseWhenDrained();

  // No more frames: later Adds return kClosed. Returns the frames that
  // were still unsent.
  uint64_t Close();

  size_t queued_bytes() const;

 private:
  const size_t max_queued_bytes_;
  mutable absl::Mutex mu_;  // Lock order: leaf.
  std::deque<Frame> frames_ ABSL_GUARDED_BY(mu_);
  size_t offset_ ABSL_GUARDED_BY(mu_) = 0;  // of frames_.front() already written
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // unsent
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool close_when_drained_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace telestra::gateway
