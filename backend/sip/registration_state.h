#pragma once

#include <optional>

namespace telestra::backend {

// Where one account's registration stands. Pure logic, no sofia:
// registration.cc moves an account only through NextRegistrationState.
//
// Every valid transition and the event causing it:
//
//   kUnregistered, kRegistering, kRetrying, kFailed
//                  --kRegister (login, re-login, backoff timer: REGISTER
//                    sent)----------------------------------> kRegistering
//   kRegistering, kRefreshing
//                  --kOk (2xx: refresh timer set to half the
//                    granted lifetime)-----------------------> kRegistered
//   kRegistered    --kRefresh (refresh timer: REGISTER sent)-> kRefreshing
//   kRegistering, kRefreshing
//                  --kTransientFailure (408, 5xx, 6xx that may
//                    pass, cannot send: backoff timer set,
//                    doubling, +-20% jitter)----------------> kRetrying
//   kRegistering, kRefreshing
//                  --kFailure (a second challenge: wrong
//                    credentials; 403, 404 ...; any failure
//                    while shutting down: reported, not
//                    retried)--------------------------------> kFailed
//   kRegistered, kRefreshing
//                  --kUnregister (logout, a login replacing the
//                    account, shutdown: REGISTER Expires: 0)--> kUnregistering
//   kUnregistering --kUnregisterDone (its answer, whatever it
//                    is, or it could not be sent)-----------> kUnregistered
//
// A first 401/407 answer is not a transition: the REGISTER goes again with
// the credentials, in the same state (at most once per request). Anything
// else is refused (nullopt; the state stays).
enum class RegistrationState {
  kUnregistered,   // no binding and nothing in flight (new, or unregistered)
  kRegistering,    // a REGISTER for a new binding is in flight
  kRegistered,     // bound; the refresh timer runs
  kRefreshing,     // bound; the refreshing REGISTER is in flight
  kRetrying,       // failed for now; the backoff timer runs
  kFailed,         // failed for good (reported); waits for a new login
  kUnregistering,  // bound; the REGISTER with Expires: 0 is in flight
};

enum class RegistrationEvent {
  kRegister,
  kOk,
  kRefresh,
  kTransientFailure,
  kFailure,
  kUnregister,
  kUnregisterDone,
};

// Thread: any (pure).
std::optional<RegistrationState> NextRegistrationState(RegistrationState state,
                                                       RegistrationEvent event);

const char* RegistrationStateName(RegistrationState state);

// The registrar has our binding (or we are removing it): incoming calls for
// the account are taken, and a new login unregisters first.
inline bool IsBound(RegistrationState state) {
  return state == RegistrationState::kRegistered || state == RegistrationState::kRefreshing ||
         state == RegistrationState::kUnregistering;
}

// Seconds to wait before re-registering after `failures` consecutive
// transient failures (>= 1): min * 2^(failures-1), at most max, times
// `jitter` (drawn in [0.8, 1.2) by the caller).
double RetryDelaySeconds(int failures, int min_seconds, int max_seconds, double jitter);

}  // namespace telestra::backend
