#include "gateway/grpc/call_audio_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "gateway/grpc/status_mapping.h"
#include "spdlog/spdlog.h"

namespace telestra::gateway {
namespace {

constexpr char kRpc[] = "CallAudio";
constexpr char kShuttingDown[] = "Gateway shutting down";

const char* DirectionName(telestra::v1::AudioDirection direction) {
  switch (direction) {
    case telestra::v1::AUDIO_DIRECTION_LISTEN:
      return "listen";
    case telestra::v1::AUDIO_DIRECTION_SPEAK:
      return "speak";
    case telestra::v1::AUDIO_DIRECTION_BOTH:
      return "both";
    default:
      return "?";
  }
}

}  // namespace

CallAudioStream::CallAudioStream(const StreamEnvironment& env, grpc::CallbackServerContext* context,
                                 const absl::Status& admission)
    : env_(env), peer_(context->peer()) {
  grpc::Status admitted = ToGrpcStatus(admission);
  if (admitted.ok()) {
    admitted = env_.registry->Admit(this, kRpc, peer_);
    registered_ = admitted.ok();
  }
  absl::MutexLock lock(&mu_);
  if (!admitted.ok()) {
    FinishLocked(admitted);
    return;
  }
  StartRead(&request_);  // the start
}

void CallAudioStream::OnReadDone(bool ok) {
  bool first = false;
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (session_ == nullptr) {
      first = true;
      if (!ok || !request_.has_start()) {
        // Nothing yet, or not a start: nothing was opened.
        if (env_.call_audio_stats != nullptr) ++env_.call_audio_stats->streams_refused;
        FinishLocked(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "The first request must be start"));
        return;
      }
    } else if (!ok) {
      // The client closed its sending side (it has said everything): keep
      // sending until the call ends or the client cancels.
      reads_done_ = true;
      return;
    } else {
      absl::Status handled = session_->OnRequest(request_);
      if (!handled.ok()) {
        spdlog::debug("gRPC CallAudio stream ({}) ends: {}", peer_, handled.ToString());
        FinishLocked(ToGrpcStatus(handled));
        return;
      }
      if (session_->ReadyForInput()) {
        StartRead(&request_);
      } else {
        read_paused_ = true;  // the wakeup resumes reading (PumpLocked)
      }
      PumpLocked();  // a mark may be due at once
      return;
    }
  }
  // A copy: request_ is the next read's buffer once Start reads again.
  if (first) Start(telestra::v1::CallAudioStart(request_.start()));
}

void CallAudioStream::Start(const telestra::v1::CallAudioStart& start) {
  absl::StatusOr<std::unique_ptr<CallAudioSession>> opened = CallAudioSession::Open(
      env_.backend, start, [this] { Wakeup(); }, env_.call_audio_stats);
  absl::MutexLock lock(&mu_);
  if (!opened.ok()) {
    spdlog::info("gRPC CallAudio stream ({}) on call {} of '{}' refused: {}", peer_,
                 start.call_id(), start.account(), opened.status().ToString());
    FinishLocked(ToGrpcStatus(opened.status()));
    return;
  }
  spdlog::info("gRPC CallAudio stream ({}) on call {} of '{}' opened ({}, {} Hz)", peer_,
               start.call_id(), start.account(), DirectionName(start.direction()),
               start.sample_rate());
  // Kept even when the stream ended meanwhile (cancelled, shut down):
  // OnDone destroys it, outside mu_.
  session_ = *std::move(opened);
  if (finished_) return;
  StartRead(&request_);
  // A wakeup that came before session_ was set found nothing to do: look now.
  PumpLocked();
}

void CallAudioStream::Wakeup() {
  absl::MutexLock lock(&mu_);
  PumpLocked();
}

void CallAudioStream::PumpLocked() {
  if (finished_ || session_ == nullptr) return;
  if (!writing_ && !closing_ && session_->Next(&response_)) {
    if (session_->finished() && !session_->started()) {
      // The call ended before the stream could attach: a refusal, not a
      // stream that ran.
      const std::string& reason = response_.stopped().reason();
      FinishLocked(reason == kShuttingDown
                       ? grpc::Status(grpc::StatusCode::UNAVAILABLE, kShuttingDown)
                       : grpc::Status(grpc::StatusCode::NOT_FOUND,
                                      BoundedStatusMessage(absl::StrCat(
                                          "Call ", session_->start().call_id(),
                                          " ended before the audio stream started: ", reason))));
      return;
    }
    writing_ = true;
    StartWrite(&response_);
  }
  // Held-back audio goes into the call as room appears, even after the
  // client stopped sending.
  if (session_->ReadyForInput() && read_paused_) {
    read_paused_ = false;
    if (!reads_done_) StartRead(&request_);
  }
}

void CallAudioStream::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  if (finished_) return;
  if (!ok) {
    // The call is broken (cancelled, connection lost).
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "Write failed"));
    return;
  }
  if (closing_) {
    FinishLocked(closing_status_);
    return;
  }
  if (session_->finished()) {  // that was the stopped message
    FinishLocked(grpc::Status::OK);
    return;
  }
  PumpLocked();
}

void CallAudioStream::OnCancel() {
  absl::MutexLock lock(&mu_);
  FinishLocked(grpc::Status::CANCELLED);
}

void CallAudioStream::Close(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  if (finished_ || closing_) return;
  if (writing_) {
    closing_ = true;
    closing_status_ = status;
    return;
  }
  FinishLocked(status);
}

void CallAudioStream::FinishLocked(const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  Finish(status);
}

void CallAudioStream::OnDone() {
  if (registered_) env_.registry->Remove(this);  // no Close() after this
  std::unique_ptr<CallAudioSession> session;
  {
    absl::MutexLock lock(&mu_);
    session = std::move(session_);
  }
  if (session != nullptr) {
    const telestra::v1::CallAudioStart& start = session->start();
    spdlog::info("gRPC CallAudio stream ({}) on call {} of '{}' closed", peer_, start.call_id(),
                 start.account());
    session.reset();  // detaches; waits for a wakeup that is running (it takes mu_)
  }
  delete this;
}

}  // namespace telestra::gateway
