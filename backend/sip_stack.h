#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/account_config.h"

namespace telestra::backend {

// What the SIP stack reports back to the backend.
// Thread: called on the SIP thread only; must not block.
class SipStackListener {
 public:
  virtual ~SipStackListener() = default;

  // The registration of `account` (attempt `generation`, as given to
  // Register/Unregister) changed. `status` is 100 while a first attempt is
  // in flight, 200 when registered, 0 when unregistered, otherwise the final
  // SIP status of the failed REGISTER (401, 403, 408, 503 ...).
  // `retrying` is true when the stack will try again by itself (backoff).
  virtual void OnRegistration(const std::string& account, uint64_t generation,
                              int status, const std::string& reason,
                              bool retrying) = 0;
};

// The backend's view of a SIP user agent. The only implementation over a
// real stack is SofiaSipStack (backend/sip/); tests use fakes.
// Thread: every method may be called from any thread; work is posted to the
// stack's own thread and results come back through SipStackListener.
class SipStack {
 public:
  virtual ~SipStack() = default;

  // Binds the SIP port and starts the stack's thread.
  virtual absl::Status Start(SipStackListener* listener) = 0;

  // Registers `account` with its credentials, replacing any earlier
  // registration of the same account (which is unregistered first).
  virtual void Register(const AccountConfig& account, uint64_t generation) = 0;

  // Unregisters (REGISTER Expires: 0) and forgets the account.
  virtual void Unregister(const std::string& account, uint64_t generation) = 0;

  // Unregisters every account and stops the stack, waiting at most
  // `deadline`. Blocks. After it returns no listener call is made.
  virtual void Shutdown(absl::Duration deadline) = 0;

  // The local SIP port actually bound (after Start).
  virtual int port() const = 0;
};

}  // namespace telestra::backend
