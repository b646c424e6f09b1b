#pragma once

#include "gateway/grpc/bearer_auth.h"
#include "gateway/grpc/event_stream.h"
#include "gateway/grpc/stream_registry.h"
#include "proto/telestra_service.grpc.pb.h"

namespace telestra::gateway {

// telestra.v1.Telestra (proto/telestra_service.proto) over the backend, with
// gRPC's callback API. Unary RPCs call the backend's typed methods (which
// never block) on gRPC's thread and map their absl::Status to the same gRPC
// code; streams are SubscribeStream, SessionStream and CallAudioStream.
//
// Every RPC first checks the bearer token (BearerAuth); a refused call ends
// with UNAUTHENTICATED and is counted.
//
// Thread: any (gRPC's callback threads).
// The callback service with Session read and written as raw bytes (see
// SessionStream); every other method typed.
using TelestraGrpc = telestra::v1::Telestra;
using TelestraCallbackBase = TelestraGrpc::WithCallbackMethod_Login<
    TelestraGrpc::WithCallbackMethod_Logout<TelestraGrpc::WithCallbackMethod_MakeCall<
        TelestraGrpc::WithCallbackMethod_AnswerCall<TelestraGrpc::WithCallbackMethod_SwitchCall<
            TelestraGrpc::WithCallbackMethod_HangupCall<TelestraGrpc::WithCallbackMethod_SendDtmf<
                TelestraGrpc::WithCallbackMethod_TransferCall<
                    TelestraGrpc::WithCallbackMethod_GetStatus<
                        TelestraGrpc::WithCallbackMethod_ListAccounts<
                            TelestraGrpc::WithCallbackMethod_Subscribe<
                                TelestraGrpc::WithRawCallbackMethod_Session<
                                    TelestraGrpc::WithCallbackMethod_CallAudio<
                                        TelestraGrpc::Service>>>>>>>>>>>>>;

class TelestraService final : public TelestraCallbackBase {
 public:
  // `env.registry` and everything else in `env` must outlive the service.
  TelestraService(StreamEnvironment env, BearerAuth auth);

  grpc::ServerUnaryReactor* Login(grpc::CallbackServerContext* context,
                                  const telestra::v1::LoginCommand* request,
                                  telestra::v1::LoginResponse* response) override;
  grpc::ServerUnaryReactor* Logout(grpc::CallbackServerContext* context,
                                   const telestra::v1::LogoutCommand* request,
                                   telestra::v1::LogoutResponse* response) override;
  grpc::ServerUnaryReactor* MakeCall(grpc::CallbackServerContext* context,
                                     const telestra::v1::MakeCallCommand* request,
                                     telestra::v1::CallReturn* response) override;
  grpc::ServerUnaryReactor* AnswerCall(grpc::CallbackServerContext* context,
                                       const telestra::v1::AnswerCallCommand* request,
                                       telestra::v1::AnswerCallResponse* response) override;
  grpc::ServerUnaryReactor* SwitchCall(grpc::CallbackServerContext* context,
                                       const telestra::v1::SwitchCallCommand* request,
                                       telestra::v1::SwitchCallResponse* response) override;
  grpc::ServerUnaryReactor* HangupCall(grpc::CallbackServerContext* context,
                                       const telestra::v1::HangupCallCommand* request,
                                       telestra::v1::HangupCallResponse* response) override;
  grpc::ServerUnaryReactor* SendDtmf(grpc::CallbackServerContext* context,
                                     const telestra::v1::SendDtmfCommand* request,
                                     telestra::v1::SendDtmfResponse* response) override;
  grpc::ServerUnaryReactor* TransferCall(grpc::CallbackServerContext* context,
                                         const telestra::v1::TransferCallCommand* request,
                                         telestra::v1::TransferCallResponse* response) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const telestra::v1::GetStatusCommand* request,
                                      telestra::v1::Status* response) override;
  grpc::ServerUnaryReactor* ListAccounts(grpc::CallbackServerContext* context,
                                         const telestra::v1::ListAccountsRequest* request,
                                         telestra::v1::ListAccountsResponse* response) override;

  grpc::ServerWriteReactor<telestra::v1::Event>* Subscribe(
      grpc::CallbackServerContext* context, const telestra::v1::SubscribeRequest* request) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Session(
      grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<telestra::v1::CallAudioRequest, telestra::v1::CallAudioResponse>*
  CallAudio(grpc::CallbackServerContext* context) override;

 private:
  // The bearer-token check, counted when it fails.
  absl::Status Admit(grpc::CallbackServerContext* context);

  // Finishes a unary call with Admit() and then `run`'s status.
  template <typename Run>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, const char* rpc, Run run);

  const StreamEnvironment env_;
  const BearerAuth auth_;
};

}  // namespace telestra::gateway
