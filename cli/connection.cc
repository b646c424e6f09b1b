#include "cli/connection.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cli/errors.h"

namespace telestra::cli {
namespace {

std::chrono::system_clock::time_point DeadlineAfter(absl::Duration timeout) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout);
}

}  // namespace

absl::StatusOr<std::unique_ptr<GatewayConnection>> GatewayConnection::Open(
    const ConnectionOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.ca_path.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    std::ifstream file(options.ca_path, std::ios::binary);
    std::stringstream pem;
    pem << file.rdbuf();
    if (!file || pem.str().empty()) {
      return UsageError(
          absl::StrCat("cannot read the CA certificate ", options.ca_path, " (--ca, TELESTRA_CA)"));
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pem.str();
    credentials = grpc::SslCredentials(ssl);
  }
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(options.address, credentials);
  return std::unique_ptr<GatewayConnection>(new GatewayConnection(options, std::move(channel)));
}

GatewayConnection::GatewayConnection(ConnectionOptions options,
                                     std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(telestra::v1::Telestra::NewStub(channel_)) {}

void GatewayConnection::PrepareStream(grpc::ClientContext& context) const {
  if (!options_.token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
}

void GatewayConnection::PrepareUnary(grpc::ClientContext& context) const {
  PrepareStream(context);
  context.set_deadline(DeadlineAfter(options_.timeout));
}

absl::Status GatewayConnection::WaitForConnection() {
  const auto deadline = DeadlineAfter(options_.timeout);
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY && state != GRPC_CHANNEL_TRANSIENT_FAILURE) {
    if (!channel_->WaitForStateChange(state, deadline)) {
      return UnreachableError(absl::StrCat("cannot reach the gateway at ", options_.address,
                                           ": no connection within ",
                                           absl::FormatDuration(options_.timeout)));
    }
    state = channel_->GetState(/*try_to_connect=*/true);
  }
  return absl::OkStatus();
}

absl::Status GatewayConnection::Failure(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const bool connected = channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return UnreachableError(
        absl::StrCat(connected ? "no answer from the gateway at " : "cannot reach the gateway at ",
                     options_.address, " within ", absl::FormatDuration(options_.timeout)));
  }
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && !connected) {
    return UnreachableError(absl::StrCat("cannot reach the gateway at ", options_.address, ": ",
                                         status.error_message()));
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace telestra::cli
