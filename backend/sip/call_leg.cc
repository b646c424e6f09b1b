#include "backend/sip/call_leg.h"

namespace telestra::backend {

std::optional<CallState> NextCallState(CallState state, CallEvent event) {
  using S = CallState;
  using E = CallEvent;
  if (state == S::kTerminated) {
    if (event == E::kBye) return S::kTerminated;
    return std::nullopt;
  }
  switch (event) {
    case E::kEnd:
      return S::kTerminated;
    case E::kProvisional:
      if (state == S::kCalling || state == S::kEarly) return S::kEarly;
      if (state == S::kHangingUp) return S::kHangingUp;
      return std::nullopt;
    case E::kAnswer:
      if (state == S::kIncoming) return S::kAnswering;
      return std::nullopt;
    case E::kConfirm:
      if (state == S::kCalling || state == S::kEarly || state == S::kAnswering ||
          state == S::kHangingUp) {
        return S::kConfirmed;
      }
      return std::nullopt;
    case E::kHangup:
      if (state == S::kCalling || state == S::kEarly || state == S::kIncoming ||
          state == S::kAnswering) {
        return S::kHangingUp;
      }
      return std::nullopt;
    case E::kBye:
      if (state == S::kConfirmed || state == S::kTerminating) return S::kTerminating;
      return std::nullopt;
  }
  return std::nullopt;
}

const char* CallStateName(CallState state) {
  switch (state) {
    case CallState::kCalling:
      return "calling";
    case CallState::kEarly:
      return "early";
    case CallState::kIncoming:
      return "incoming";
    case CallState::kAnswering:
      return "answering";
    case CallState::kHangingUp:
      return "hanging-up";
    case CallState::kConfirmed:
      return "confirmed";
    case CallState::kTerminating:
      return "terminating";
    case CallState::kTerminated:
      return "terminated";
  }
  return "?";
}

}  // namespace telestra::backend
