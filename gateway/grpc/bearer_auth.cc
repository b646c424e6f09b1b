#include "gateway/grpc/bearer_auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace telestra::gateway {

bool ConstantTimeEquals(absl::string_view presented, absl::string_view expected) {
  // Every byte of `presented` is compared (against `expected` repeated when
  // the lengths differ), and the differences are OR-ed together: no early
  // exit, no data-dependent branch.
  volatile unsigned char difference = presented.size() != expected.size() ? 1 : 0;
  if (expected.empty()) return presented.empty();
  for (size_t i = 0; i < presented.size(); ++i) {
    difference =
        difference | static_cast<unsigned char>(presented[i] ^ expected[i % expected.size()]);
  }
  return difference == 0;
}

absl::Status BearerAuth::CheckHeader(const absl::string_view* authorization) const {
  if (!required()) return absl::OkStatus();
  if (authorization == nullptr) {
    return absl::UnauthenticatedError(
        "Missing bearer token: send metadata 'authorization: Bearer <token>'");
  }
  // RFC 6750: the scheme is case-insensitive, followed by one space.
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization->size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(authorization->substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        "Malformed authorization metadata: expected 'Bearer <token>'");
  }
  absl::string_view presented = absl::StripAsciiWhitespace(authorization->substr(kScheme.size()));
  if (!ConstantTimeEquals(presented, token_)) {
    return absl::UnauthenticatedError("Invalid bearer token");
  }
  return absl::OkStatus();
}

absl::Status BearerAuth::Check(
    const std::multimap<grpc::string_ref, grpc::string_ref>& client_metadata) const {
  if (!required()) return absl::OkStatus();
  auto it = client_metadata.find("authorization");
  if (it == client_metadata.end()) return CheckHeader(nullptr);
  absl::string_view value(it->second.data(), it->second.size());
  return CheckHeader(&value);
}

}  // namespace telestra::gateway
