#include "backend/sip/sofia_sip_stack_impl.h"

// Outgoing calls: the INVITE (digest, invite timeout), its answers, hold and
// resume by re-INVITE.

namespace telestra::backend {

// The outgoing call got no final answer in [sip-settings] invite-timeout:
// cancelled, and it ends with 408 "No answer".
void SofiaSipStack::Impl::OnInviteTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* leg = static_cast<CallLeg*>(static_cast<void*>(arg));
  Impl* self = leg->impl;
  SipThread::DestroyTimer(leg->invite_timer);
  if (leg->state != CallState::kCalling && leg->state != CallState::kEarly) return;
  self->stats_.invite_timeouts.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("call {}: no final answer in {} s; cancelled", leg->id,
               self->config_.invite_timeout);
  Move(leg, CallEvent::kHangup);
  leg->end_code = 408;
  leg->end_reason = "No answer";
  if (leg->invite == nullptr) {
    self->EndLeg(leg->id, 408, leg->end_reason);
    return;
  }
  self->SendCancel(leg);
}

void SofiaSipStack::Impl::MakeCall(int64_t call_id, const AccountConfig& account,
                                   const std::string& number, const std::string& replaces,
                                   const std::string& referred_by, int64_t referred_from) {
  TELESTRA_ASSERT_ON(owner_);
  auto owned = std::make_unique<CallLeg>(this);
  CallLeg* leg = owned.get();
  leg->id = call_id;
  leg->account = account;
  leg->outgoing = true;
  leg->state = CallState::kCalling;
  leg->replaces = replaces;
  leg->referred_by = referred_by;
  leg->referred_from = referred_from;
  calls_[call_id] = std::move(owned);
  if (shutting_down_) {
    EndLeg(call_id, 503, "Service shutting down");
    return;
  }
  if (!OpenMedia(leg)) {
    EndLeg(call_id, 503, leg->end_reason);
    return;
  }
  absl::StatusOr<DialTarget> dialed = ParseDialTarget(number, account.server);
  if (!dialed.ok()) {  // checked by the backend (CheckNumber) before
    EndLeg(call_id, 400, std::string(dialed.status().message()));
    return;
  }
  const std::string& target = dialed->uri;
  su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
  sip_call_id_t* sip_call_id = sip_call_id_create(scratch, nullptr);
  if (sip_call_id != nullptr && sip_call_id->i_id != nullptr) leg->sip_call_id = sip_call_id->i_id;
  leg->leg = nta_leg_tcreate(agent_, &Impl::OnDialogRequest, Magic<nta_leg_magic_t>(leg),
                             SIPTAG_FROM_STR(FromFor(account).c_str()),
                             SIPTAG_TO_STR(absl::StrCat("<", target, ">").c_str()),
                             SIPTAG_CALL_ID(sip_call_id), TAG_END());
  su_home_deinit(scratch);
  if (leg->leg == nullptr) {
    EndLeg(call_id, 500, "Cannot create a SIP dialog");
    return;
  }
  nta_leg_tag(leg->leg, nullptr);
  leg->local_header = FromFor(account);
  leg->remote_header = absl::StrCat("<", target, ">");
  leg->target = target;
  leg->remote_aor = target;
  ReportDetails(leg);
  leg->target_in_domain = dialed->in_domain;
  leg->requested_se = config_.session_expires;
  if (config_.invite_timeout > 0) {
    leg->invite_timer =
        thread_.StartTimer(&Impl::OnInviteTimeout, leg, int64_t{config_.invite_timeout} * 1000);
  }
  if (!SendInvite(leg, LocalSdp(leg, sdp_writer_->OfferBody(leg->local_port, false)))) {
    EndLeg(call_id, 400, absl::StrCat("Cannot call ", target));
  }
}

// The call's first INVITE (again after a challenge), with the account's
// cached credentials for a target in its own domain or once the proxy
// has challenged this call. It goes to the
// account's registrar/proxy whatever the Request-URI names (outbound
// proxy), so that credentials only ever reach that proxy.
bool SofiaSipStack::Impl::SendInvite(CallLeg* leg, const std::string& sdp) {
  TELESTRA_ASSERT_ON(owner_);
  su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
  const std::string proxy = ProxyUrl(leg->account);
  // A first INVITE to another domain goes without; after the proxy's
  // challenge (its realm checked) it goes with them, to the proxy.
  const bool with_credentials = leg->target_in_domain || leg->challenges > 0;
  DigestCache* cache = with_credentials ? CachedInviteAuth(leg->account) : nullptr;
  const sip_header_t* credentials =
      cache != nullptr ? cache->Credentials(leg->account, "INVITE", leg->target, scratch) : nullptr;
  leg->invite = nta_outgoing_tcreate(
      leg->leg, &Impl::OnInviteResponse, Magic<nta_outgoing_magic_t>(leg),
      URL_STRING_MAKE(proxy.c_str()), SIP_METHOD_INVITE, URL_STRING_MAKE(leg->target.c_str()),
      SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()), SIPTAG_USER_AGENT_STR(kUserAgent),
      SIPTAG_ALLOW_STR(kAllow), SIPTAG_CONTENT_TYPE_STR(kSdpType), SIPTAG_PAYLOAD_STR(sdp.c_str()),
      TAG_IF(leg->requested_se > 0, SIPTAG_SUPPORTED_STR("timer")),
      TAG_IF(leg->requested_se > 0, SIPTAG_SESSION_EXPIRES_STR(std::to_string(leg->requested_se).c_str())),
      TAG_IF(leg->requested_min_se > 0,
             SIPTAG_MIN_SE_STR(std::to_string(leg->requested_min_se).c_str())),
      TAG_IF(!leg->replaces.empty(), SIPTAG_REPLACES_STR(leg->replaces.c_str())),
      TAG_IF(!leg->referred_by.empty(), SIPTAG_REFERRED_BY_STR(leg->referred_by.c_str())),
      TAG_IF(credentials != nullptr, SIPTAG_HEADER(credentials)), TAG_END());
  su_home_deinit(scratch);
  if (leg->invite == nullptr) return false;
  leg->invite_is_reinvite = false;
  JournalLeg(leg);  // dialing: what a restart needs to cancel it
  thread_.AwaitAnswer();
  return true;
}

// The account's cached INVITE challenge, if made with its current
// credentials.
DigestCache* SofiaSipStack::Impl::CachedInviteAuth(const AccountConfig& account) {
  TELESTRA_ASSERT_ON(owner_);
  auto it = invite_auth_.find(account.name);
  if (it == invite_auth_.end()) return nullptr;
  DigestCache* auth = it->second.get();
  if (!auth->MadeFor(account)) {
    invite_auth_.erase(it);
    return nullptr;
  }
  return auth;
}

// An ACK for the 2xx of our INVITE `orq`.
void SofiaSipStack::Impl::SendAck(CallLeg* leg, nta_outgoing_t* orq) {
  TELESTRA_ASSERT_ON(owner_);
  su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
  sip_cseq_t* cseq = sip_cseq_create(scratch, nta_outgoing_cseq(orq), SIP_METHOD_ACK);
  nta_outgoing_t* ack =
      nta_outgoing_tcreate(leg->leg, nullptr, nullptr, nullptr, SIP_METHOD_ACK, nullptr,
                           SIPTAG_CSEQ(cseq), SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
  // sofia keeps the ACK for a while to answer retransmitted 2xx.
  if (ack != nullptr) nta_outgoing_destroy(ack);
  su_home_deinit(scratch);
}

int SofiaSipStack::Impl::OnInviteResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                          const sip_t* sip) {
  auto* leg = Magic<CallLeg>(magic);
  if (orq != leg->invite) return 0;
  Impl* self = leg->impl;
  const int status = StatusOf(orq, sip);
  if (leg->invite_is_reinvite) {  // sent only once the call is established
    self->OnReinviteResponse(leg, orq, status, PhraseOf(sip), sip);
  } else {
    self->OnCallInviteResponse(leg, orq, status, PhraseOf(sip), sip);
  }
  return 0;
}

void SofiaSipStack::Impl::OnCallInviteResponse(CallLeg* leg, nta_outgoing_t* orq, int status,
                                               const char* phrase, const sip_t* sip) {
  TELESTRA_ASSERT_ON(owner_);
  if (status < 200) {
    if (sip == nullptr || status < 101) return;
    if (sip->sip_to->a_tag != nullptr && nta_leg_get_rtag(leg->leg) == nullptr) {
      nta_leg_rtag(leg->leg, sip->sip_to->a_tag);  // early dialog
    }
    Move(leg, CallEvent::kProvisional);
    if (leg->cancel_held) SendCancel(leg);
    if (leg->state == CallState::kTerminated || status < 180) return;
    bool early_media = false;
    if (const sip_payload_t* body = SdpOf(sip); body != nullptr) {
      early_media = OnAnswer(leg, body, leg->local_hold, /*required=*/false);
    }
    listener_->OnCallProgress(leg->id, status, early_media);
    NotifyReferrer(leg, status, phrase);
    return;
  }
  leg->invite = nullptr;
  if (leg->cancel_held) {  // final before the far end rang: nothing to CANCEL
    leg->cancel_held = false;
    SipThread::DestroyTimer(leg->cancel_timer);
  }
  if (status < 300) {
    nta_leg_rtag(leg->leg, sip->sip_to->a_tag);
    nta_leg_client_route(leg->leg, sip->sip_record_route, sip->sip_contact);
    SendAck(leg, orq);
    nta_outgoing_destroy(orq);
    if (leg->state == CallState::kTerminated) {  // reported ended (CANCEL unanswered): ACK+BYE
      SendBye(leg);
      return;
    }
    OnAnswer(leg, SdpOf(sip), leg->local_hold, /*required=*/!IsHangingUp(leg->state));
    if (leg->requested_se > 0) {
      const sip_session_expires_t* se = sip->sip_session_expires;
      leg->pending_timer = TimerFromAnswer(se != nullptr, se != nullptr ? se->x_delta : 0,
                                           se != nullptr && se->x_refresher != nullptr
                                               ? se->x_refresher
                                               : "");
    }
    leg->peer_allows_update =
        sip->sip_allow != nullptr && sip_is_allowed(sip->sip_allow, sip_method_update, "UPDATE");
    OnEstablished(leg);
    return;
  }
  nta_outgoing_destroy(orq);
  if (status == 422 && !leg->retried_422 && leg->requested_se > 0 && sip != nullptr &&
      sip->sip_min_se != nullptr && !IsHangingUp(leg->state) &&
      leg->state != CallState::kTerminated) {
    // Our Session-Expires is below the far end's Min-SE: once more with it.
    leg->retried_422 = true;
    leg->requested_min_se = static_cast<int>(std::min<unsigned long>(sip->sip_min_se->min_delta, 86400));
    leg->requested_se = std::max(leg->requested_se, leg->requested_min_se);
    spdlog::info("call {}: 422: Session-Expires {} again", leg->id, leg->requested_se);
    if (SendInvite(leg, LocalSdp(leg, leg->sdp_body))) return;
  }
  if ((status == 401 || status == 407) && !IsHangingUp(leg->state) &&
      leg->state != CallState::kTerminated) {
    const msg_auth_t* challenge = DigestCache::ChallengeOf(status, sip);
    if (challenge != nullptr && !IsRegistrarRealm(leg->account.name, challenge)) {
      // Not the realm the account's registrar challenged with: whoever
      // made it gets no digest of the account's password.
      stats_.foreign_realm_challenges.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("call {}: {} challenge from realm '{}', not the registrar's: not answered",
                   leg->id, status, Printable(DigestCache::RealmOf(challenge)));
      EndLeg(leg->id, status, "Challenge from a foreign realm");
      return;
    }
    if (leg->challenges == 0 && challenge != nullptr) {
      ++leg->challenges;
      std::unique_ptr<DigestCache>& auth = invite_auth_[leg->account.name];
      if (!auth) auth = std::make_unique<DigestCache>();
      if (auth->Remember(leg->account, challenge, status == 407) &&
          SendInvite(leg, LocalSdp(leg, leg->sdp_body))) {
        return;
      }
    }
    // Rejected credentials: nothing more to wait for, and nothing to
    // send again with the next call.
    invite_auth_.erase(leg->account.name);
  }
  if ((status == 401 || status == 407) && IsHangingUp(leg->state) && leg->end_code == 0) {
    // Hung up while the INVITE was being challenged: the challenge only
    // closed the transaction (not sent again); the hangup ended the call.
    EndLeg(leg->id, 0, leg->end_reason);
    return;
  }
  int code = leg->end_code != 0 ? leg->end_code : status;
  std::string reason =
      IsHangingUp(leg->state) && leg->end_reason != "Hung up" ? leg->end_reason : phrase;
  EndLeg(leg->id, code, reason);
}

void SofiaSipStack::Impl::OnReinviteResponse(CallLeg* leg, nta_outgoing_t* orq, int status,
                                             const char* phrase, const sip_t* sip) {
  TELESTRA_ASSERT_ON(owner_);
  if (status < 200) return;
  leg->invite = nullptr;
  const bool hold = leg->hold_requests.empty() ? leg->local_hold : leg->hold_requests.front();
  if (!leg->hold_requests.empty()) leg->hold_requests.pop_front();
  if (status < 300) {
    nta_leg_client_route(leg->leg, nullptr, sip->sip_contact);  // a new remote target
    SendAck(leg, orq);
    nta_outgoing_destroy(orq);
    if (leg->state != CallState::kTerminated) OnAnswer(leg, SdpOf(sip), hold, /*required=*/false);
  } else {
    nta_outgoing_destroy(orq);
    spdlog::warn("call {}: re-INVITE failed: {} {}", leg->id, status, phrase);
    if (leg->hold_requests.empty()) {
      leg->local_hold = !hold;
      UpdateMedia(leg);
    }
  }
  if (leg->state == CallState::kTerminated) return;
  listener_->OnHoldResult(leg->id, hold, status, phrase);
  if (status == 408 || status == 481) {
    // The dialog is gone (RFC 3261 12.2.1.2).
    leg->end_code = status;
    leg->end_reason = phrase;
    SendBye(leg);
    return;
  }
  if (!leg->hold_requests.empty() && !IsHangingUp(leg->state)) SendReinvite(leg);
}

// A re-INVITE for the first queued hold/resume.
void SofiaSipStack::Impl::SendReinvite(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  const bool hold = leg->hold_requests.front();
  std::string sdp = LocalSdp(leg, sdp_writer_->OfferBody(leg->local_port, hold));
  leg->invite = nta_outgoing_tcreate(
      leg->leg, &Impl::OnInviteResponse, Magic<nta_outgoing_magic_t>(leg), nullptr,
      SIP_METHOD_INVITE, nullptr, SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()),
      SIPTAG_USER_AGENT_STR(kUserAgent), SIPTAG_CONTENT_TYPE_STR(kSdpType),
      SIPTAG_PAYLOAD_STR(sdp.c_str()), TAG_END());
  if (leg->invite == nullptr) {
    leg->hold_requests.pop_front();
    listener_->OnHoldResult(leg->id, hold, 500, "Cannot send re-INVITE");
    return;
  }
  leg->invite_is_reinvite = true;
  thread_.AwaitAnswer();
}

void SofiaSipStack::Impl::HoldCall(int64_t call_id, bool hold) {
  TELESTRA_ASSERT_ON(owner_);
  CallLeg* leg = FindLeg(call_id);
  if (leg == nullptr || leg->state != CallState::kConfirmed) return;
  leg->local_hold = hold;
  leg->hold_requests.push_back(hold);
  // One INVITE transaction at a time: the others wait for its answer.
  if (leg->invite == nullptr && leg->irq == nullptr) SendReinvite(leg);
}

}  // namespace telestra::backend
