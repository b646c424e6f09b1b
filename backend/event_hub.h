#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "proto/telestra.pb.h"

namespace telestra::backend {

// Identifies one connected API client (a native connection, a gRPC stream,
// a WebSocket session). 0 is never a valid id.
using ClientId = uint64_t;
using EventPtr = std::shared_ptr<const telestra::v1::Event>;

// Receives the events addressed to one client.
// Thread: OnEvent is called from any thread, with the hub's lock held, in
// strictly increasing seq order. It must only hand the event over (queue or
// post it); it must not block and must not call back into the hub.
class EventListener {
 public:
  virtual ~EventListener() = default;
  virtual void OnEvent(const EventPtr& event) = 0;
};

// Stamps every event with the service-wide seq and a timestamp and delivers
// it: a reply to the one client that caused it, a broadcast to every client.
// Delivery happens under one lock, so every client sees events in seq order.
// Keeps the newest `history_capacity` broadcasts for clients that resume
// (replies are private to their client and are not kept).
//
// Thread: any.
class EventHub {
 public:
  explicit EventHub(size_t history_capacity = 4096);

  // Registers a listener; it gets every broadcast from now on and the
  // replies addressed to the returned id.
  ClientId Attach(EventListener* listener);

  // After Detach returns, the listener is never called again.
  void Detach(ClientId client);

  // Sends `event` to one client. A reply to a client that is gone is counted
  // (undeliverable_replies) and otherwise dropped.
  void Reply(ClientId to, telestra::v1::Event event);

  // Sends `event` to every attached client.
  void Broadcast(telestra::v1::Event event);

  // Broadcasts with seq > after_seq still in the history, oldest first.
  // `complete` is false when events after `after_seq` have already been
  // evicted (the caller must report that gap).
  struct Replay {
    std::vector<EventPtr> events;
    bool complete = true;
  };
  Replay EventsAfter(uint64_t after_seq) const;

  uint64_t last_seq() const;
  size_t client_count() const;
  uint64_t undeliverable_replies() const;

 private:
  EventPtr Stamp(telestra::v1::Event event, bool keep_in_history)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t history_capacity_;
  mutable absl::Mutex mu_;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  ClientId next_client_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<ClientId, EventListener*> listeners_ ABSL_GUARDED_BY(mu_);
  std::deque<EventPtr> history_ ABSL_GUARDED_BY(mu_);  // broadcasts only
  uint64_t evicted_up_to_ ABSL_GUARDED_BY(mu_) = 0;  // newest evicted seq
  uint64_t undeliverable_replies_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace telestra::backend
