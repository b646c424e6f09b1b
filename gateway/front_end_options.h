// The front ends' options from a plan (its [tcp-settings], [web-settings],
// [grpc-settings] and the command line's values already applied to it).
#pragma once

#include <string>

#include "backend/fd_loop.h"
#include "gateway/grpc/grpc_server.h"
#include "gateway/native/native_server.h"
#include "gateway/plan/plan.h"
#include "gateway/web/web_server.h"

namespace telestra::gateway {

// `read_loop`: the loop whose thread reads and runs the native commands
// (the SIP thread), or null for the io threads (NativeServer::Options).
NativeServer::Options NativeOptionsFrom(const Plan& plan, backend::FdLoop* read_loop);

// `web_root`: the dashboard's folder ("" = WebSocket only).
WebServer::Options WebOptionsFrom(const Plan& plan, std::string web_root);

GrpcServer::Options GrpcOptionsFrom(const Plan& plan);

}  // namespace telestra::gateway
