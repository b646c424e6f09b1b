#include "gateway/front_end_options.h"

#include <chrono>
#include <utility>

namespace telestra::gateway {

NativeServer::Options NativeOptionsFrom(const Plan& plan, backend::FdLoop* read_loop) {
  NativeServer::Options options;
  options.bind = plan.tcp.bind;
  options.port = plan.tcp.port;
  options.extended_events = plan.tcp.extended_events;
  options.max_clients = plan.tcp.max_clients;
  options.max_message_bytes = plan.tcp.max_message_bytes;
  options.allow = plan.tcp.allow;
  options.token = plan.tcp.token;
  options.cert = plan.tcp.cert;
  options.key = plan.tcp.key;
  options.idle_timeout = std::chrono::seconds(plan.tcp.idle_timeout);
  options.read_loop = read_loop;
  return options;
}

WebServer::Options WebOptionsFrom(const Plan& plan, std::string web_root) {
  WebServer::Options options;
  options.bind = plan.web.bind;
  options.port = plan.web.port;
  options.token = plan.web.token;
  options.cert = plan.web.cert;
  options.key = plan.web.key;
  options.hosts = plan.web.hosts;
  options.web_root = std::move(web_root);
  options.max_sessions = plan.web.max_sessions;
  options.max_message_bytes = static_cast<size_t>(plan.web.max_message_bytes);
  options.max_queued_bytes = static_cast<size_t>(plan.web.max_queued_bytes);
  options.idle_timeout = std::chrono::seconds(plan.web.idle_timeout_seconds);
  options.header_timeout = std::chrono::seconds(plan.web.header_timeout_seconds);
  options.max_connections_per_address = plan.web.max_connections_per_address;
  return options;
}

GrpcServer::Options GrpcOptionsFrom(const Plan& plan) {
  GrpcServer::Options options;
  options.bind = plan.grpc.bind;
  options.port = plan.grpc.port;
  options.token = plan.grpc.token;
  options.cert_file = plan.grpc.cert;
  options.key_file = plan.grpc.key;
  options.max_queued_events = static_cast<size_t>(plan.grpc.max_queued_events);
  options.max_streams = static_cast<size_t>(plan.grpc.max_streams);
  return options;
}

}  // namespace telestra::gateway
