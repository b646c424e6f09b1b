#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "backend/event_hub.h"
#include "backend/gateway_backend.h"
#include "backend/media_engine.h"
#include "backend/sip_stack.h"
#include "backend/state/journal.h"
#include "gateway/plan/plan.h"

namespace telestra::gateway {

// What a restart carries over (`[state-settings] dir`, docs/restart.md):
// the journal and what it read of the last run, handed to each part while
// main builds it, in this order: Open, RestoreHub (before the hub
// delivers), ReservePorts (before the media engine starts), Attach (before
// the SIP stack starts), RestoreCalls (after it started, before the
// accounts register). Without `dir` each step does nothing.
// Thread: main's.
class RestartState {
 public:
  static absl::StatusOr<RestartState> Open(const Plan& plan);

  // The hub goes on with the last run's instance, seqs and history, and
  // from now on every event it keeps is written to the journal.
  absl::Status RestoreHub(backend::EventHub& hub);
  // Keeps the restored calls' RTP ports out of the free pairs.
  void ReservePorts(backend::MediaEngine& media) const;
  // The stack and the backend note their calls in the journal.
  void Attach(backend::SipStack& stack, backend::GatewayBackend& backend);
  // The last run's calls go on, or end "Gateway restarted".
  void RestoreCalls(backend::GatewayBackend& backend, backend::SipStack& stack);

  // SIGTERM stops without ending calls or unregistering.
  bool keep_calls_on_stop() const { return journal_ != nullptr && keep_calls_on_stop_; }
  // Null without `dir`.
  const backend::Journal* journal() const { return journal_.get(); }

 private:
  std::unique_ptr<backend::Journal> journal_;
  backend::Journal::Restored restored_;
  bool keep_calls_on_stop_ = false;
};

}  // namespace telestra::gateway
