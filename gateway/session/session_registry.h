#pragma once

#include <atomic>
#include <cstdint>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/metrics/metrics.h"

namespace telestra::gateway {

// The sessions of one front end (native connections, WebSocket sessions,
// gRPC streams): admission against the front end's limit, the close-all of
// shutdown (each session first writes what is queued for it, until a
// deadline), and the counters every front end shares, exported to /metrics
// with a `front_end` label (docs/metrics.md).
//
// Thread: any. Lock order: mu_ is taken before each session's own locks
// (CloseAfterFlush and PeerGone are called under it, so that a session,
// which removes itself before it is destroyed, stays valid while they
// run); they must not call back into the registry.
class SessionRegistry {
 public:
  // What the registry needs of a session.
  class Session {
   public:
    virtual ~Session() = default;
    // Writes what is queued, then closes (and removes itself), at the latest
    // at `deadline`. Must only hand the work over (post), never block.
    virtual void CloseAfterFlush(absl::Time deadline) = 0;
    // True when the client has already gone (closed its connection) but
    // the session has not noticed yet: a full registry does not count it.
    virtual bool PeerGone() const { return false; }
  };

  enum class Admission {
    kAdmitted,
    kFull,    // max_sessions are open (counted as refused)
    kClosed,  // CloseAll has run: the session must end at once
  };

  struct Stats {
    uint64_t open = 0;  // now
    uint64_t admitted = 0;
    uint64_t refused = 0;             // over max_sessions
    uint64_t slow_disconnects = 0;    // dropped for not reading
    uint64_t undelivered_events = 0;  // lost with them
  };

  SessionRegistry(std::string front_end, size_t max_sessions)
      : front_end_(std::move(front_end)), max_sessions_(max_sessions) {}

  Admission Add(Session* session);
  // Idempotent; a session calls it before it is destroyed.
  void Remove(Session* session);

  // Stops admitting and has every session close once its queued events are
  // written (at the latest at `flush_deadline`). Does not wait: AwaitEmpty.
  void CloseAll(absl::Time flush_deadline);
  // Waits until every session has been removed; false at `deadline`.
  bool AwaitEmpty(absl::Time deadline);

  // A session dropped for not reading, with the events it lost.
  void CountSlowDisconnect(uint64_t undelivered) {
    slow_disconnects_++;
    undelivered_events_ += undelivered;
  }
  // Events a session lost otherwise (still queued at the shutdown deadline).
  void CountUndelivered(uint64_t undelivered) { undelivered_events_ += undelivered; }

  size_t max_sessions() const { return max_sessions_; }
  const std::string& front_end() const { return front_end_; }
  Stats stats() const;

  // The shared families, labelled front_end="<front_end>":
  // telestra_sessions, telestra_sessions_admitted_total,
  // telestra_sessions_refused_total, telestra_slow_disconnects_total,
  // telestra_undelivered_events_total.
  void ExportMetrics(MetricsWriter& out) const;

 private:
  const std::string front_end_;
  const size_t max_sessions_;
  // Lock order: before the sessions' own locks; leaf otherwise (a front
  // end's own locks, such as WebContext::mu_, are never held with it).
  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::set<Session*> sessions_ ABSL_GUARDED_BY(mu_);
  uint64_t admitted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> slow_disconnects_{0};
  std::atomic<uint64_t> undelivered_events_{0};
};

}  // namespace telestra::gateway
