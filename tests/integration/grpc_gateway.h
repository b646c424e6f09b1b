// The real gateway binary (GatewayProcess) with a gRPC stub to it.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "proto/telestra_service.grpc.pb.h"
#include "tests/gateway/grpc/grpc_test_client.h"
#include "tests/integration/gateway_process.h"

namespace telestra::testing {

struct GrpcGateway {
  std::unique_ptr<GatewayProcess> process;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<telestra::v1::Telestra::Stub> stub;

  // Starts the gateway and waits until its gRPC port accepts connections.
  static absl::StatusOr<GrpcGateway> Start(const GatewayOptions& options,
                                           const ChannelOptions& channel = {});

  // Another stub, e.g. with other channel options.
  std::unique_ptr<telestra::v1::Telestra::Stub> NewStub(const ChannelOptions& channel = {}) const;
};

}  // namespace telestra::testing
