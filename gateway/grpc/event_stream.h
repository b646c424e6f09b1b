#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backend/backend.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "gateway/grpc/stream_registry.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "proto/telestra.pb.h"
#include "spdlog/spdlog.h"

namespace telestra::gateway {

struct CallAudioStats;  // gateway/audio/call_audio_session.h

// What every stream of the service shares.
struct StreamEnvironment {
  backend::Backend* backend = nullptr;
  backend::EventHub* hub = nullptr;
  backend::CommandDispatcher* dispatcher = nullptr;
  StreamRegistry* registry = nullptr;
  // Events one stream may have queued (beyond the snapshot and replay it
  // starts with) before it counts as not keeping up.
  size_t max_queued_events = 8192;
  // The gateway's call audio counters (CallAudio streams); may be null.
  CallAudioStats* call_audio_stats = nullptr;
};

// The outbound half of an RPC that streams Events, shared by Subscribe
// (Reactor = grpc::ServerWriteReactor<Event>) and Session
// (grpc::ServerBidiReactor<Command, Event>), in the shape of gRPC's callback
// examples: exactly one write in flight, the next started from OnWriteDone,
// OnDone() deletes the reactor.
//
// Events arrive from the EventHub (OnEvent, on its delivering thread, no lock held) and
// are only queued there, under this stream's own small mutex; a write starts
// when the stream is idle. gRPC never runs a reaction inline inside
// StartWrite/StartRead/Finish (reactions are scheduled on its executor), so
// calling them with mu_ held cannot re-enter this object; holding it keeps
// "one write in flight" and "nothing after Finish" simple invariants.
//
// The queue is bounded: a stream whose client does not keep up ends with
// RESOURCE_EXHAUSTED; the events it loses are counted (StreamRegistry) and
// logged; no other stream and no publisher ever waits for it.
//
// Thread: any. Lifetime: until OnDone, which detaches from the hub first.
template <typename Reactor>
class EventStream : public Reactor, public backend::EventListener, public ClosableStream {
 public:
  void Close(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    CloseLocked(status);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    in_flight_.reset();
    writing_ = false;
    if (!ok) {
      // The call is broken (cancelled, connection lost): nothing more will
      // get through.
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "Write failed"));
      return;
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    backend::ClientId client = client_.load();
    if (client != 0) {
      env_.hub->Detach(client);  // no OnEvent after this
      spdlog::info("gRPC {} stream {} ({}) closed", rpc_, client, peer_);
    }
    if (registered_) env_.registry->Remove(this);
    delete this;
  }

 protected:
  EventStream(const StreamEnvironment& env, grpc::CallbackServerContext* context, const char* rpc)
      : env_(env),
        context_(context),
        rpc_(rpc),
        peer_(context->peer()),
        capacity_(env.max_queued_events) {}

  // Registers with the registry, then attaches to the hub (OnEvent can run
  // from then on). Returns false, after finishing the RPC, when the server
  // is shutting down (UNAVAILABLE) or max-streams are open
  // (RESOURCE_EXHAUSTED).
  bool Open() {
    grpc::Status admitted = env_.registry->Admit(this, rpc_, peer_);
    if (!admitted.ok()) {
      absl::MutexLock lock(&mu_);
      FinishLocked(admitted);
      return false;
    }
    registered_ = true;
    client_ = env_.hub->Attach(this);
    spdlog::info("gRPC {} stream {} opened by {}", rpc_, client_.load(), peer_);
    return true;
  }

  // Queues one event (capacity permitting) and starts a write if idle.
  void PushLocked(backend::EventPtr event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || closing_) return;
    if (queue_.size() >= capacity_) {
      OverflowLocked(queue_.size());
      return;
    }
    queue_.push_back(std::move(event));
    if (!writing_) WriteNextLocked();
  }

  // Allows `initial` more queued events than max_queued_events (for the
  // snapshot and replay a Subscribe stream starts with).
  void AllowInitialLocked(size_t initial) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    capacity_ = env_.max_queued_events + initial;
  }

  // Finishes with `status` once everything queued has been written.
  void CloseLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || closing_) return;
    closing_ = true;
    closing_status_ = status;
    if (!writing_ && queue_.empty()) FinishLocked(closing_status_);
  }

  // Finishes now; whatever is still queued is dropped.
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    queue_.clear();
    this->Finish(status);
  }

  // Ends the stream because `queued` events are waiting for it: those and
  // the one that did not fit are lost.
  void OverflowLocked(size_t queued) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    uint64_t lost = queued + 1;
    env_.registry->CountSlowDrop(lost);
    spdlog::warn(
        "gRPC {} stream {} ({}) is not keeping up: {} events queued; ending it with "
        "RESOURCE_EXHAUSTED, {} events undelivered",
        rpc_, client_.load(), peer_, queued, lost);
    FinishLocked(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("Stream too slow: ", queued, " events were queued for it; ", lost,
                                  " events were dropped; resubscribe with after_seq")));
  }

  // True once the stream finished or is closing: nothing more is queued.
  bool EndingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_ || closing_; }

  backend::ClientId client() const { return client_.load(); }

  const StreamEnvironment env_;
  grpc::CallbackServerContext* const context_;
  // Lock order: a leaf among the gateway's locks (no hub, backend or
  // registry lock is taken with it held; the hub delivers with its own lock
  // released).
  absl::Mutex mu_;

 private:
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    if (queue_.empty()) {
      if (closing_) FinishLocked(closing_status_);
      return;
    }
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    grpc::WriteOptions options;
    // More is queued: the transport may hold this one back and send both in
    // one go (the write still completes, and the next write flushes it).
    if (!queue_.empty()) options.set_buffer_hint();
    if constexpr (std::is_base_of_v<grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                                    Reactor>) {
      // A raw stream (Session reads raw bytes to report commands that do
      // not parse): serialize the event here.
      bool own_buffer = false;
      in_flight_bytes_.Clear();
      grpc::Status serialized = grpc::SerializationTraits<telestra::v1::Event>::Serialize(
          *in_flight_, &in_flight_bytes_, &own_buffer);
      if (!serialized.ok()) {
        FinishLocked(grpc::Status(grpc::StatusCode::INTERNAL, "Cannot serialize an event"));
        return;
      }
      this->StartWrite(&in_flight_bytes_, options);
    } else {
      this->StartWrite(in_flight_.get(), options);
    }
  }

  const char* const rpc_;
  const std::string peer_;
  // Set once by Open(); OnEvent may read it meanwhile (log lines).
  std::atomic<backend::ClientId> client_{0};
  bool registered_ = false;  // written by Open(), before anything can end

  std::deque<backend::EventPtr> queue_ ABSL_GUARDED_BY(mu_);
  size_t capacity_ ABSL_GUARDED_BY(mu_);
  backend::EventPtr in_flight_ ABSL_GUARDED_BY(mu_);  // alive until OnWriteDone
  grpc::ByteBuffer in_flight_bytes_ ABSL_GUARDED_BY(mu_);  // raw streams: in_flight_ serialized
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status closing_status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace telestra::gateway
