#include "backend/event_hub.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"

namespace telestra::backend {

namespace {
// The ReplyScope of the calling thread, if any.
thread_local EventHub::ReplyScope* current_scope = nullptr;

// Events taken from the queue per delivery batch: bounds how long a
// Detach waits for the batch in progress.
constexpr size_t kMaxBatch = 64;

// A broadcast to at least this many clients is written by two threads
// (below it, handing half over costs more than it saves; docs/benchmarks.md).
constexpr size_t kSplitFanOutAt = 256;

std::string NewInstanceId() {
  absl::BitGen random;
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(random));
}

// A broken invariant of the hub's contract: crash loudly.
[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "EventHub: %s\n", what);
  std::abort();
}
}  // namespace

const std::string& EventEncodings::Get(size_t slot, absl::FunctionRef<std::string()> encode) {
  absl::call_once(once_[slot], [&] { bytes_[slot] = encode(); });
  return bytes_[slot];
}

EventHub::EventHub(size_t history_capacity)
    : history_capacity_(history_capacity), instance_(NewInstanceId()) {}

void EventHub::Restore(std::string instance, uint64_t last_seq,
                       std::vector<telestra::v1::Event> history) {
  absl::MutexLock lock(&mu_);
  if (restored_ || has_delivery_thread_ || next_seq_ != 1 || next_client_ != 1) {
    Die("Restore must come once, before the delivery thread, any event and any client");
  }
  for (size_t i = 0; i < history.size(); ++i) {
    if (history[i].seq() == 0 || (i > 0 && history[i].seq() <= history[i - 1].seq())) {
      Die("Restore: the history's seqs must increase");
    }
  }
  restored_ = true;
  if (!instance.empty()) instance_ = std::move(instance);
  const uint64_t newest = history.empty() ? last_seq : std::max(last_seq, history.back().seq());
  const size_t skip = history.size() > history_capacity_ ? history.size() - history_capacity_ : 0;
  // Whatever came before the first event kept is gone for a resuming client.
  evicted_up_to_ = skip < history.size() ? history[skip].seq() - 1 : newest;
  for (size_t i = skip; i < history.size(); ++i) {
    history_.push_back(std::make_shared<const telestra::v1::Event>(std::move(history[i])));
  }
  next_seq_ = newest + 1;
}

void EventHub::SetHistorySink(std::function<void(const EventPtr&)> sink) {
  absl::MutexLock lock(&mu_);
  history_sink_ = std::move(sink);
}

EventHub::~EventHub() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (delivery_thread_.joinable()) delivery_thread_.join();
  {
    absl::MutexLock lock(&helper_mu_);
    helper_stopping_ = true;
  }
  if (helper_thread_.joinable()) helper_thread_.join();
}

void EventHub::StartDeliveryThread() {
  absl::MutexLock lock(&mu_);
  if (has_delivery_thread_) return;
  has_delivery_thread_ = true;
  delivery_thread_ = std::thread([this] { DeliveryLoop(); });
  pthread_setname_np(delivery_thread_.native_handle(), "telestra-events");
  helper_thread_ = std::thread([this] { HelperLoop(); });
  pthread_setname_np(helper_thread_.native_handle(), "telestra-fanout");
}

void EventHub::DeliverRange(const EventPtr& event, const EncodingsPtr& encodings,
                            const Listener* begin, const Listener* end) {
  const uint64_t seq = event->seq();
  for (const Listener* it = begin; it != end; ++it) {
    // A client attached after the event was published does not get it.
    if (seq >= it->first_seq) it->listener->OnDelivery(event, encodings);
  }
}

void EventHub::HelperLoop() {
  for (;;) {
    HelperJob job;
    {
      absl::MutexLock lock(&helper_mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(helper_mu_) {
        return helper_stopping_ || helper_job_.begin != nullptr;
      };
      helper_mu_.Await(absl::Condition(&has_work));
      if (helper_job_.begin == nullptr) return;  // stopping, nothing handed over
      job = helper_job_;
    }
    DeliverRange(job.event, job.encodings, job.begin, job.end);
    absl::MutexLock lock(&helper_mu_);
    helper_job_ = HelperJob{};
    helper_busy_ = false;
  }
}

void EventHub::DeliverToAll(const EventPtr& event, const EncodingsPtr& encodings,
                            const std::vector<Listener>& listeners, bool split) {
  size_t mine = listeners.size();
  if (split && listeners.size() >= kSplitFanOutAt) {
    mine = listeners.size() / 2;
    absl::MutexLock lock(&helper_mu_);
    helper_job_ = HelperJob{event, encodings, listeners.data() + mine,
                            listeners.data() + listeners.size()};
    helper_busy_ = true;
  }
  DeliverRange(event, encodings, listeners.data(), listeners.data() + mine);
  if (mine == listeners.size()) return;
  absl::MutexLock lock(&helper_mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(helper_mu_) { return !helper_busy_; };
  helper_mu_.Await(absl::Condition(&done));
}

ClientId EventHub::Attach(EventListener* listener) {
  absl::MutexLock lock(&mu_);
  ClientId id = next_client_++;
  listeners_[id] = Listener{listener, next_seq_};
  return id;
}

void EventHub::Detach(ClientId client) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(client);
  // A batch in progress may hold the listener: wait until it is done (the
  // next batch no longer sees it). The drainer itself must not wait for
  // its own batch (the contract forbids Detach from a listener).
  if (!draining_ || drainer_ == std::this_thread::get_id()) return;
  const uint64_t batch = batches_;
  auto batch_done = [this, batch]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !draining_ || batches_ != batch;
  };
  mu_.Await(absl::Condition(&batch_done));
}

EventPtr EventHub::Stamp(telestra::v1::Event event, bool keep_in_history) {
  event.set_seq(next_seq_++);
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  event.mutable_time()->set_seconds(nanos / 1000000000);
  event.mutable_time()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  auto stamped = std::make_shared<const telestra::v1::Event>(std::move(event));
  if (keep_in_history && history_capacity_ > 0) {
    if (history_.size() == history_capacity_) {
      evicted_up_to_ = history_.front()->seq();
      history_.pop_front();
    }
    history_.push_back(stamped);
    if (history_sink_) history_sink_(stamped);
  }
  return stamped;
}

void EventHub::Reply(ClientId to, telestra::v1::Event event) { Publish(to, std::move(event)); }

void EventHub::Broadcast(telestra::v1::Event event) { Publish(0, std::move(event)); }

EventHub::ReplyScope* EventHub::CurrentScope() const {
  return current_scope != nullptr && current_scope->hub_ == this ? current_scope : nullptr;
}

bool EventHub::QueueLocked(Pending pending, ReplyScope* scope) {
  const bool broadcast = pending.to == 0;
  pending.held = scope != nullptr && (!broadcast || listeners_.size() <= kInlineBroadcastUpTo);
  const bool held = pending.held;
  pending_.push_back(std::move(pending));
  if (held) {
    ++held_;  // the scope delivers it at its end
    ++scope->held_;
    return false;
  }
  // With a delivery thread, releasing mu_ wakes it (its Await condition
  // now holds); without one, this thread delivers unless another does.
  if (has_delivery_thread_ || draining_) return false;
  draining_ = true;
  drainer_ = std::this_thread::get_id();
  return true;
}

void EventHub::Publish(ClientId to, telestra::v1::Event event) {
  ReplyScope* scope = CurrentScope();
  bool drain = false;
  {
    absl::MutexLock lock(&mu_);
    // Periodic telemetry (call-quality, every few seconds per call) is not
    // kept for resuming clients: it would push the events that matter out
    // of the history, and a client that resumes gets fresh figures soon.
    const bool keep = to == 0 && !event.has_call_quality();
    drain = QueueLocked(Pending{Stamp(std::move(event), keep), to}, scope);
  }
  if (drain) Drain(Drainer::kPublisher);
}

void EventHub::Resume(ClientId client, std::optional<uint64_t> after_seq,
                      absl::string_view client_instance, std::string token) {
  ReplyScope* scope = CurrentScope();
  bool drain = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = listeners_.find(client);
    if (it == listeners_.end()) return;
    auto marker = std::make_shared<ResumeMarker>();
    marker->point = PlanResumeLocked(after_seq, client_instance, /*events_on_gap=*/false);
    marker->token = std::move(token);
    // The broadcasts up to last_seq still queued are the replay's (or the
    // gap's) now: batches made from here on skip them for this client; a
    // batch already under way delivers before the marker, which is queued
    // after it.
    if (after_seq.has_value()) it->second.first_seq = marker->point.last_seq + 1;
    const bool inline_ok = marker->point.events.size() <= kInlineReplayUpTo;
    drain = QueueLocked(Pending{nullptr, client, false, std::move(marker)},
                        inline_ok ? scope : nullptr);
  }
  if (drain) Drain(Drainer::kPublisher);
}

EventHub::ReplyScope::ReplyScope(EventHub* hub) : hub_(hub), nested_(current_scope != nullptr) {
  if (!nested_) current_scope = this;
}

EventHub::ReplyScope::~ReplyScope() {
  if (nested_) return;
  current_scope = nullptr;
  hub_->EndScope(this);
}

void EventHub::EndScope(ReplyScope* scope) {
  if (scope->held_ == 0) return;
  {
    absl::MutexLock lock(&mu_);
    held_ -= std::min(held_, scope->held_);
    if (draining_ || pending_.empty()) return;  // the thread delivering takes them
    // A broadcast for the delivery thread first: it (woken as mu_ is
    // released) delivers it and what follows, in order.
    if (has_delivery_thread_ && !pending_.front().held) return;
    draining_ = true;
    drainer_ = std::this_thread::get_id();
  }
  Drain(Drainer::kReplyScope);
}

void EventHub::Drain(Drainer drainer) {
  struct Delivery {
    EventPtr event;
    EventListener* to = nullptr;                 // null: broadcast
    std::shared_ptr<const ResumeMarker> resume;  // set: to->OnResume
  };
  std::vector<Delivery> batch;
  std::vector<Listener> everyone;  // for the batch's broadcasts
  for (;;) {
    batch.clear();
    everyone.clear();
    {
      absl::MutexLock lock(&mu_);
      // A scope delivers replies and the broadcasts held for it; any other
      // broadcast stops its drain (those are the delivery thread's, when
      // there is one).
      const bool scope_with_thread = drainer == Drainer::kReplyScope && has_delivery_thread_;
      bool any_broadcast = false;
      while (!pending_.empty() && batch.size() < kMaxBatch) {
        Pending& next = pending_.front();
        if (next.to == 0) {
          if (scope_with_thread && !next.held) break;
          any_broadcast = true;
          batch.push_back(Delivery{std::move(next.event), nullptr});
        } else if (auto it = listeners_.find(next.to); it != listeners_.end()) {
          batch.push_back(
              Delivery{std::move(next.event), it->second.listener, std::move(next.resume)});
        } else if (next.event != nullptr) {
          ++undeliverable_replies_;
        }
        pending_.pop_front();
      }
      if (pending_.size() < held_) held_ = pending_.size();
      if (batch.empty()) {
        draining_ = false;
        ++batches_;
        return;
      }
      if (any_broadcast) {
        everyone.reserve(listeners_.size());
        for (const auto& [id, listener] : listeners_) everyone.push_back(listener);
      }
      switch (drainer) {
        case Drainer::kDeliveryThread:
          delivery_stats_.by_delivery_thread += batch.size();
          break;
        case Drainer::kReplyScope:
          delivery_stats_.by_reply_scope += batch.size();
          break;
        case Drainer::kPublisher:
          delivery_stats_.by_publisher += batch.size();
          break;
      }
    }
    // No lock held: listeners write to sockets.
    uint64_t newest = 0;
    for (const Delivery& delivery : batch) {
      if (delivery.resume != nullptr) {
        delivery.to->OnResume(delivery.resume->point, delivery.resume->token);
        continue;
      }
      newest = delivery.event->seq();
      auto encodings = std::make_shared<EventEncodings>();
      if (delivery.to != nullptr) {
        delivery.to->OnDelivery(delivery.event, encodings);
        continue;
      }
      DeliverToAll(delivery.event, encodings, everyone,
                   /*split=*/drainer == Drainer::kDeliveryThread);
    }
    absl::MutexLock lock(&mu_);
    ++batches_;  // wakes a Detach waiting for this batch
    delivered_seq_ = std::max(delivered_seq_, newest);
  }
}

bool EventHub::AwaitDelivered(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  const uint64_t target = next_seq_ - 1;
  auto delivered = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return delivered_seq_ >= target || (pending_.empty() && !draining_);
  };
  // AwaitWithTimeout, not ...WithDeadline: the TSan build wraps the former.
  return mu_.AwaitWithTimeout(absl::Condition(&delivered), deadline - absl::Now());
}

bool EventHub::DeliveryThreadHasWork() const {
  return stopping_ || (!draining_ && pending_.size() > held_);
}

void EventHub::DeliveryLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &EventHub::DeliveryThreadHasWork));
      if (stopping_ && (pending_.empty() || draining_)) return;
      if (draining_) continue;
      draining_ = true;
      drainer_ = std::this_thread::get_id();
    }
    Drain(Drainer::kDeliveryThread);
  }
}

std::vector<EventPtr> EventHub::HistoryAfterLocked(uint64_t after_seq) const {
  // The history is in seq order.
  auto first =
      std::upper_bound(history_.begin(), history_.end(), after_seq,
                       [](uint64_t seq, const EventPtr& event) { return seq < event->seq(); });
  return std::vector<EventPtr>(first, history_.end());
}

ResumePoint EventHub::PlanResumeLocked(std::optional<uint64_t> after_seq,
                                       absl::string_view client_instance,
                                       bool events_on_gap) const {
  using Outcome = ResumePoint::Outcome;
  ResumePoint point;
  point.instance = instance_;
  point.last_seq = next_seq_ - 1;
  if (!after_seq.has_value()) return point;
  point.after_seq = *after_seq;
  point.client_instance = std::string(client_instance);
  if (!client_instance.empty() && client_instance != instance_) {
    point.outcome = Outcome::kOtherInstance;
  } else if (*after_seq > point.last_seq) {
    point.outcome = Outcome::kAhead;
  } else if (*after_seq < evicted_up_to_) {
    point.outcome = Outcome::kEvicted;
  } else {
    point.outcome = Outcome::kComplete;
  }
  const bool other_numbering =
      point.outcome == Outcome::kOtherInstance || point.outcome == Outcome::kAhead;
  point.replay_after = other_numbering ? 0 : *after_seq;
  if (!point.gap() || events_on_gap) point.events = HistoryAfterLocked(point.replay_after);
  return point;
}

ResumePoint EventHub::PlanResume(std::optional<uint64_t> after_seq,
                                 absl::string_view client_instance) const {
  absl::MutexLock lock(&mu_);
  return PlanResumeLocked(after_seq, client_instance, /*events_on_gap=*/true);
}

EventHub::Replay EventHub::EventsAfter(uint64_t after_seq) const {
  absl::MutexLock lock(&mu_);
  Replay replay;
  replay.complete = after_seq >= evicted_up_to_;
  replay.events = HistoryAfterLocked(after_seq);
  return replay;
}

uint64_t EventHub::last_seq() const {
  absl::MutexLock lock(&mu_);
  return next_seq_ - 1;
}

size_t EventHub::client_count() const {
  absl::MutexLock lock(&mu_);
  return listeners_.size();
}

uint64_t EventHub::undeliverable_replies() const {
  absl::MutexLock lock(&mu_);
  return undeliverable_replies_;
}

EventHub::DeliveryStats EventHub::delivery_stats() const {
  absl::MutexLock lock(&mu_);
  return delivery_stats_;
}

}  // namespace telestra::backend
