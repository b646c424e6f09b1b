#include "gateway/audio/call_audio_metrics.h"

namespace telestra::gateway {

void ExportCallAudioMetrics(const CallAudioStats& stats, MetricsWriter& out) {
  out.Counter("telestra_call_audio_streams_opened_total",
              "Call audio streams started (gRPC CallAudio and /ws/audio).",
              static_cast<double>(stats.streams_opened.load()));
  out.Counter("telestra_call_audio_streams_refused_total",
              "Call audio streams refused: bad start, unknown call, over max-streams-per-call.",
              static_cast<double>(stats.streams_refused.load()));
  out.Gauge("telestra_call_audio_streams_active", "Call audio streams open now.",
            static_cast<double>(stats.streams_active.load()));
  out.Counter("telestra_call_audio_frames_sent_total",
              "20 ms frames of call audio delivered to clients.",
              static_cast<double>(stats.frames_sent.load()));
  out.Counter("telestra_call_audio_frames_dropped_total",
              "20 ms frames of call audio dropped because a client did not keep up.",
              static_cast<double>(stats.frames_dropped.load()));
  out.Counter("telestra_call_audio_frames_spoken_total",
              "20 ms frames from clients sent to calls.",
              static_cast<double>(stats.frames_spoken.load()));
  out.Counter("telestra_call_audio_underruns_total",
              "Ticks a speaking stream had nothing queued (silence was sent).",
              static_cast<double>(stats.underruns.load()));
  out.Counter("telestra_call_audio_frames_skipped_total",
              "Clients' frames skipped to catch up after a late one (real-time speakers).",
              static_cast<double>(stats.frames_skipped.load()));
}

}  // namespace telestra::gateway
