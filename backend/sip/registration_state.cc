#include "backend/sip/registration_state.h"

#include <algorithm>
#include <cmath>

namespace telestra::backend {

std::optional<RegistrationState> NextRegistrationState(RegistrationState state,
                                                       RegistrationEvent event) {
  using S = RegistrationState;
  using E = RegistrationEvent;
  const bool in_flight = state == S::kRegistering || state == S::kRefreshing;
  switch (event) {
    case E::kRegister:
      if (state == S::kUnregistered || state == S::kRegistering || state == S::kRetrying ||
          state == S::kFailed) {
        return S::kRegistering;
      }
      return std::nullopt;
    case E::kOk:
      if (in_flight) return S::kRegistered;
      return std::nullopt;
    case E::kRefresh:
      if (state == S::kRegistered) return S::kRefreshing;
      return std::nullopt;
    case E::kTransientFailure:
      if (in_flight) return S::kRetrying;
      return std::nullopt;
    case E::kFailure:
      if (in_flight) return S::kFailed;
      return std::nullopt;
    case E::kUnregister:
      if (state == S::kRegistered || state == S::kRefreshing) return S::kUnregistering;
      return std::nullopt;
    case E::kUnregisterDone:
      if (state == S::kUnregistering) return S::kUnregistered;
      return std::nullopt;
  }
  return std::nullopt;
}

const char* RegistrationStateName(RegistrationState state) {
  switch (state) {
    case RegistrationState::kUnregistered:
      return "unregistered";
    case RegistrationState::kRegistering:
      return "registering";
    case RegistrationState::kRegistered:
      return "registered";
    case RegistrationState::kRefreshing:
      return "refreshing";
    case RegistrationState::kRetrying:
      return "retrying";
    case RegistrationState::kFailed:
      return "failed";
    case RegistrationState::kUnregistering:
      return "unregistering";
  }
  return "?";
}

double RetryDelaySeconds(int failures, int min_seconds, int max_seconds, double jitter) {
  double base =
      std::min<double>(max_seconds, min_seconds * std::pow(2.0, std::min(failures - 1, 20)));
  return base * jitter;
}

}  // namespace telestra::backend
