#include "backend/gateway_backend.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

// The backend's part of the journal (docs/restart.md): each call as the API
// reports it, noted while it lasts; restored with its old id after a
// restart.

namespace telestra::backend {
namespace {

int64_t UnixMillis(absl::Time time) {
  return time == absl::InfinitePast() ? 0 : absl::ToUnixMillis(time);
}

absl::Time FromUnixMillis(int64_t millis) {
  return millis == 0 ? absl::InfinitePast() : absl::FromUnixMillis(millis);
}

}  // namespace

void GatewayBackend::NoteCall(const CallRecord& call) {
  if (journal_ == nullptr) return;
  telestra::state::JournalCallInfo info;
  info.set_account(call.account);
  info.set_direction(call.direction);
  info.set_state(call.state);
  info.set_peer(call.peer);
  info.set_peer_name(call.peer_name);
  info.set_start_unix_ms(UnixMillis(call.start_time));
  info.set_answer_unix_ms(UnixMillis(call.answer_time));
  journal_->PutInfo(call.id, info);
}

std::vector<RestoredCall> GatewayBackend::RestoreCalls(
    const std::vector<telestra::state::JournalCall>& calls, int64_t next_call_id) {
  std::vector<RestoredCall> out;
  absl::MutexLock lock(&mu_);
  next_call_id_ = std::max(next_call_id_, next_call_id);
  for (const telestra::state::JournalCall& saved : calls) {
    const telestra::state::JournalCallInfo& info = saved.info();
    const telestra::state::JournalDialog& dialog = saved.dialog();
    next_call_id_ = std::max(next_call_id_, saved.call_id() + 1);
    if (dialog.phase() == telestra::state::JournalDialog::PHASE_UNSPECIFIED) {
      // Noted by the backend only (the stack never got to it): nothing on
      // the wire to restore or end.
      if (journal_ != nullptr) journal_->Drop(saved.call_id());
      continue;
    }
    CallRecord& call = calls_[saved.call_id()];
    call.id = saved.call_id();
    call.account = info.account();
    call.direction = static_cast<telestra::v1::CallDirection>(info.direction());
    call.peer = info.peer();
    call.peer_name = info.peer_name();
    call.start_time = FromUnixMillis(info.start_unix_ms());
    if (call.start_time == absl::InfinitePast()) call.start_time = absl::Now();
    call.answer_time = FromUnixMillis(info.answer_unix_ms());
    call.sip.sip_call_id = dialog.dialog_call_id();
    call.sip.remote_uri = dialog.remote_aor();
    if (dialog.phase() == telestra::state::JournalDialog::CONFIRMED) {
      call.local_hold = dialog.local_hold();
      call.hold_wanted = dialog.local_hold();
      call.remote_hold = dialog.remote_hold();
      call.state = telestra::v1::CALL_STATE_ACTIVE;  // established; the hold flags refine it
      UpdateHoldState(call, call.local_hold);
      if (call.answer_time == absl::InfinitePast()) call.answer_time = call.start_time;
    } else {
      call.state = static_cast<telestra::v1::CallState>(info.state());
    }
    RestoredCall restored;
    restored.call_id = call.id;
    restored.dialog = dialog;
    auto account = accounts_.find(call.account);
    if (account != accounts_.end()) restored.account = account->second.config;
    out.push_back(std::move(restored));
  }
  spdlog::info("journal: {} calls of the last run, new call ids from {}", out.size(),
               next_call_id_);
  return out;
}

}  // namespace telestra::backend
