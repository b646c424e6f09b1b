#include "gateway/grpc/grpc_server.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/grpc/telestra_service.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "spdlog/spdlog.h"

namespace telestra::gateway {
namespace {

constexpr char kServiceName[] = "telestra.v1.Telestra";

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) in.setstate(std::ios::failbit);
  if (!in || text.str().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("gRPC API: cannot read the TLS ", what, " file '", path, "'"));
  }
  return text.str();
}

}  // namespace

GrpcServer::GrpcServer(Options options, backend::Backend* backend, backend::EventHub* hub,
                       backend::CommandDispatcher* dispatcher)
    : options_(std::move(options)),
      backend_(backend),
      hub_(hub),
      dispatcher_(dispatcher),
      registry_(options_.max_streams) {}

GrpcServer::~GrpcServer() { Stop(); }

absl::Status GrpcServer::Start() {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  const bool tls = !options_.cert_file.empty();
  if (tls) {
    absl::StatusOr<std::string> cert = ReadFile(options_.cert_file, "certificate");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(options_.key_file, "key");
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
    credentials = grpc::SslServerCredentials(ssl);
  } else {
    credentials = grpc::InsecureServerCredentials();
  }

  StreamEnvironment env;
  env.backend = backend_;
  env.hub = hub_;
  env.dispatcher = dispatcher_;
  env.registry = &registry_;
  env.max_queued_events = options_.max_queued_events;
  env.call_audio_stats = options_.call_audio_stats;
  service_ = std::make_unique<TelestraService>(env, BearerAuth(options_.token));

  // Both are process-wide switches; they take effect for servers built after.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  const std::string address = absl::StrContains(options_.bind, ':')
                                  ? absl::StrCat("[", options_.bind, "]:", options_.port)
                                  : absl::StrCat(options_.bind, ":", options_.port);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, credentials, &port_);
  builder.RegisterService(service_.get());
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  // gRPC sets SO_REUSEPORT by default: a second gateway would then share the
  // port silently instead of failing to start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Find clients that vanished without closing their streams.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("gRPC API: cannot listen on ", address));
  }
  server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  spdlog::info("gRPC API listening on {}:{} ({}, {})", options_.bind, port_,
               tls ? "TLS" : "plaintext",
               options_.token.empty() ? "no token" : "bearer token required");
  if (!options_.token.empty() && !tls && options_.bind != "127.0.0.1" && options_.bind != "::1" &&
      options_.bind != "localhost") {
    spdlog::warn("gRPC API: the bearer token travels in clear text (no cert/key)");
  }
  return absl::OkStatus();
}

void GrpcServer::Stop() {
  if (server_ == nullptr || stopped_) return;
  stopped_ = true;
  server_->GetHealthCheckService()->Shutdown();
  registry_.CloseAll();  // UNAVAILABLE "Gateway shutting down"
  const auto deadline =
      std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options_.shutdown_grace);
  server_->Shutdown(deadline);
  server_->Wait();
  if (!registry_.WaitUntilEmpty(options_.shutdown_grace)) {
    spdlog::warn("gRPC API: streams still open after shutdown");
  }
  GrpcStats stats = registry_.stats();
  spdlog::info(
      "gRPC API stopped: {} streams served, {} refused (max-streams), {} ended as too slow ({} "
      "events undelivered), {} calls refused for the token, {} resume gaps reported",
      stats.streams_opened, stats.streams_refused, stats.slow_stream_drops,
      stats.undelivered_events, stats.unauthenticated, stats.gaps_reported);
}

}  // namespace telestra::gateway
