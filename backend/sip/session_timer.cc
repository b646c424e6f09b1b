#include "backend/sip/session_timer.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace telestra::backend {

SessionTimer TimerFromAnswer(bool has_se, unsigned long delta, const std::string& refresher) {
  SessionTimer timer;
  if (!has_se || delta == 0) return timer;
  timer.interval = static_cast<int>(std::min<unsigned long>(delta, 86400));
  timer.we_refresh = !absl::EqualsIgnoreCase(refresher, "uas");
  return timer;
}

TimerAnswer AnswerTimer(int configured, int min_se, bool has_se, unsigned long delta,
                        const std::string& refresher, bool uac_supports_timer) {
  TimerAnswer answer;
  answer.min_se = min_se;
  if (configured <= 0) return answer;  // timers off: answered without
  if (has_se && delta < static_cast<unsigned long>(min_se)) {
    answer.too_small = true;
    return answer;
  }
  answer.timer.interval =
      has_se ? static_cast<int>(std::min<unsigned long>(delta, 86400)) : configured;
  // The requester's choice; else the UAC when it can refresh, else us.
  bool uac_refreshes = absl::EqualsIgnoreCase(refresher, "uac") ||
                       (refresher.empty() && uac_supports_timer);
  if (absl::EqualsIgnoreCase(refresher, "uas")) uac_refreshes = false;
  answer.timer.we_refresh = !uac_refreshes;
  answer.header =
      absl::StrCat(answer.timer.interval, ";refresher=", uac_refreshes ? "uac" : "uas");
  answer.require_timer = uac_supports_timer && uac_refreshes;
  return answer;
}

int64_t RefreshAfterMs(int interval) { return int64_t{interval} * 1000 / 2; }

int64_t ExpireAfterMs(int interval) {
  const int64_t total = int64_t{interval} * 1000;
  return total - std::min<int64_t>(32000, total / 3);
}

}  // namespace telestra::backend
