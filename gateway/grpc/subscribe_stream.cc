#include "gateway/grpc/subscribe_stream.h"

#include <optional>
#include <string>
#include <utility>

#include "gateway/grpc/status_mapping.h"

namespace telestra::gateway {

SubscribeStream::SubscribeStream(const StreamEnvironment& env, grpc::CallbackServerContext* context,
                                 const telestra::v1::SubscribeRequest& request,
                                 const absl::Status& admission)
    : EventStream(env, context, "Subscribe") {
  if (!admission.ok()) {
    absl::MutexLock lock(&mu_);
    FinishLocked(ToGrpcStatus(admission));
    return;
  }
  Start(request);
}

void SubscribeStream::Start(const telestra::v1::SubscribeRequest& request) {
  std::vector<std::string> names;
  for (const telestra::v1::Status& status : env_.backend->ListAccounts()) {
    names.push_back(status.account());
  }
  absl::StatusOr<EventFilter> filter = EventFilter::Create(request, names);
  if (!filter.ok()) {
    absl::MutexLock lock(&mu_);
    FinishLocked(ToGrpcStatus(filter.status()));
    return;
  }
  filter_ = *std::move(filter);

  // 1. Attach: from now on every broadcast lands in buffered_.
  if (!Open()) return;
  // 2. Everything up to snapshot_seq happened before the snapshot is read:
  //    the backend changes its state before it broadcasts, under its lock.
  const backend::ResumePoint point = env_.hub->PlanResume(
      request.has_after_seq() ? std::optional<uint64_t>(request.after_seq()) : std::nullopt,
      request.epoch());
  const uint64_t snapshot_seq = point.last_seq;
  const ResumePlan plan = PlanResume(point);
  std::vector<telestra::v1::Status> snapshot;
  if (request.snapshot()) snapshot = env_.backend->ListAccounts();
  const uint64_t from = plan.replay ? plan.replay_after : snapshot_seq;
  if (plan.gap) {
    env_.registry->CountGap();
    spdlog::info("gRPC Subscribe stream {}: {}", client(), plan.gap_message);
  }

  context_->AddInitialMetadata("telestra-epoch", env_.hub->instance());
  context_->AddInitialMetadata("telestra-replay", !plan.replay ? "none"
                                                  : plan.gap   ? "gap"
                                                               : "complete");
  // Sent at once, so a client knows it is subscribed before any event.
  StartSendInitialMetadata();

  // 3. Merge and go live.
  absl::MutexLock lock(&mu_);
  if (EndingLocked()) return;  // shut down (or overflowed) meanwhile
  std::vector<backend::EventPtr> initial = InitialEvents(
      plan, from, point.events, buffered_, snapshot_seq, request.snapshot(), snapshot, filter_);
  buffered_.clear();
  buffered_.shrink_to_fit();
  buffering_ = false;
  AllowInitialLocked(initial.size());
  for (backend::EventPtr& event : initial) PushLocked(std::move(event));
}

void SubscribeStream::OnEvent(const backend::EventPtr& event) {
  absl::MutexLock lock(&mu_);
  if (EndingLocked()) return;
  if (buffering_) {
    // Only while the constructor merges: bounded all the same.
    if (buffered_.size() >= env_.max_queued_events) {
      OverflowLocked(buffered_.size());
      return;
    }
    buffered_.push_back(event);
    return;
  }
  if (filter_.Matches(*event)) PushLocked(event);
}

}  // namespace telestra::gateway
