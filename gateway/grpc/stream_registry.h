#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/metrics/metrics.h"
#include "gateway/session/session_registry.h"
#include "grpcpp/support/status.h"

namespace telestra::gateway {

// A streaming RPC the server can end from outside (at shutdown).
class ClosableStream : public SessionRegistry::Session {
 public:
  // Sends what is already queued, then finishes the RPC with `status`.
  // Thread: any; must not be called with the hub's lock held.
  virtual void Close(const grpc::Status& status) = 0;
  // SessionRegistry::Session (shutdown): UNAVAILABLE once the queue is
  // written. gRPC itself bounds the flush (GrpcServer's shutdown grace).
  void CloseAfterFlush(absl::Time /*deadline*/) override {
    Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "Gateway shutting down"));
  }
};

// Counters of the gRPC front end (all since start).
struct GrpcStats {
  uint64_t streams = 0;  // Subscribe + Session + CallAudio streams open now
  uint64_t streams_opened = 0;
  uint64_t streams_refused = 0;     // over max-streams: RESOURCE_EXHAUSTED
  uint64_t slow_stream_drops = 0;   // streams ended RESOURCE_EXHAUSTED
  uint64_t undelivered_events = 0;  // events lost with those streams
  uint64_t unauthenticated = 0;     // calls refused for a missing/wrong token
  uint64_t gaps_reported = 0;       // resumes that could not replay everything
};

// The open streams, on the front ends' shared SessionRegistry (admission,
// close-all, the shared counters), plus the counters only gRPC has. At most
// `max_streams` at once for the whole server ([grpc-settings]
// max-streams). HTTP/2's own limit on concurrent streams is per connection
// and only makes clients queue; this one is counted here so that the
// stream beyond it ends at once with RESOURCE_EXHAUSTED.
// Thread: any.
class StreamRegistry {
 public:
  explicit StreamRegistry(size_t max_streams = 1024) : sessions_("grpc", max_streams) {}

  using Admission = SessionRegistry::Admission;
  Admission Add(ClosableStream* stream) { return sessions_.Add(stream); }
  // Add() as every stream RPC does it: OK when `stream` (of RPC `rpc`, from
  // `peer`) is admitted (it calls Remove() before it is destroyed), else
  // the status to finish it with at once: RESOURCE_EXHAUSTED "Too many
  // streams (max-streams is N)" (logged at the 1st, 2nd, 4th ... refusal)
  // or UNAVAILABLE "Gateway shutting down".
  grpc::Status Admit(ClosableStream* stream, const char* rpc, const std::string& peer);
  size_t max_streams() const { return sessions_.max_sessions(); }
  void Remove(ClosableStream* stream) { sessions_.Remove(stream); }

  // Closes every stream (and every stream added later) with UNAVAILABLE.
  void CloseAll() { sessions_.CloseAll(absl::InfiniteFuture()); }
  // Waits until every stream is removed; false on timeout.
  bool WaitUntilEmpty(absl::Duration timeout) {
    return sessions_.AwaitEmpty(absl::Now() + timeout);
  }

  void CountSlowDrop(uint64_t undelivered) { sessions_.CountSlowDisconnect(undelivered); }
  void CountUnauthenticated() { unauthenticated_++; }
  void CountGap() { gaps_reported_++; }
  GrpcStats stats() const;
  // The shared families (front_end="grpc") and the telestra_grpc_* ones.
  void ExportMetrics(MetricsWriter& out) const;

 private:
  SessionRegistry sessions_;
  std::atomic<uint64_t> unauthenticated_{0};
  std::atomic<uint64_t> gaps_reported_{0};
};

}  // namespace telestra::gateway
