#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace telestra::gateway {

// The gRPC status for a backend error: the same canonical code (absl and
// gRPC share the numbering) and the backend's message, e.g.
// NotFound "Unknown account: x" -> NOT_FOUND "Unknown account: x".
// Thread: any.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace telestra::gateway
