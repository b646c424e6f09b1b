#include "gateway/session/session_registry.h"

#include <algorithm>

namespace telestra::gateway {

SessionRegistry::Admission SessionRegistry::Add(Session* session) {
  absl::MutexLock lock(&mu_);
  if (closed_) return Admission::kClosed;
  if (sessions_.size() >= max_sessions_) {
    // Clients that have closed but whose end of stream has not been read
    // yet (the thread that reads a connection is not the one that admits
    // the next) do not count: a client that closes and reconnects at once
    // is not refused.
    const size_t gone = static_cast<size_t>(std::count_if(
        sessions_.begin(), sessions_.end(), [](Session* s) { return s->PeerGone(); }));
    if (sessions_.size() - gone >= max_sessions_) {
      ++refused_;
      return Admission::kFull;
    }
  }
  sessions_.insert(session);
  ++admitted_;
  return Admission::kAdmitted;
}

void SessionRegistry::Remove(Session* session) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(session);
}

void SessionRegistry::CloseAll(absl::Time flush_deadline) {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (Session* session : sessions_) session->CloseAfterFlush(flush_deadline);
}

bool SessionRegistry::AwaitEmpty(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return sessions_.empty(); };
  // AwaitWithTimeout, not ...WithDeadline: the TSan build wraps the former.
  return mu_.AwaitWithTimeout(absl::Condition(&empty), deadline - absl::Now());
}

SessionRegistry::Stats SessionRegistry::stats() const {
  Stats stats;
  {
    absl::MutexLock lock(&mu_);
    stats.open = sessions_.size();
    stats.admitted = admitted_;
    stats.refused = refused_;
  }
  stats.slow_disconnects = slow_disconnects_;
  stats.undelivered_events = undelivered_events_;
  return stats;
}

void SessionRegistry::ExportMetrics(MetricsWriter& out) const {
  const Stats s = stats();
  const MetricsWriter::Labels labels = {{"front_end", front_end_}};
  out.Gauge("telestra_sessions", "API sessions open, by front end", s.open, labels);
  out.Counter("telestra_sessions_admitted_total", "API sessions admitted, by front end", s.admitted,
              labels);
  out.Counter("telestra_sessions_refused_total",
              "API sessions refused because the front end's limit was reached", s.refused, labels);
  out.Counter("telestra_slow_disconnects_total",
              "API sessions dropped for not reading their events", s.slow_disconnects, labels);
  out.Counter("telestra_undelivered_events_total",
              "Events lost with the sessions dropped for not reading (or still queued at the "
              "shutdown deadline)",
              s.undelivered_events, labels);
}

}  // namespace telestra::gateway
