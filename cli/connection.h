// The client's side of the gateway's gRPC port: one channel and stub, the
// bearer token and deadlines on every call, and what a failed call means
// for the user (cli/errors.h).
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/command_line.h"
#include "grpcpp/grpcpp.h"
#include "proto/telestra_service.grpc.pb.h"

namespace telestra::cli {

// Thread: any (gRPC's channel and stub are thread-safe).
class GatewayConnection {
 public:
  // Reads the CA file when TLS is asked for (a UsageError when it cannot be
  // read). Connects lazily: nothing goes on the network yet.
  static absl::StatusOr<std::unique_ptr<GatewayConnection>> Open(const ConnectionOptions& options);

  telestra::v1::Telestra::Stub& stub() { return *stub_; }
  const ConnectionOptions& options() const { return options_; }

  // The token, and a deadline `timeout` from now.
  void PrepareUnary(grpc::ClientContext& context) const;
  // The token only: a stream lasts as long as it is wanted.
  void PrepareStream(grpc::ClientContext& context) const;

  // Before a stream: waits up to `timeout` until the channel is connected,
  // or has failed to connect (the stream then fails at once and says why).
  // UnreachableError when it is still trying at the deadline.
  absl::Status WaitForConnection();

  // A failed call's status as the client's error: UnreachableError naming
  // the address when the call never reached the gateway (no connection, or
  // no answer in time), otherwise the gateway's own code and message.
  absl::Status Failure(const grpc::Status& status);

 private:
  GatewayConnection(ConnectionOptions options, std::shared_ptr<grpc::Channel> channel);

  const ConnectionOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<telestra::v1::Telestra::Stub> stub_;
};

}  // namespace telestra::cli
