#include "gateway/grpc/session_stream.h"

#include "gateway/grpc/request_validation.h"
#include "gateway/grpc/status_mapping.h"
#include "gateway/grpc/subscription.h"

namespace telestra::gateway {

// How long a half-closed Session stream waits for the replies to its
// commands before it finishes (they normally take microseconds).
constexpr absl::Duration kReplyWait = absl::Seconds(2);

SessionStream::SessionStream(const StreamEnvironment& env, grpc::CallbackServerContext* context,
                             const absl::Status& admission)
    : EventStream(env, context, "Session") {
  if (!admission.ok()) {
    absl::MutexLock lock(&mu_);
    FinishLocked(ToGrpcStatus(admission));
    return;
  }
  if (!Open()) return;
  context_->AddInitialMetadata("telestra-epoch", env_.hub->instance());
  StartSendInitialMetadata();
  absl::MutexLock lock(&mu_);
  if (!EndingLocked()) StartRead(&request_);
}

void SessionStream::OnEvent(const backend::EventPtr& event) {
  absl::MutexLock lock(&mu_);
  if (!extended_ && IsExtendedOnlyEvent(*event)) return;
  PushLocked(event);
}

void SessionStream::OnReadDone(bool ok) {
  if (!ok) {
    // The client closed its sending side (or the call ended): send what the
    // commands caused, then finish. Their replies may still be on their
    // way through the event hub (behind a broadcast): they come first.
    env_.hub->AwaitDelivered(absl::Now() + kReplyWait);
    absl::MutexLock lock(&mu_);
    CloseLocked(grpc::Status::OK);
    return;
  }
  // The replies to this command are delivered by this thread once it has
  // run, not handed to the hub's delivery thread.
  backend::EventHub::ReplyScope replies(env_.hub);
  telestra::v1::Command command;
  grpc::Status parsed =
      grpc::SerializationTraits<telestra::v1::Command>::Deserialize(&request_, &command);
  if (parsed.ok()) {
    Handle(command);
  } else {
    env_.dispatcher->ReplyFail(
        client(), "",
        absl::InvalidArgumentError(
            "Malformed command: the message is not a telestra.v1.Command "
            "(broken wire format or invalid UTF-8 in a string field)"),
        "");
  }
  absl::MutexLock lock(&mu_);
  if (!EndingLocked()) StartRead(&request_);
}

void SessionStream::Handle(const telestra::v1::Command& command) {
  // Runs without mu_: the dispatcher's replies come back through OnEvent.
  if (absl::Status valid = ValidateCommand(command); !valid.ok()) {
    env_.dispatcher->ReplyFail(client(), backend::AccountOf(command), valid, command.token());
    return;
  }
  if (command.has_subscribe()) {
    absl::MutexLock lock(&mu_);
    extended_ = command.subscribe().extended();
    return;
  }
  env_.dispatcher->Execute(client(), command);
}

}  // namespace telestra::gateway
