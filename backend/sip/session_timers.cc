#include "backend/sip/sofia_sip_stack_impl.h"

// RFC 4028 session timers on calls: the refresher sends UPDATE (or a
// re-INVITE when the far end does not allow UPDATE) at half the interval;
// the other side, when no refresh came in time, ends the call with BYE and
// "Session expired". What each side agreed is session_timer.h's.

namespace telestra::backend {

TimerAnswer SofiaSipStack::Impl::TimerFor(const sip_t* sip) const {
  const sip_session_expires_t* se = sip->sip_session_expires;
  return AnswerTimer(config_.session_expires, config_.session_min_se, se != nullptr,
                     se != nullptr ? se->x_delta : 0,
                     se != nullptr && se->x_refresher != nullptr ? se->x_refresher : "",
                     sip->sip_supported != nullptr && sip_has_feature(sip->sip_supported, "timer"));
}

int SofiaSipStack::Impl::RefuseTooSmall(nta_incoming_t* irq, const TimerAnswer& timer) {
  nta_incoming_treply(irq, 422, "Session Interval Too Small",
                      SIPTAG_MIN_SE_STR(std::to_string(timer.min_se).c_str()),
                      SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
  return 422;
}

// (Re)starts the call's session timer for `timer` (none: stopped).
void SofiaSipStack::Impl::StartSessionTimer(CallLeg* leg, SessionTimer timer) {
  TELESTRA_ASSERT_ON(owner_);
  SipThread::DestroyTimer(leg->session_timer);
  leg->session = timer;
  if (timer.interval <= 0 || leg->state == CallState::kTerminated) return;
  leg->session_timer =
      thread_.StartTimer(&Impl::OnSessionTimer, leg,
                         timer.we_refresh ? RefreshAfterMs(timer.interval)
                                          : ExpireAfterMs(timer.interval));
}

void SofiaSipStack::Impl::OnSessionTimer(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* leg = static_cast<CallLeg*>(static_cast<void*>(arg));
  Impl* self = leg->impl;
  SipThread::DestroyTimer(leg->session_timer);
  if (leg->state != CallState::kConfirmed) return;
  if (leg->session.we_refresh) {
    self->SendRefresh(leg);
    return;
  }
  spdlog::warn("call {}: no session refresh in {} s: the session expired", leg->id,
               leg->session.interval);
  leg->end_code = 0;
  leg->end_reason = "Session expired";
  self->SendBye(leg);
}

// Our refresh: UPDATE without SDP, or a re-INVITE with our SDP unchanged.
void SofiaSipStack::Impl::SendRefresh(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  if (leg->refresh != nullptr || leg->leg == nullptr) return;
  const bool invite = !leg->peer_allows_update;
  if (invite && (leg->invite != nullptr || leg->irq != nullptr)) {
    // An INVITE transaction is running (its 2xx refreshes too): soon again.
    leg->session_timer = thread_.StartTimer(&Impl::OnSessionTimer, leg, 2000);
    return;
  }
  const std::string se = absl::StrCat(leg->session.interval, ";refresher=uac");
  const std::string sdp = invite ? LocalSdp(leg, leg->sdp_body) : "";
  leg->refresh = nta_outgoing_tcreate(
      leg->leg, &Impl::OnRefreshResponse, Magic<nta_outgoing_magic_t>(leg), nullptr,
      invite ? sip_method_invite : sip_method_update, invite ? "INVITE" : "UPDATE", nullptr,
      SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()), SIPTAG_USER_AGENT_STR(kUserAgent),
      SIPTAG_SUPPORTED_STR("timer"), SIPTAG_SESSION_EXPIRES_STR(se.c_str()),
      TAG_IF(leg->requested_min_se > 0,
             SIPTAG_MIN_SE_STR(std::to_string(leg->requested_min_se).c_str())),
      TAG_IF(invite, SIPTAG_CONTENT_TYPE_STR(kSdpType)),
      TAG_IF(invite, SIPTAG_PAYLOAD_STR(sdp.c_str())), TAG_END());
  if (leg->refresh == nullptr) {
    StartSessionTimer(leg, leg->session);  // try again in half an interval
    return;
  }
  leg->refresh_is_invite = invite;
  spdlog::debug("call {}: session refresh ({})", leg->id, invite ? "re-INVITE" : "UPDATE");
  thread_.AwaitAnswer();
}

int SofiaSipStack::Impl::OnRefreshResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                           const sip_t* sip) {
  auto* leg = Magic<CallLeg>(magic);
  Impl* self = leg->impl;
  const int status = StatusOf(orq, sip);
  if (status < 200 || orq != leg->refresh) return 0;
  if (leg->refresh_is_invite && status < 300) self->SendAck(leg, orq);
  DestroyOutgoing(leg->refresh);
  if (leg->state != CallState::kConfirmed) return 0;
  if (status < 300) {
    if (leg->refresh_is_invite) self->OnAnswer(leg, SdpOf(sip), leg->local_hold, false);
    const sip_session_expires_t* se = sip != nullptr ? sip->sip_session_expires : nullptr;
    SessionTimer timer = leg->session;  // no Session-Expires: as it was, we refresh
    if (se != nullptr) {
      timer = TimerFromAnswer(true, se->x_delta, se->x_refresher != nullptr ? se->x_refresher : "");
    }
    self->StartSessionTimer(leg, timer);
    return 0;
  }
  if (status == 422 && sip != nullptr && sip->sip_min_se != nullptr) {
    leg->requested_min_se = static_cast<int>(std::min<unsigned long>(sip->sip_min_se->min_delta, 86400));
    leg->session.interval = std::max(leg->session.interval, leg->requested_min_se);
    self->SendRefresh(leg);
    return 0;
  }
  if (status == 408 || status == 481) {  // the dialog is gone (RFC 4028 10)
    leg->end_code = status;
    leg->end_reason = PhraseOf(sip);
    self->SendBye(leg);
    return 0;
  }
  if (!leg->refresh_is_invite && (status == 405 || status == 501)) {
    leg->peer_allows_update = false;  // UPDATE not taken after all: re-INVITE
    self->SendRefresh(leg);
    return 0;
  }
  spdlog::warn("call {}: session refresh refused: {} {}", leg->id, status, PhraseOf(sip));
  self->StartSessionTimer(leg, leg->session);  // again in half an interval
  return 0;
}

}  // namespace telestra::backend
