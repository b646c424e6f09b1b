#include "gateway/grpc/stream_registry.h"

#include <vector>

namespace telestra::gateway {

StreamRegistry::Admission StreamRegistry::Add(ClosableStream* stream) {
  absl::MutexLock lock(&mu_);
  if (closed_) return Admission::kClosed;
  if (streams_.size() >= max_streams_) {
    ++refused_;
    return Admission::kFull;
  }
  streams_.insert(stream);
  ++opened_;
  return Admission::kAdmitted;
}

void StreamRegistry::Remove(ClosableStream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

void StreamRegistry::CloseAll(const grpc::Status& status) {
  // Close() under mu_: a stream removes itself (in OnDone) only after this
  // returns, so every pointer stays valid while it is used.
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (ClosableStream* stream : streams_) stream->Close(status);
}

bool StreamRegistry::WaitUntilEmpty(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&empty), timeout);
}

GrpcStats StreamRegistry::stats() const {
  GrpcStats stats;
  {
    absl::MutexLock lock(&mu_);
    stats.streams = streams_.size();
    stats.streams_opened = opened_;
    stats.streams_refused = refused_;
  }
  stats.slow_stream_drops = slow_stream_drops_;
  stats.undelivered_events = undelivered_events_;
  stats.unauthenticated = unauthenticated_;
  stats.gaps_reported = gaps_reported_;
  return stats;
}

}  // namespace telestra::gateway
