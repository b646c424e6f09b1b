#include "backend/event_hub.h"

#include <chrono>
#include <utility>

namespace telestra::backend {

EventHub::EventHub(size_t history_capacity)
    : history_capacity_(history_capacity) {}

ClientId EventHub::Attach(EventListener* listener) {
  absl::MutexLock lock(&mu_);
  ClientId id = next_client_++;
  listeners_[id] = listener;
  return id;
}

void EventHub::Detach(ClientId client) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(client);
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
  }
  return stamped;
}

void EventHub::Reply(ClientId to, telestra::v1::Event event) {
  absl::MutexLock lock(&mu_);
  EventPtr stamped = Stamp(std::move(event), /*keep_in_history=*/false);
  auto it = listeners_.find(to);
  if (it == listeners_.end()) {
    ++undeliverable_replies_;
    return;
  }
  it->second->OnEvent(stamped);
}

void EventHub::Broadcast(telestra::v1::Event event) {
  absl::MutexLock lock(&mu_);
  EventPtr stamped = Stamp(std::move(event), /*keep_in_history=*/true);
  for (auto& [id, listener] : listeners_) listener->OnEvent(stamped);
}

EventHub::Replay EventHub::EventsAfter(uint64_t after_seq) const {
  absl::MutexLock lock(&mu_);
  Replay replay;
  replay.complete = after_seq >= evicted_up_to_;
  for (const EventPtr& event : history_) {
    if (event->seq() > after_seq) replay.events.push_back(event);
  }
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

}  // namespace telestra::backend
