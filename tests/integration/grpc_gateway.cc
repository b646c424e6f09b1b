#include "tests/integration/grpc_gateway.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "tests/support/ports.h"

namespace telestra::testing {

absl::StatusOr<GrpcGateway> GrpcGateway::Start(const GatewayOptions& options,
                                               const ChannelOptions& channel) {
  GrpcGateway gateway;
  absl::StatusOr<std::unique_ptr<GatewayProcess>> process = GatewayProcess::Start(options);
  if (!process.ok()) return process.status();
  gateway.process = *std::move(process);
  // The gRPC server starts right after the native port.
  if (!WaitForTcpPort(gateway.process->grpc_port(), absl::Seconds(10))) {
    return absl::UnavailableError(
        absl::StrCat("gateway did not open its gRPC port; log:\n", gateway.process->ReadLog()));
  }
  gateway.channel = MakeChannel(gateway.process->grpc_port(), channel);
  gateway.stub = telestra::v1::Telestra::NewStub(gateway.channel);
  return gateway;
}

std::unique_ptr<telestra::v1::Telestra::Stub> GrpcGateway::NewStub(
    const ChannelOptions& channel) const {
  return telestra::v1::Telestra::NewStub(MakeChannel(process->grpc_port(), channel));
}

}  // namespace telestra::testing
