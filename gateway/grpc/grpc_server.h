#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/backend.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "gateway/grpc/stream_registry.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace telestra::gateway {

struct CallAudioStats;  // gateway/audio/call_audio_session.h

class TelestraService;

// The gRPC front end (docs/grpc-api.md): service telestra.v1.Telestra, the
// standard health service (grpc.health.v1.Health, service names "" and
// "telestra.v1.Telestra") and server reflection, on one port, plaintext or
// TLS, optionally behind a bearer token.
//
// Thread: Start/Stop/stats from any thread (Start before Stop); the RPCs run
// on gRPC's own callback threads.
class GrpcServer {
 public:
  struct Options {
    std::string bind = "127.0.0.1";  // [grpc-settings] bind
    int port = 3551;                 // 0: any free port (see port())
    std::string token;               // "" = no token required
    std::string cert_file;           // PEM; TLS when set (with key_file)
    std::string key_file;
    // Per stream: events queued beyond its initial snapshot and replay
    // before it counts as too slow (RESOURCE_EXHAUSTED).
    size_t max_queued_events = 8192;
    // Subscribe, Session and CallAudio streams open at once, for the whole server; one
    // more ends RESOURCE_EXHAUSTED ([grpc-settings] max-streams).
    size_t max_streams = 1024;
    // Largest request accepted (commands are tiny).
    int max_message_bytes = 65536;
    // How long Stop() lets streams flush before cancelling them.
    absl::Duration shutdown_grace = absl::Seconds(1);
    // The gateway's call audio counters (shared with /ws/audio); may be null.
    CallAudioStats* call_audio_stats = nullptr;
  };

  GrpcServer(Options options, backend::Backend* backend, backend::EventHub* hub,
             backend::CommandDispatcher* dispatcher);
  ~GrpcServer();

  // Reads the TLS files, binds and starts serving. UNAVAILABLE when the
  // port cannot be bound, INVALID_ARGUMENT for unreadable TLS files.
  absl::Status Start();

  // Ends every stream with UNAVAILABLE "Gateway shutting down" (after what
  // is queued for it), marks the health service NOT_SERVING, then shuts
  // the server down, cancelling what is still running after
  // shutdown_grace. Idempotent.
  void Stop();

  int port() const { return port_; }
  // The gateway's instance id (EventHub::instance), sent to stream clients
  // as `telestra-epoch`.
  const std::string& epoch() const { return hub_->instance(); }
  GrpcStats stats() const { return registry_.stats(); }
  // This front end's metrics (docs/grpc-api.md, docs/metrics.md).
  void ExportMetrics(MetricsWriter& out) const { registry_.ExportMetrics(out); }

 private:
  const Options options_;
  backend::Backend* const backend_;
  backend::EventHub* const hub_;
  backend::CommandDispatcher* const dispatcher_;
  StreamRegistry registry_;
  std::unique_ptr<TelestraService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool stopped_ = false;
};

}  // namespace telestra::gateway
