#include "gateway/grpc/stream_registry.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace telestra::gateway {

grpc::Status StreamRegistry::Admit(ClosableStream* stream, const char* rpc,
                                   const std::string& peer) {
  switch (Add(stream)) {
    case Admission::kAdmitted:
      return grpc::Status::OK;
    case Admission::kFull: {
      const uint64_t refused = stats().streams_refused;
      if ((refused & (refused - 1)) == 0) {  // at 1, 2, 4, 8, ...: no flood
        spdlog::warn("gRPC {} stream from {} refused: max-streams ({}) open ({} refused so far)",
                     rpc, peer, max_streams(), refused);
      }
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("Too many streams (max-streams is ", max_streams(), ")"));
    }
    case Admission::kClosed:
      break;
  }
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "Gateway shutting down");
}

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
  out.Gauge("telestra_grpc_streams", "gRPC Subscribe/Session/CallAudio streams open",
            stats.streams);
  out.Counter("telestra_grpc_streams_total", "gRPC Subscribe/Session/CallAudio streams opened",
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
