#include "gateway/grpc/telestra_service.h"

#include <utility>

#include "gateway/grpc/call_audio_stream.h"
#include "gateway/grpc/request_validation.h"
#include "gateway/grpc/session_stream.h"
#include "gateway/grpc/status_mapping.h"
#include "gateway/grpc/subscribe_stream.h"
#include "spdlog/spdlog.h"

namespace telestra::gateway {

using telestra::v1::Event;

TelestraService::TelestraService(StreamEnvironment env, BearerAuth auth)
    : env_(std::move(env)), auth_(std::move(auth)) {}

absl::Status TelestraService::Admit(grpc::CallbackServerContext* context) {
  absl::Status status = auth_.Check(context->client_metadata());
  if (!status.ok()) {
    env_.registry->CountUnauthenticated();
    spdlog::warn("gRPC call from {} refused: {}", context->peer(), std::string(status.message()));
  }
  return status;
}

template <typename Run>
grpc::ServerUnaryReactor* TelestraService::Unary(grpc::CallbackServerContext* context,
                                                 const char* rpc, Run run) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = Admit(context);
  if (status.ok()) status = run();
  if (!status.ok()) {
    spdlog::debug("gRPC {} from {}: {}", rpc, context->peer(), status.ToString());
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* TelestraService::Login(grpc::CallbackServerContext* context,
                                                 const telestra::v1::LoginCommand* request,
                                                 telestra::v1::LoginResponse*) {
  return Unary(context, "Login", [&] {
    absl::Status valid = ValidateLogin(*request);
    return valid.ok() ? env_.backend->Login(*request) : valid;
  });
}

grpc::ServerUnaryReactor* TelestraService::Logout(grpc::CallbackServerContext* context,
                                                  const telestra::v1::LogoutCommand* request,
                                                  telestra::v1::LogoutResponse*) {
  return Unary(context, "Logout", [&] {
    absl::Status valid = ValidateLogout(*request);
    return valid.ok() ? env_.backend->Logout(request->account()) : valid;
  });
}

grpc::ServerUnaryReactor* TelestraService::MakeCall(grpc::CallbackServerContext* context,
                                                    const telestra::v1::MakeCallCommand* request,
                                                    telestra::v1::CallReturn* response) {
  return Unary(context, "MakeCall", [&]() -> absl::Status {
    if (absl::Status valid = ValidateMakeCall(*request); !valid.ok()) return valid;
    // The response is the call-return; nothing needs to precede it here.
    absl::StatusOr<int64_t> call_id =
        env_.backend->MakeCall(request->account(), request->num(), [](int64_t) {});
    if (!call_id.ok()) return call_id.status();
    response->set_account(request->account());
    response->set_call_id(*call_id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* TelestraService::AnswerCall(
    grpc::CallbackServerContext* context, const telestra::v1::AnswerCallCommand* request,
    telestra::v1::AnswerCallResponse*) {
  return Unary(context, "AnswerCall", [&] {
    absl::Status valid = ValidateAnswerCall(*request);
    return valid.ok() ? env_.backend->AnswerCall(request->account(), request->call_id()) : valid;
  });
}

grpc::ServerUnaryReactor* TelestraService::SwitchCall(
    grpc::CallbackServerContext* context, const telestra::v1::SwitchCallCommand* request,
    telestra::v1::SwitchCallResponse*) {
  return Unary(context, "SwitchCall", [&] {
    absl::Status valid = ValidateSwitchCall(*request);
    return valid.ok() ? env_.backend->SwitchCall(request->account(), request->call_id()) : valid;
  });
}

grpc::ServerUnaryReactor* TelestraService::HangupCall(
    grpc::CallbackServerContext* context, const telestra::v1::HangupCallCommand* request,
    telestra::v1::HangupCallResponse*) {
  return Unary(context, "HangupCall", [&] {
    absl::Status valid = ValidateHangupCall(*request);
    return valid.ok() ? env_.backend->HangupCall(request->account(), request->call_id()) : valid;
  });
}

grpc::ServerUnaryReactor* TelestraService::SendDtmf(grpc::CallbackServerContext* context,
                                                    const telestra::v1::SendDtmfCommand* request,
                                                    telestra::v1::SendDtmfResponse*) {
  return Unary(context, "SendDtmf", [&] {
    absl::Status valid = ValidateSendDtmf(*request);
    // Returns once queued: no reply stream to tell when the digits are out.
    return valid.ok() ? env_.backend->SendDtmf(request->account(), request->call_id(),
                                               request->digits(), request->duration_ms(), nullptr)
                      : valid;
  });
}

grpc::ServerUnaryReactor* TelestraService::TransferCall(
    grpc::CallbackServerContext* context, const telestra::v1::TransferCallCommand* request,
    telestra::v1::TransferCallResponse*) {
  return Unary(context, "TransferCall", [&] {
    absl::Status valid = ValidateTransferCall(*request);
    return valid.ok() ? env_.backend->TransferCall(
                            request->account(), request->call_id(), request->num(),
                            request->has_to_call_id()
                                ? std::optional<int64_t>(request->to_call_id())
                                : std::nullopt)
                      : valid;
  });
}

grpc::ServerUnaryReactor* TelestraService::GetStatus(grpc::CallbackServerContext* context,
                                                     const telestra::v1::GetStatusCommand* request,
                                                     telestra::v1::Status* response) {
  return Unary(context, "GetStatus", [&]() -> absl::Status {
    if (absl::Status valid = ValidateGetStatus(*request); !valid.ok()) return valid;
    absl::StatusOr<telestra::v1::Status> status = env_.backend->GetStatus(request->account());
    if (!status.ok()) return status.status();
    *response = *std::move(status);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* TelestraService::ListAccounts(
    grpc::CallbackServerContext* context, const telestra::v1::ListAccountsRequest*,
    telestra::v1::ListAccountsResponse* response) {
  return Unary(context, "ListAccounts", [&] {
    for (telestra::v1::Status& status : env_.backend->ListAccounts()) {
      *response->add_accounts() = std::move(status);
    }
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<Event>* TelestraService::Subscribe(
    grpc::CallbackServerContext* context, const telestra::v1::SubscribeRequest* request) {
  return new SubscribeStream(env_, context, *request, Admit(context));
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* TelestraService::Session(
    grpc::CallbackServerContext* context) {
  return new SessionStream(env_, context, Admit(context));
}

grpc::ServerBidiReactor<telestra::v1::CallAudioRequest, telestra::v1::CallAudioResponse>*
TelestraService::CallAudio(grpc::CallbackServerContext* context) {
  return new CallAudioStream(env_, context, Admit(context));
}

}  // namespace telestra::gateway
