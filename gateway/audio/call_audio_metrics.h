#pragma once

#include "gateway/audio/call_audio_session.h"
#include "gateway/metrics/metrics.h"

namespace telestra::gateway {

// The call audio streams' counters (docs/metrics.md), at scrape time.
void ExportCallAudioMetrics(const CallAudioStats& stats, MetricsWriter& out);

}  // namespace telestra::gateway
