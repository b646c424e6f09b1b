#include "backend/sip/sofia_sip_stack_impl.h"

// How calls end: hang-up (CANCEL, 486, BYE), the answers to BYE and CANCEL,
// RTP timeout, and the release of a call's sofia objects.

namespace telestra::backend {

SofiaSipStack::Impl::CallLeg* SofiaSipStack::Impl::FindLeg(int64_t call_id) {
  TELESTRA_ASSERT_ON(owner_);
  auto it = calls_.find(call_id);
  return it == calls_.end() ? nullptr : it->second.get();
}

// Drops the call's sofia objects and timers.
void SofiaSipStack::Impl::ReleaseSip(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  SipThread::DestroyTimer(leg->cancel_timer);
  SipThread::DestroyTimer(leg->invite_timer);
  StopRinging(leg);
  DestroyOutgoing(leg->invite);
  DestroyOutgoing(leg->bye);
  DestroyOutgoing(leg->info);
  leg->info_digits.clear();
  DestroyOutgoing(leg->refer);
  SipThread::DestroyTimer(leg->transfer_timer);
  DestroyOutgoing(leg->refresh);
  SipThread::DestroyTimer(leg->session_timer);
  if (leg->irq != nullptr) {
    nta_incoming_destroy(leg->irq);
    leg->irq = nullptr;
  }
  if (leg->leg != nullptr) {
    nta_leg_destroy(leg->leg);
    leg->leg = nullptr;
  }
}

// The call is over: its end is reported (once), its media closed, and
// its state and sofia objects freed once the current callback is done
// (sofia may still be using them).
// `reason` by value: callers pass the leg's own end_reason.
void SofiaSipStack::Impl::EndLeg(int64_t call_id, int code, std::string reason) {
  TELESTRA_ASSERT_ON(owner_);
  auto it = calls_.find(call_id);
  bool reported = false;
  if (it != calls_.end()) {
    std::shared_ptr<CallLeg> leg(std::move(it->second));
    calls_.erase(it);
    reported = leg->state == CallState::kTerminated;
    Move(leg.get(), CallEvent::kEnd);
    SipThread::DestroyTimer(leg->cancel_timer);
    SipThread::DestroyTimer(leg->invite_timer);
    SipThread::DestroyTimer(leg->transfer_timer);
    SipThread::DestroyTimer(leg->session_timer);
    leg->transferring = false;
    // A call a REFER asked for that never got up: the referrer hears how.
    NotifyReferrer(leg.get(), code >= 300 ? code : 487, code >= 300 ? reason : "Request Terminated");
    StopRinging(leg.get());
    CloseMedia(leg.get());
    // Released after the current callback (sofia may still be using
    // the dialog); callbacks until then see end_reported.
    thread_.Defer([this, leg] { ReleaseSip(leg.get()); });
  }
  if (!reported) listener_->OnCallEnded(call_id, code, reason);
  MaybeFinishShutdown();
}

// The call was reported ended early (CANCEL unanswered) but its INVITE
// transaction still runs: it stays in calls_ until the transaction ends.
void SofiaSipStack::Impl::ReportEnded(CallLeg* leg, int code, const std::string& reason) {
  TELESTRA_ASSERT_ON(owner_);
  if (leg->state == CallState::kTerminated) return;
  Move(leg, CallEvent::kEnd);
  SipThread::DestroyTimer(leg->invite_timer);
  StopRinging(leg);
  CloseMedia(leg);
  listener_->OnCallEnded(leg->id, code, reason);
  MaybeFinishShutdown();
}

// No final answer to the INVITE we cancelled (the proxy or the far end
// is gone): the call is over for the application now; its RTP ports are
// freed. The transaction runs out on its own (64 x T1).
void SofiaSipStack::Impl::OnCancelTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* leg = static_cast<CallLeg*>(static_cast<void*>(arg));
  SipThread::DestroyTimer(leg->cancel_timer);
  if (IsEstablished(leg->state) || leg->state == CallState::kTerminated) return;
  spdlog::warn("call {}: no answer to CANCEL in {} s; reported as ended", leg->id,
               absl::ToInt64Seconds(kCancelWait));
  leg->impl->ReportEnded(leg, 487, "No answer to CANCEL");
}

void SofiaSipStack::Impl::SendBye(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  if (leg->bye != nullptr || leg->leg == nullptr) return;
  Move(leg, CallEvent::kBye);
  leg->bye = nta_outgoing_tcreate(leg->leg, &Impl::OnByeResponse, Magic<nta_outgoing_magic_t>(leg),
                                  nullptr, SIP_METHOD_BYE, nullptr,
                                  SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
  if (leg->bye == nullptr) {
    EndLeg(leg->id, leg->end_code, leg->end_reason);
    return;
  }
  thread_.AwaitAnswer();
}

int SofiaSipStack::Impl::OnByeResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                       const sip_t* sip) {
  auto* leg = Magic<CallLeg>(magic);
  if (StatusOf(orq, sip) < 200 || orq != leg->bye) return 0;
  DestroyOutgoing(leg->bye);
  leg->impl->EndLeg(leg->id, leg->end_code, leg->end_reason);
  return 0;
}

void SofiaSipStack::Impl::HangupCall(int64_t call_id) {
  TELESTRA_ASSERT_ON(owner_);
  CallLeg* leg = FindLeg(call_id);
  if (leg == nullptr || leg->state == CallState::kTerminated || IsHangingUp(leg->state)) return;
  if (leg->end_reason.empty()) leg->end_reason = "Hung up";
  if (IsEstablished(leg->state)) {
    SendBye(leg);
    return;
  }
  const CallState before = leg->state;
  Move(leg, CallEvent::kHangup);
  if (leg->outgoing) {
    if (leg->invite != nullptr && before == CallState::kCalling) {
      // Only the proxy's 100 so far. A CANCEL that reaches a proxy while
      // it is still relaying the far end's 180 can be lost there
      // (Kamailio: answered 200, never relayed; the far end rings on),
      // so it waits for the far end's first provisional response, or
      // kCancelHold.
      spdlog::debug("call {}: CANCEL waits for the far end's first provisional response", leg->id);
      leg->cancel_held = true;
      leg->cancel_timer =
          thread_.StartTimer(&Impl::OnCancelHold, leg, absl::ToInt64Milliseconds(kCancelHold));
      return;
    }
    SendCancel(leg);
  } else if (before != CallState::kAnswering) {
    RespondToInvite(leg, 486, "Busy Here");
  }
  // Answered, not yet ACKed: the ACK brings the BYE (OnEstablished).
}

// CANCELs the call's INVITE, if still pending, and gives the far end
// kCancelWait to answer it.
void SofiaSipStack::Impl::SendCancel(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  leg->cancel_held = false;
  SipThread::DestroyTimer(leg->cancel_timer);
  if (leg->invite != nullptr) {
    nta_outgoing_cancel(leg->invite);
    thread_.AwaitAnswer();
  }
  leg->cancel_timer =
      thread_.StartTimer(&Impl::OnCancelTimeout, leg, absl::ToInt64Milliseconds(kCancelWait));
}

void SofiaSipStack::Impl::OnCancelHold(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* leg = static_cast<CallLeg*>(static_cast<void*>(arg));
  if (leg->cancel_held) leg->impl->SendCancel(leg);
}

void SofiaSipStack::Impl::OnRtpTimeout(int64_t call_id) {
  TELESTRA_ASSERT_ON(owner_);
  CallLeg* leg = FindLeg(call_id);
  if (leg == nullptr || IsHangingUp(leg->state) || leg->state == CallState::kTerminated) return;
  spdlog::warn("call {}: no RTP received for {} s, hanging up", call_id, rtp_.rtp_timeout);
  leg->end_reason = "RTP timeout";
  if (IsEstablished(leg->state)) {
    SendBye(leg);
  } else {
    Move(leg, CallEvent::kHangup);
    EndLeg(call_id, 0, "RTP timeout");
  }
}

}  // namespace telestra::backend
