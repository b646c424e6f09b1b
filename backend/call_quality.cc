#include "backend/call_quality.h"

#include <algorithm>
#include <cmath>

namespace telestra::backend {
namespace {

// G.107's default basic signal-to-noise ratio less the simultaneous
// impairments (R0 - Is), with the advantage factor A = 0.
constexpr double kBaseRating = 93.2;
// G.711: equipment impairment and packet-loss robustness without PLC
// (G.113 Appendix I).
constexpr double kG711Ie = 0;
constexpr double kG711Bpl = 4.3;

double Round2(double value) { return std::round(value * 100.0) / 100.0; }

}  // namespace

std::string CodecName(int payload_type) {
  switch (payload_type) {
    case 0:
      return "PCMU";
    case 8:
      return "PCMA";
    default:
      return "";
  }
}

double EModelRating(double one_way_delay_ms, double loss_percent) {
  const double d = std::max(0.0, one_way_delay_ms);
  const double id = 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0.0);
  const double ppl = std::clamp(loss_percent, 0.0, 100.0);
  const double ie_eff = kG711Ie + (95.0 - kG711Ie) * ppl / (ppl + kG711Bpl);
  return kBaseRating - id - ie_eff;
}

double MosFromRating(double rating) {
  if (rating <= 0) return 1.0;
  if (rating >= 100) return 4.5;
  // The cubic dips a little below 1 for R under about 6.5: clamped.
  return std::clamp(1.0 + 0.035 * rating + 7e-6 * rating * (rating - 60.0) * (100.0 - rating), 1.0,
                    4.5);
}

double OneWayDelayMs(std::optional<double> rtt_ms, int jitter_buffer_ms) {
  return rtt_ms.value_or(0.0) / 2.0 + jitter_buffer_ms;
}

CallQualityFigures QualityOf(const MediaStats& stats) {
  CallQualityFigures q;
  q.codec = CodecName(stats.negotiated_payload_type);
  q.packets_received = stats.packets_received;
  q.packets_lost = stats.packets_lost;
  q.jitter_ms = Round2(stats.jitter_ms);
  if (stats.rtt_ms) q.rtt_ms = Round2(*stats.rtt_ms);
  const uint64_t expected = stats.packets_received + stats.packets_lost;
  if (expected > 0) {
    const double late = static_cast<double>(std::min(stats.packets_late, stats.packets_received));
    q.loss_percent =
        100.0 * (static_cast<double>(stats.packets_lost) + late) / static_cast<double>(expected);
  }
  if (stats.packets_received > 0) {
    q.mos = Round2(MosFromRating(
        EModelRating(OneWayDelayMs(stats.rtt_ms, stats.jitter_buffer_ms), q.loss_percent)));
  }
  return q;
}

}  // namespace telestra::backend
