#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/telestra.pb.h"

namespace telestra::backend {

// Identifies one connected API client (a native connection, a gRPC stream,
// a WebSocket session). 0 is never a valid id.
using ClientId = uint64_t;
using EventPtr = std::shared_ptr<const telestra::v1::Event>;

// The encodings of one event, one per wire format, each made on first use
// and then shared by every client of that format: a broadcast to 1,000
// native clients is turned into JSON once, not 1,000 times. The hub knows
// no wire format: each front end owns a slot (gateway/session/wire_slots.h).
// Thread: any (each slot is filled exactly once, under absl::call_once).
class EventEncodings {
 public:
  static constexpr size_t kSlots = 4;

  // The bytes of `slot`, made by `encode` if this is the first request.
  const std::string& Get(size_t slot, absl::FunctionRef<std::string()> encode);

 private:
  absl::once_flag once_[kSlots];
  std::string bytes_[kSlots];
};
using EncodingsPtr = std::shared_ptr<EventEncodings>;

// Where the stream of a client that subscribes or resumes starts, decided
// by the hub in one step from its instance, history and newest seq. Shared
// by the three front ends (native subscribe, WebSocket /ws?after_seq=,
// gRPC Subscribe), which only word it differently.
struct ResumePoint {
  enum class Outcome {
    kFresh,          // no after_seq: nothing to replay
    kComplete,       // `events` hold every broadcast in (after_seq, last_seq]
    kEvicted,        // the history no longer holds every broadcast after after_seq
    kOtherInstance,  // the client's instance is not this hub's
    kAhead,          // after_seq is ahead of last_seq (of another numbering)
  };
  Outcome outcome = Outcome::kFresh;
  std::string instance;         // the hub's
  std::string client_instance;  // as asked ("" = not given)
  uint64_t after_seq = 0;       // as asked
  // The newest seq stamped when the point was decided: the events up to it
  // are in `events` or lost; the later ones reach the client live.
  uint64_t last_seq = 0;
  // `events` are the history's broadcasts after this seq, oldest first:
  // after_seq (kComplete; kEvicted: what is left), 0 for kOtherInstance and
  // kAhead (the whole history: after_seq does not count in this numbering),
  // none for kFresh.
  uint64_t replay_after = 0;
  std::vector<EventPtr> events;

  bool gap() const {
    return outcome == Outcome::kEvicted || outcome == Outcome::kOtherInstance ||
           outcome == Outcome::kAhead;
  }
  // A gap, for a front end that sends a snapshot instead of what is left
  // (the native port: "Events lost: <lost_from>..<lost_to>"): the client
  // misses the events lost_from..lost_to, and the snapshot stands for
  // lost_to = last_seq (every later event arrives live). lost_from is
  // after_seq + 1 (kEvicted), or 1 when after_seq does not count in this
  // instance's numbering (kOtherInstance, kAhead); lost_to is then
  // lost_from - 1 (an empty range) only if no event was stamped yet.
  uint64_t lost_from() const { return outcome == Outcome::kEvicted ? after_seq + 1 : 1; }
  uint64_t lost_to() const { return last_seq; }
};

// Receives the events addressed to one client.
// Thread: called on the thread that delivers (see EventHub), never with the
// hub's lock (or any backend lock) held, one event at a time and in strictly
// increasing seq order. It must not block and must not call Attach or Detach.
class EventListener {
 public:
  virtual ~EventListener() = default;
  virtual void OnEvent(const EventPtr& event) = 0;
  // What the hub calls: the event with its shared encodings. Listeners that
  // encode (the native and WebSocket sessions) override it; the default
  // forwards to OnEvent.
  virtual void OnDelivery(const EventPtr& event, const EncodingsPtr& /*encodings*/) {
    OnEvent(event);
  }
  // The answer to EventHub::Resume, in this client's delivery order: every
  // event the client got before it has seq <= point.last_seq, every
  // broadcast after it (but point.events) a greater one. `token` is the
  // one Resume was given.
  virtual void OnResume(const ResumePoint& /*point*/, const std::string& /*token*/) {}
};

// Stamps every event with the service-wide seq and a timestamp and delivers
// it: a reply to the one client that caused it, a broadcast to every client.
// Keeps the newest `history_capacity` broadcasts (but not the periodic
// call-quality events) for clients that resume
// (replies are private to their client and are not kept).
//
// Publishing (Reply, Broadcast) only stamps the event and appends it to the
// hub's queue, under the hub's lock: O(1), whatever the number of clients.
// Delivery takes events from that queue in seq order, one thread at a time,
// and calls the listeners with no lock held:
//   - with StartDeliveryThread() (the gateway): the hub's own thread
//     ("telestra-events") delivers; the publisher (usually the SIP thread)
//     only wakes it;
//   - a thread that holds a ReplyScope (the thread that runs a client's
//     command) delivers the replies that the command caused itself, at the
//     end of the scope, when nothing but replies is queued and no other
//     thread is delivering: a get-status answer then reaches its client
//     without a thread hand-over. A broadcast published in the scope is
//     delivered there too when at most kInlineBroadcastUpTo clients are
//     attached (waking the delivery thread would cost more than those few
//     writes, and it delays the event by a thread hand-over); larger ones
//     go to the delivery thread. The SIP thread's callbacks into the
//     backend hold a scope, so a call-incoming to a few clients leaves
//     without a hand-over, and a broadcast to many costs it nothing per
//     client;
//   - without a delivery thread (unit tests, tools), the publisher delivers
//     after it has released the lock, unless another thread is delivering
//     already (that thread then delivers this event too).
// Each client therefore sees events in seq order, and a broadcast costs its
// publisher nothing per client.
//
// The hub also owns the gateway's one instance id (random, or the
// journal's: Restore), which every front end reports to resuming clients
// (native `subscribed`, the WebSocket's `instance`, gRPC's
// `telestra-epoch`): seqs are only comparable within one instance.
//
// Thread: any. Lock order: mu_ is taken after the backend's locks (events
// are published under them) and is a leaf otherwise: no listener, socket or
// other lock is ever called with it held, except the history sink
// (SetHistorySink), whose own lock comes after mu_.
class EventHub {
 public:
  // `history_capacity`: broadcasts kept for resuming clients ([tcp-settings]
  // history-events).
  explicit EventHub(size_t history_capacity = 4096);
  // Stops the delivery thread (what is queued is delivered first).
  ~EventHub();

  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Continues where an earlier run left off (the journal, after a
  // restart): `instance` becomes the hub's (an empty one keeps the random
  // id), `history` (stamped broadcasts in increasing seq order; only the
  // newest history_capacity are kept) becomes the history, and the next
  // seq is one more than the greater of `last_seq` and the last event's.
  // The events before the first one kept count as evicted: a client
  // resuming from before it gets a gap. Call once, before
  // StartDeliveryThread and before any event is published or client
  // attached (the front ends read instance() without a lock); it aborts
  // otherwise, or when `history` is out of order.
  void Restore(std::string instance, uint64_t last_seq, std::vector<telestra::v1::Event> history);

  // `sink` is called once for each event that enters the history, in seq
  // order, with the event as delivered (the journal persists them). Not
  // for the events Restore puts there. It is called with the hub's lock
  // held, on the publishing thread, before any client can get the event:
  // it must be quick (the journal's write(2) of one record to the page
  // cache, a few microseconds, is the most it may do: durability before
  // delivery is the point), must never wait for another thread or a
  // device, and must not call the hub; its own lock, if any, is taken
  // after the hub's. Set it before anything is published.
  void SetHistorySink(std::function<void(const EventPtr&)> sink);

  // The gateway's instance id: 16 hex digits, random unless Restore gave
  // one. Fixed once the front ends start (see Restore).
  const std::string& instance() const { return instance_; }

  // Starts the thread that delivers broadcasts (and the replies no
  // ReplyScope delivers). Call once, before clients attach.
  void StartDeliveryThread();

  // Registers a listener; it gets every broadcast published from now on
  // and the replies addressed to the returned id.
  ClientId Attach(EventListener* listener);

  // After Detach returns, the listener is never called again (Detach waits
  // for a delivery in progress). Not from inside OnEvent/OnDelivery.
  void Detach(ClientId client);

  // Sends `event` to one client. A reply to a client that is gone is counted
  // (undeliverable_replies) and otherwise dropped.
  void Reply(ClientId to, telestra::v1::Event event);

  // Sends `event` to every attached client.
  void Broadcast(telestra::v1::Event event);

  // While one exists on a thread, the replies published on that thread are
  // delivered by that thread when the scope ends (see the class comment).
  // A scope made while another is active on the thread does nothing (the
  // outer one delivers). Thread: the one that made it.
  class ReplyScope {
   public:
    explicit ReplyScope(EventHub* hub);
    ~ReplyScope();
    ReplyScope(const ReplyScope&) = delete;
    ReplyScope& operator=(const ReplyScope&) = delete;

   private:
    friend class EventHub;
    EventHub* const hub_;
    const bool nested_;
    size_t held_ = 0;  // events published in the scope, not yet handed over
  };

  // A broadcast published in a ReplyScope while at most this many clients
  // are attached is delivered by the scope's thread (see above).
  static constexpr size_t kInlineBroadcastUpTo = 8;

  // A Resume whose replay has more events than this is answered by the
  // delivery thread even in a ReplyScope (see Resume).
  static constexpr size_t kInlineReplayUpTo = 64;

  // Waits until every event published before the call has been handed to
  // its listeners (at shutdown, before the front ends close their clients:
  // the call-ended events of the calls shutdown ended must reach them).
  // False at `deadline`. Not from a listener.
  bool AwaitDelivered(absl::Time deadline);

  // Where a client that subscribes now starts: `after_seq` nullopt for a
  // fresh one; `client_instance` the instance its after_seq belongs to (""
  // when it did not say: not checked). For front ends that attach first and
  // then drop what they get twice (WebSocket, gRPC Subscribe).
  ResumePoint PlanResume(std::optional<uint64_t> after_seq,
                         absl::string_view client_instance) const;

  // The same decision for an attached client, placed in its delivery
  // order: the hub calls its listener's OnResume with the point (and
  // `token`) after every event it got before (seq <= point.last_seq) and
  // before anything later. When resuming (`after_seq` given), broadcasts up
  // to point.last_seq not yet delivered to it are skipped from now on: the
  // replay in point.events (or the gap) stands for them. Delivered like a
  // reply (by a ReplyScope on this thread, else as Reply), except that a
  // replay of more than kInlineReplayUpTo events always goes to the
  // delivery thread: rendering it must not hold up the thread that reads
  // commands (the SIP thread). Nothing happens for a client that is not
  // attached. The point's events are gathered only when they are complete
  // (a gap replays nothing here).
  void Resume(ClientId client, std::optional<uint64_t> after_seq, absl::string_view client_instance,
              std::string token);

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
  // Events delivered by each path (for tests and /metrics).
  struct DeliveryStats {
    uint64_t by_delivery_thread = 0;  // events (a broadcast counts once)
    uint64_t by_reply_scope = 0;      // replies delivered inline
    uint64_t by_publisher = 0;        // no delivery thread
  };
  DeliveryStats delivery_stats() const;

 private:
  // Resume's answer, waiting in the queue for its client.
  struct ResumeMarker {
    ResumePoint point;
    std::string token;
  };
  struct Pending {
    EventPtr event;   // null for a resume marker
    ClientId to = 0;  // 0: broadcast
    // A ReplyScope delivers it (a reply, or a broadcast to a few clients).
    bool held = false;
    std::shared_ptr<const ResumeMarker> resume;  // set: `to`'s OnResume
  };
  struct Listener {
    EventListener* listener = nullptr;
    uint64_t first_seq = 0;  // broadcasts before this one are not for it
  };
  enum class Drainer { kDeliveryThread, kReplyScope, kPublisher };

  void Publish(ClientId to, telestra::v1::Event event);
  // Appends `pending` to the queue (held by `scope` if it may be). True
  // when the caller must now drain (no delivery thread, nobody draining).
  bool QueueLocked(Pending pending, ReplyScope* scope) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ReplyScope of this thread for this hub, if any.
  ReplyScope* CurrentScope() const;
  // The history's broadcasts with seq > after_seq, oldest first.
  std::vector<EventPtr> HistoryAfterLocked(uint64_t after_seq) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ResumePoint PlanResumeLocked(std::optional<uint64_t> after_seq, absl::string_view client_instance,
                               bool events_on_gap) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  EventPtr Stamp(telestra::v1::Event event, bool keep_in_history)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Delivers queued events until the queue is empty (kReplyScope: until a
  // broadcast is next). The caller has set draining_.
  void Drain(Drainer drainer) ABSL_LOCKS_EXCLUDED(mu_);
  void DeliveryLoop();
  // Delivers `event` to `listeners` (a broadcast). A large fan-out is split
  // in two halves, the second written by the helper thread: the sends to
  // 1,000 sockets then take both cores, and the SIP thread neither.
  void DeliverToAll(const EventPtr& event, const EncodingsPtr& encodings,
                    const std::vector<Listener>& listeners, bool split);
  void HelperLoop();
  // Delivers a broadcast to the listeners in [begin, end) that it is for.
  static void DeliverRange(const EventPtr& event, const EncodingsPtr& encodings,
                           const Listener* begin, const Listener* end);
  bool DeliveryThreadHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndScope(ReplyScope* scope);

  const size_t history_capacity_;
  // Written only by the constructor and Restore, before other threads use
  // the hub; read without a lock.
  std::string instance_;
  std::thread delivery_thread_;  // StartDeliveryThread; joined by ~EventHub
  std::thread helper_thread_;    // the second half of large broadcasts

  // The helper thread's one job at a time (a broadcast's second half), set
  // by the delivery thread, which waits until it is done before it moves
  // on: every client still gets the events one after the other, in order.
  struct HelperJob {
    EventPtr event;
    EncodingsPtr encodings;
    const Listener* begin = nullptr;
    const Listener* end = nullptr;
  };
  // Lock order: a leaf (listeners are called with it released).
  absl::Mutex helper_mu_;
  HelperJob helper_job_ ABSL_GUARDED_BY(helper_mu_);
  bool helper_busy_ ABSL_GUARDED_BY(helper_mu_) = false;
  bool helper_stopping_ ABSL_GUARDED_BY(helper_mu_) = false;

  // Lock order: after the backend's locks (events are published under them);
  // before the history sink's own lock (the sink runs with it held); a
  // leaf otherwise.
  mutable absl::Mutex mu_;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  ClientId next_client_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<ClientId, Listener> listeners_ ABSL_GUARDED_BY(mu_);
  std::deque<EventPtr> history_ ABSL_GUARDED_BY(mu_);  // broadcasts only
  uint64_t evicted_up_to_ ABSL_GUARDED_BY(mu_) = 0;    // newest evicted seq
  // Called (with mu_ held) for each event entering history_.
  std::function<void(const EventPtr&)> history_sink_ ABSL_GUARDED_BY(mu_);
  uint64_t undeliverable_replies_ ABSL_GUARDED_BY(mu_) = 0;
  // Published, not yet delivered, in seq order.
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
  // Of pending_: events that a ReplyScope will deliver (the delivery
  // thread is not woken for them).
  size_t held_ ABSL_GUARDED_BY(mu_) = 0;
  // A thread is delivering (only one at a time: that keeps seq order).
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id drainer_ ABSL_GUARDED_BY(mu_);
  uint64_t batches_ ABSL_GUARDED_BY(mu_) = 0;  // delivery batches finished
  // The newest seq handed to the listeners (or found undeliverable).
  uint64_t delivered_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool has_delivery_thread_ ABSL_GUARDED_BY(mu_) = false;
  bool restored_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  DeliveryStats delivery_stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace telestra::backend
