#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace telestra::gateway {

// The longest status message sent: it travels in the trailers, and a
// client with gRPC's default 8 KiB metadata limit loses its whole
// connection on a larger one (an echoed 60 KiB account name did that).
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// `message` if it fits in kMaxStatusMessageBytes, else its start (cut at a
// UTF-8 character boundary) + "... (N bytes)".
std::string BoundedStatusMessage(absl::string_view message);

// The gRPC status for a backend error: the same canonical code (absl and
// gRPC share the numbering) and the backend's message, e.g.
// NotFound "Unknown account: x" -> NOT_FOUND "Unknown account: x"
// (bounded: BoundedStatusMessage). Thread: any.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace telestra::gateway
