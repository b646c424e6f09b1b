#include "gateway/restart_state.h"

#include <string>
#include <utility>

#include "spdlog/spdlog.h"

namespace telestra::gateway {

absl::StatusOr<RestartState> RestartState::Open(const Plan& plan) {
  RestartState state;
  if (plan.state.dir.empty()) return state;
  absl::StatusOr<std::unique_ptr<backend::Journal>> opened =
      backend::Journal::Open(plan.state.dir, static_cast<size_t>(plan.tcp.history_events));
  if (!opened.ok()) return opened.status();
  state.journal_ = *std::move(opened);
  state.restored_ = state.journal_->TakeRestored();
  state.keep_calls_on_stop_ = plan.state.keep_calls_on_stop;
  return state;
}

absl::Status RestartState::RestoreHub(backend::EventHub& hub) {
  if (journal_ == nullptr) return absl::OkStatus();
  if (!restored_.instance.empty()) {
    spdlog::info("journal: instance {}, {} events kept up to seq {} (new seqs from {}), {} calls",
                 restored_.instance, restored_.events.size(), restored_.newest_kept_seq,
                 restored_.last_seq + 1, restored_.calls.size());
    hub.Restore(restored_.instance, restored_.last_seq, restored_.events);
  }
  if (absl::Status status = journal_->SetInstance(hub.instance()); !status.ok()) return status;
  hub.SetHistorySink(
      [journal = journal_.get()](const backend::EventPtr& event) { journal->AppendEvent(event); });
  return absl::OkStatus();
}

void RestartState::ReservePorts(backend::MediaEngine& media) const {
  for (const telestra::state::JournalCall& call : restored_.calls) {
    const int port = call.dialog().local_rtp_port();
    if (call.dialog().phase() != telestra::state::JournalDialog::CONFIRMED || port == 0) continue;
    if (absl::Status reserved = media.ReservePort(port); !reserved.ok()) {
      spdlog::warn("call {}: {}", call.call_id(), std::string(reserved.message()));
    }
  }
}

void RestartState::Attach(backend::SipStack& stack, backend::GatewayBackend& backend) {
  stack.SetJournal(journal_.get());
  backend.set_journal(journal_.get());
}

void RestartState::RestoreCalls(backend::GatewayBackend& backend, backend::SipStack& stack) {
  if (journal_ == nullptr) return;
  stack.RestoreCalls(
      backend.RestoreCalls(restored_.calls, restored_.next_call_id, restored_.events));
  backend.EndCallsLeftOpen(restored_.events, restored_.calls);
  restored_ = backend::Journal::Restored();  // handed over
}

}  // namespace telestra::gateway
