#pragma once

#include <cstdint>
#include <string>

namespace telestra::backend {

// RFC 4028 session timers in numbers (pure): what each side of a call
// agreed, who refreshes, and when to act. Intervals in seconds.

// The smallest Session-Expires we accept from a peer (RFC 4028's floor);
// a smaller one gets 422 with Min-SE.
inline constexpr int kMinSessionExpires = 90;

struct SessionTimer {
  int interval = 0;         // 0: no session timer on the call
  bool we_refresh = false;  // we send the refreshes; else we watch for them
};

// Our INVITE asked for a timer; its 2xx said `has_se` Session-Expires
// `delta` with `refresher` ("uac", "uas" or ""). No Session-Expires: the
// far end has no timers (none on the call). No refresher: the UAC (we).
SessionTimer TimerFromAnswer(bool has_se, unsigned long delta, const std::string& refresher);

// A request of the far end (an INVITE, re-INVITE or UPDATE), with us as
// UAS, given our `configured` interval (0: timers off).
struct TimerAnswer {
  bool too_small = false;    // answer 422 with Min-SE: min_se
  int min_se = kMinSessionExpires;
  SessionTimer timer;        // what the call runs with after our 2xx
  std::string header;        // our 2xx's Session-Expires ("" none)
  bool require_timer = false;  // our 2xx says Require: timer
};
TimerAnswer AnswerTimer(int configured, int min_se, bool has_se, unsigned long delta,
                        const std::string& refresher, bool uac_supports_timer);

// When the refresher sends its refresh (half the interval), and when the
// other side gives up on a session that was not refreshed and sends BYE
// (interval - min(32 s, interval / 3), RFC 4028 10). Milliseconds.
int64_t RefreshAfterMs(int interval);
int64_t ExpireAfterMs(int interval);

}  // namespace telestra::backend
