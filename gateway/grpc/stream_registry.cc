#include "gateway/grpc/stream_registry.h"

namespace telestra::gateway {

GrpcStats StreamRegistry::stats() const {
  const SessionRegistry::Stats shared = sessions_.stats();
  GrpcStats stats;
  stats.streams = shared.open;
  stats.streams_opened = shared.admitted;
  stats.streams_refused = shared.refused;
  stats.slow_stream_drops = shared.slow_disconnects;
  stats.undelivered_events = shared.undelivered_events;
  stats.unauthenticated = unauthenticated_;
  stats.gaps_reported = gaps_reported_;
  return stats;
}

void StreamRegistry::ExportMetrics(MetricsWriter& out) const {
  sessions_.ExportMetrics(out);
  const GrpcStats stats = this->stats();
  out.Gauge("telestra_grpc_streams", "gRPC Subscribe/Session streams open", stats.streams);
  out.Counter("telestra_grpc_streams_total", "gRPC Subscribe/Session streams opened",
              stats.streams_opened);
  out.Counter("telestra_grpc_streams_refused_total",
              "gRPC streams ended RESOURCE_EXHAUSTED because max-streams were open",
              stats.streams_refused);
  out.Counter("telestra_grpc_slow_stream_drops_total",
              "gRPC streams ended RESOURCE_EXHAUSTED for not keeping up", stats.slow_stream_drops);
  out.Counter("telestra_grpc_undelivered_events_total", "Events lost with those gRPC streams",
              stats.undelivered_events);
  out.Counter("telestra_grpc_unauthenticated_total",
              "gRPC calls refused for a missing or wrong token", stats.unauthenticated);
  out.Counter("telestra_grpc_resume_gaps_total",
              "Subscribe resumes that could not replay every missed event", stats.gaps_reported);
}

}  // namespace telestra::gateway
