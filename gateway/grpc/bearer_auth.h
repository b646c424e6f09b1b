#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/string_ref.h"

namespace telestra::gateway {

// The gRPC API's access check ([grpc-settings] token / token-env): a client
// must send the metadata `authorization: Bearer <token>`. The comparison
// takes the same time wherever the presented token differs, and no error
// message or log line ever contains a token.
//
// Thread: any (immutable after construction).
class BearerAuth {
 public:
  // An empty token means no token is required.
  explicit BearerAuth(std::string token) : token_(std::move(token)) {}

  bool required() const { return !token_.empty(); }

  // OK, or UNAUTHENTICATED saying what was wrong (missing metadata, not a
  // bearer credential, wrong token).
  absl::Status Check(
      const std::multimap<grpc::string_ref, grpc::string_ref>& client_metadata) const;

  // The same for the value of one `authorization` header (nullptr: absent).
  absl::Status CheckHeader(const absl::string_view* authorization) const;

 private:
  const std::string token_;
};

// True when `presented` equals `expected`. The time taken depends only on
// the length of `presented`, never on where the two differ.
bool ConstantTimeEquals(absl::string_view presented, absl::string_view expected);

}  // namespace telestra::gateway
