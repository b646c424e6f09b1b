#include "backend/gateway_backend.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

// What the SIP stack reports (SipStackListener, on the SIP thread): each
// report becomes a state change of the call or account and its event.

namespace telestra::backend {

void GatewayBackend::UpdateHoldState(CallRecord& call, bool was_locally_held) {
  if (!call.Established()) return;
  call.state = call.local_hold    ? telestra::v1::CALL_STATE_HELD
               : call.remote_hold ? telestra::v1::CALL_STATE_REMOTE_HELD
                                  : telestra::v1::CALL_STATE_ACTIVE;
  NoteCall(call);
  if (call.local_hold == was_locally_held) return;
  telestra::v1::Event event;
  if (call.local_hold) {
    event.mutable_call_held()->set_account(call.account);
    event.mutable_call_held()->set_call_id(call.id);
  } else {
    event.mutable_call_resumed()->set_account(call.account);
    event.mutable_call_resumed()->set_call_id(call.id);
  }
  hub_->Broadcast(std::move(event));
}

int64_t GatewayBackend::OnIncomingCall(const std::string& account, const std::string& caller,
                                       const std::string& caller_name) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = accounts_.find(account);
  if (it == accounts_.end() || it->second.status != 200) return -1;
  const int64_t call_id =
      AddCall(account, telestra::v1::CALL_DIRECTION_INCOMING, caller, caller_name).id;
  telestra::v1::Event event;
  auto* incoming = event.mutable_call_incoming();
  incoming->set_account(account);
  incoming->set_call_id(call_id);
  incoming->set_caller(caller);
  incoming->set_caller_name(caller_name);
  hub_->Broadcast(std::move(event));
  spdlog::info("call {}: incoming for {} from {}", call_id, account, caller);
  return call_id;
}

void GatewayBackend::OnCallProgress(int64_t call_id, int code, bool early_media) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second.Established()) return;
  CallRecord& call = it->second;
  if (call.state == telestra::v1::CALL_STATE_DIALING) {  // call-ringing: once per call
    call.state = telestra::v1::CALL_STATE_RINGING;
    telestra::v1::Event event;
    auto* ringing = event.mutable_call_ringing();
    ringing->set_account(call.account);
    ringing->set_call_id(call_id);
    ringing->set_code(code);
    hub_->Broadcast(std::move(event));
  }
  if (code == call.progress_code && early_media == call.early_media) return;  // nothing new
  call.progress_code = code;
  call.early_media = early_media;
  telestra::v1::Event event;
  auto* progress = event.mutable_call_progress();
  progress->set_account(call.account);
  progress->set_call_id(call_id);
  progress->set_code(code);
  progress->set_early_media(early_media);
  hub_->Broadcast(std::move(event));
}

void GatewayBackend::OnCallEstablished(int64_t call_id) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second.Established()) return;
  CallRecord& call = it->second;
  call.answering = false;
  call.state = telestra::v1::CALL_STATE_ACTIVE;
  call.answer_time = absl::Now();
  NoteCall(call);
  const double setup = absl::ToDoubleSeconds(call.answer_time - call.start_time);
  (call.direction == telestra::v1::CALL_DIRECTION_INCOMING ? setup_incoming_seconds_
                                                           : setup_outgoing_seconds_)
      .Observe(setup);
  telestra::v1::Event event;
  event.mutable_call_answered()->set_account(call.account);
  event.mutable_call_answered()->set_call_id(call_id);
  hub_->Broadcast(std::move(event));
  spdlog::info("call {}: established", call_id);
}

void GatewayBackend::OnCallHold(int64_t call_id, bool local_hold, bool remote_hold) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  CallRecord& call = it->second;
  // The local hold is what switch-call asked for; the SDP only tells the
  // remote side's part reliably.
  (void)local_hold;
  call.remote_hold = remote_hold;
  UpdateHoldState(call, call.local_hold);
}

void GatewayBackend::OnHoldResult(int64_t call_id, bool hold, int code, const std::string& reason) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  CallRecord& call = it->second;
  if (code >= 200 && code < 300) {
    bool was_held = call.local_hold;
    call.local_hold = hold;
    UpdateHoldState(call, was_held);
    return;
  }
  // Refused: the call stays as it was; a later switch-call may try again.
  if (call.hold_wanted == hold) call.hold_wanted = call.local_hold;
  std::string error = absl::StrCat("Call ", call_id, " could not be ", hold ? "held" : "resumed",
                                   ": ", code, " ", reason);
  spdlog::warn("{}", error);
  hub_->Broadcast(FailEvent(call.account, std::move(error), telestra::v1::FAIL_KIND_UNAVAILABLE));
}

void GatewayBackend::OnDtmfReceived(int64_t call_id, char digit, int duration_ms,
                                    DtmfMethod method) {
  // The audio streams to wake, after the lock (declared first: destroyed last).
  std::vector<std::shared_ptr<CallAudioTap>> wake;
  struct WakeAfterUnlock {
    std::vector<std::shared_ptr<CallAudioTap>>* taps;
    ~WakeAfterUnlock() {
      for (const std::shared_ptr<CallAudioTap>& tap : *taps) tap->RunWakeup();
    }
  } wake_after_unlock{&wake};
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  telestra::v1::Event event;
  auto* dtmf = event.mutable_dtmf();
  dtmf->set_account(it->second.account);
  dtmf->set_call_id(call_id);
  dtmf->set_digit(std::string(1, digit));
  dtmf->set_duration_ms(duration_ms);
  dtmf->set_method(DtmfMethodName(method));
  hub_->Broadcast(std::move(event));
  for (const std::shared_ptr<CallAudioTap>& tap : it->second.audio_taps) {
    if (tap->OnDtmf(digit, duration_ms)) wake.push_back(tap);
  }
}

void GatewayBackend::OnTransferProgress(int64_t call_id, int code) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  telestra::v1::Event event;
  auto* progress = event.mutable_transfer_progress();
  progress->set_account(it->second.account);
  progress->set_call_id(call_id);
  progress->set_code(code);
  hub_->Broadcast(std::move(event));
}

void GatewayBackend::OnTransferFailed(int64_t call_id, int code, const std::string& reason) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  it->second.transferring = false;
  std::string error = absl::StrCat("Transfer of call ", call_id, " failed: ");
  absl::StrAppend(&error, code > 0 ? absl::StrCat(code, " ", reason) : reason);
  spdlog::warn("{}", error);
  hub_->Broadcast(FailEvent(it->second.account, std::move(error),
                            telestra::v1::FAIL_KIND_UNAVAILABLE));
}

int64_t GatewayBackend::OnTransferRequested(int64_t call_id, const std::string& num) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return -1;
  const std::string account = it->second.account;
  auto owner = accounts_.find(account);  // gone when a reload removed it
  if (owner == accounts_.end() || owner->second.status != 200) return -1;
  const int64_t id = AddCall(account, telestra::v1::CALL_DIRECTION_OUTGOING, num).id;
  telestra::v1::Event event;
  auto* started = event.mutable_call_started();
  started->set_account(account);
  started->set_call_id(id);
  started->set_num(num);
  started->set_transferred_from(call_id);
  hub_->Broadcast(std::move(event));
  spdlog::info("call {}: {} calls {}, transferred by the far end of call {}", id, account, num,
               call_id);
  return id;
}

void GatewayBackend::OnDtmfSent(int64_t call_id, uint64_t request, int code,
                                const std::string& reason) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  DtmfRequest done;
  {
    absl::MutexLock lock(&mu_);
    auto it = dtmf_requests_.find(request);
    if (it == dtmf_requests_.end() || it->second.call_id != call_id) return;
    done = std::move(it->second);
    dtmf_requests_.erase(it);
  }
  absl::Status result;
  if (code < 200 || code >= 300) {
    std::string error = absl::StrCat("DTMF to call ", call_id, " failed: ");
    absl::StrAppend(&error, code > 0 ? absl::StrCat(code, " ", reason) : reason);
    spdlog::warn("{}", error);
    result = absl::UnavailableError(std::move(error));
  }
  if (done.on_done) done.on_done(result, done.digits);
}

void GatewayBackend::OnCallEnded(int64_t call_id, int code, const std::string& reason) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  std::string account = it->second.account;
  calls_.erase(it);
  if (journal_ != nullptr) journal_->Drop(call_id);
  ++ended_by_code_[code];
  // Its digits still queued will never be sent: call-ended says so.
  for (auto request = dtmf_requests_.begin(); request != dtmf_requests_.end();) {
    request = request->second.call_id == call_id ? dtmf_requests_.erase(request) : ++request;
  }
  telestra::v1::Event event;
  auto* ended = event.mutable_call_ended();
  ended->set_account(account);
  ended->set_call_id(call_id);
  ended->set_code(code);
  ended->set_reason(reason);
  hub_->Broadcast(std::move(event));
  spdlog::info("call {}: ended ({} {})", call_id, code, reason);
}

void GatewayBackend::OnCallDetails(int64_t call_id, const SipCallDetails& details) {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it != calls_.end()) it->second.sip = details;  // shown by get-status; no event
}

void GatewayBackend::OnCallQuality(int64_t call_id, const MediaStats& stats, bool final) {
  const CallQualityFigures q = QualityOf(stats);
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  const CallRecord& call = it->second;
  if (final) {
    // The call's end follows: its figures go to /metrics (a call that
    // never received audio has none to give).
    if (q.packets_received > 0) {
      loss_ratio_.Observe(q.loss_percent / 100.0);
      jitter_seconds_.Observe(q.jitter_ms / 1000.0);
      if (q.mos) mos_.Observe(*q.mos);
    }
    return;
  }
  if (!call.Established()) return;
  telestra::v1::Event event;
  telestra::v1::CallQuality* quality = event.mutable_call_quality();
  quality->set_account(call.account);
  quality->set_call_id(call_id);
  quality->set_codec(q.codec);
  quality->set_packets_received(q.packets_received);
  quality->set_packets_lost(q.packets_lost);
  quality->set_jitter_ms(q.jitter_ms);
  if (q.rtt_ms) quality->set_rtt_ms(*q.rtt_ms);
  if (q.mos) quality->set_mos(*q.mos);
  hub_->Broadcast(std::move(event));
}

}  // namespace telestra::backend
