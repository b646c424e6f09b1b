#pragma once

#include <atomic>
#include <cstdint>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"

namespace telestra::gateway {

// A streaming RPC the server can end from outside (at shutdown).
class ClosableStream {
 public:
  virtual ~ClosableStream() = default;
  // Sends what is already queued, then finishes the RPC with `status`.
  // Thread: any; must not be called with the hub's lock held.
  virtual void Close(const grpc::Status& status) = 0;
};

// Counters of the gRPC front end (all since start).
struct GrpcStats {
  uint64_t streams = 0;  // Subscribe + Session streams open now
  uint64_t streams_opened = 0;
  uint64_t streams_refused = 0;     // over max-streams: RESOURCE_EXHAUSTED
  uint64_t slow_stream_drops = 0;   // streams ended RESOURCE_EXHAUSTED
  uint64_t undelivered_events = 0;  // events lost with those streams
  uint64_t unauthenticated = 0;     // calls refused for a missing/wrong token
  uint64_t gaps_reported = 0;       // resumes that could not replay everything
};

// The open streams, so that shutdown can end them, plus the counters. It
// also bounds them: at most `max_streams` at once for the whole server
// ([grpc-settings] max-streams). HTTP/2's own limit on concurrent streams
// is per connection and only makes clients queue; this one is counted here
// so that the stream beyond it ends at once with RESOURCE_EXHAUSTED.
// Thread: any.
class StreamRegistry {
 public:
  explicit StreamRegistry(size_t max_streams = 1024) : max_streams_(max_streams) {}

  enum class Admission {
    kAdmitted,
    kFull,    // max_streams are open (counted in streams_refused)
    kClosed,  // CloseAll has run: the stream must finish at once
  };
  Admission Add(ClosableStream* stream);
  size_t max_streams() const { return max_streams_; }
  void Remove(ClosableStream* stream);

  // Closes every stream (and every stream added later) with `status`.
  void CloseAll(const grpc::Status& status);
  // Waits until every stream is removed; false on timeout.
  bool WaitUntilEmpty(absl::Duration timeout);

  void CountSlowDrop(uint64_t undelivered) {
    slow_stream_drops_++;
    undelivered_events_ += undelivered;
  }
  void CountUnauthenticated() { unauthenticated_++; }
  void CountGap() { gaps_reported_++; }
  GrpcStats stats() const;

 private:
  const size_t max_streams_;
  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<ClosableStream*> streams_ ABSL_GUARDED_BY(mu_);
  uint64_t opened_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> slow_stream_drops_{0};
  std::atomic<uint64_t> undelivered_events_{0};
  std::atomic<uint64_t> unauthenticated_{0};
  std::atomic<uint64_t> gaps_reported_{0};
};

}  // namespace telestra::gateway
