#include "backend/sip/sofia_sip_stack_impl.h"

// Requests to us: new INVITEs (checked, 180, ring timeout), their ACK and
// CANCEL, answer-call, and the requests inside a call (BYE, re-INVITE,
// UPDATE).

namespace telestra::backend {

// ------------------------------------------------------- requests to us

// Requests outside our dialogs: new INVITEs, OPTIONS; anything in a
// dialog we do not know gets 481.
int SofiaSipStack::Impl::OnDefaultRequest(nta_leg_magic_t* magic, nta_leg_t*, nta_incoming_t* irq,
                                          const sip_t* sip) {
  auto* self = Magic<Impl>(magic);
  const sip_method_t method = sip->sip_request->rq_method;
  if (method == sip_method_ack) return 200;  // no reply; the transaction ends
  if (sip->sip_to != nullptr && sip->sip_to->a_tag != nullptr) return 481;
  switch (method) {
    case sip_method_invite:
      if (auto source = SourceOf(nta_incoming_getrequest(irq));
          !self->IsTrustedSource(sip, source)) {
        return self->RefuseUntrusted(irq, source);
      }
      return self->OnIncomingInvite(irq, sip);
    case sip_method_options:
      nta_incoming_treply(irq, SIP_200_OK, SIPTAG_ALLOW_STR(kAllow), SIPTAG_ACCEPT_STR(kSdpType),
                          SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
      return 200;
    case sip_method_cancel:
    case sip_method_bye:
      return 481;
    default:
      nta_incoming_treply(irq, SIP_405_METHOD_NOT_ALLOWED, SIPTAG_ALLOW_STR(kAllow),
                          SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
      return 405;
  }
}

int SofiaSipStack::Impl::RefuseUntrusted(nta_incoming_t* irq,
                                         const boost::asio::ip::address& source) {
  TELESTRA_ASSERT_ON(owner_);
  const uint64_t refused = stats_.untrusted_requests.fetch_add(1, std::memory_order_relaxed) + 1;
  if ((refused & (refused - 1)) == 0) {  // the 1st, 2nd, 4th, 8th ...: a flood logs little
    spdlog::warn(
        "SIP: INVITE from {} refused 403: not a registrar of ours nor a trusted "
        "network ({} refused so far)",
        source.is_unspecified() ? "unknown" : source.to_string(), refused);
  }
  nta_incoming_treply(irq, SIP_403_FORBIDDEN, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
  return 403;
}

int SofiaSipStack::Impl::OnIncomingInvite(nta_incoming_t* irq, const sip_t* sip) {
  TELESTRA_ASSERT_ON(owner_);
  Registration* reg = AccountFor(sip);
  if (reg == nullptr || shutting_down_) {
    return shutting_down_ ? 503 : 404;
  }
  if (!policy_->MayRing(reg->config.name)) {
    stats_.ringing_refused.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("account {}: incoming INVITE refused 486: {} calls already ringing",
                 reg->config.name, config_.max_ringing);
    nta_incoming_treply(irq, SIP_486_BUSY_HERE, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
    return 486;
  }
  // The offer, checked before the call is reported: one we cannot answer
  // is refused at once (no call-incoming for a call that cannot work).
  std::optional<RemoteSdp> offer;
  if (const sip_payload_t* body = SdpOf(sip); body != nullptr) {
    absl::StatusOr<RemoteSdp> parsed = ParseBody(body);
    absl::Status usable = parsed.ok() ? sdp_writer_->CheckOffer(*parsed) : parsed.status();
    if (!usable.ok()) {
      spdlog::info("account {}: incoming INVITE refused: {}", reg->config.name,
                   std::string(usable.message()));
      nta_incoming_treply(irq, SIP_488_NOT_ACCEPTABLE,
                          SIPTAG_WARNING_STR(WarningFor(usable).c_str()),
                          SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
      return 488;
    }
    offer = std::move(*parsed);
  }
  std::string caller, caller_name;
  if (sip->sip_from != nullptr) {
    if (sip->sip_from->a_url->url_user) caller = sip->sip_from->a_url->url_user;
    if (sip->sip_from->a_display) {
      caller_name = sip->sip_from->a_display;
      if (caller_name.size() >= 2 && caller_name.front() == '"' && caller_name.back() == '"') {
        caller_name = caller_name.substr(1, caller_name.size() - 2);
      }
    }
  }
  const TimerAnswer timer = TimerFor(sip);
  if (timer.too_small) return RefuseTooSmall(irq, timer);
  int64_t call_id = listener_->OnIncomingCall(reg->config.name, caller, caller_name);
  if (call_id < 0) return 480;
  auto owned = std::make_unique<CallLeg>(this);
  CallLeg* leg = owned.get();
  leg->id = call_id;
  leg->account = reg->config;
  leg->offer = std::move(offer);
  leg->incoming_timer = timer;
  leg->pending_timer = timer.timer;
  leg->peer_allows_update =
      sip->sip_allow != nullptr && sip_is_allowed(sip->sip_allow, sip_method_update, "UPDATE");
  if (sip->sip_from != nullptr) {
    su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
    if (char* from = url_as_string(scratch, sip->sip_from->a_url)) leg->remote_aor = from;
    su_home_deinit(scratch);
  }
  if (sip->sip_call_id != nullptr && sip->sip_call_id->i_id != nullptr) {
    leg->sip_call_id = sip->sip_call_id->i_id;
  }
  if (journal_ != nullptr) {
    su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
    auto header = [&](const void* h) {
      char* text = sip_header_as_string(scratch, static_cast<const sip_header_t*>(h));
      return text != nullptr ? std::string(text) : std::string();
    };
    leg->local_header = header(sip->sip_to);
    leg->remote_header = header(sip->sip_from);
    su_home_deinit(scratch);
  }
  calls_[call_id] = std::move(owned);
  ReportDetails(leg);
  leg->leg = nta_leg_tcreate(agent_, &Impl::OnDialogRequest, Magic<nta_leg_magic_t>(leg),
                             SIPTAG_CALL_ID(sip->sip_call_id), SIPTAG_FROM(sip->sip_to),
                             SIPTAG_TO(sip->sip_from), NTATAG_REMOTE_CSEQ(sip->sip_cseq->cs_seq),
                             TAG_END());
  if (leg->leg == nullptr) {
    EndLeg(call_id, 500, "Cannot create a SIP dialog");
    return 500;
  }
  nta_leg_tag(leg->leg, nta_incoming_tag(irq, nullptr));
  nta_leg_server_route(leg->leg, sip->sip_record_route, sip->sip_contact);
  leg->irq = irq;
  nta_incoming_bind(irq, &Impl::OnAckOrCancel, Magic<nta_incoming_magic_t>(leg));
  // Reserve the RTP ports now: if there are none, refuse at once.
  if (!OpenMedia(leg)) {
    leg->irq = nullptr;  // answered here; sofia ends the transaction
    nta_incoming_treply(irq, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_USER_AGENT_STR(kUserAgent),
                        TAG_END());
    EndLeg(call_id, 503, leg->end_reason);
    return 503;
  }
  nta_incoming_treply(irq, SIP_180_RINGING, SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()),
                      SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
  leg->counted_ringing = true;
  JournalLeg(leg);  // ringing: what a restart needs to refuse it
  policy_->StartRinging(leg->account.name);
  if (config_.ring_timeout > 0) {
    leg->ring_timer =
        thread_.StartTimer(&Impl::OnRingTimeout, leg, int64_t{config_.ring_timeout} * 1000);
  }
  return 0;
}

// The incoming call is no longer an unanswered one (answered, ended).
void SofiaSipStack::Impl::StopRinging(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  SipThread::DestroyTimer(leg->ring_timer);
  if (!leg->counted_ringing) return;
  leg->counted_ringing = false;
  policy_->StopRinging(leg->account.name);
}

// Nobody answered the incoming call in [sip-settings] ring-timeout.
void SofiaSipStack::Impl::OnRingTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* leg = static_cast<CallLeg*>(static_cast<void*>(arg));
  Impl* self = leg->impl;
  SipThread::DestroyTimer(leg->ring_timer);
  if (leg->state != CallState::kIncoming || leg->irq == nullptr) return;
  self->stats_.ring_timeouts.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("call {}: not answered in {} s; 480", leg->id, self->config_.ring_timeout);
  leg->end_code = 480;
  leg->end_reason = "Ring timeout";
  self->RespondToInvite(leg, 480, "Temporarily Unavailable");
}

// A final answer other than 2xx to the far end's INVITE of a call that
// is not established: the call is over.
void SofiaSipStack::Impl::RespondToInvite(CallLeg* leg, int status, const char* phrase) {
  TELESTRA_ASSERT_ON(owner_);
  if (leg->irq != nullptr) {
    nta_incoming_treply(leg->irq, status, phrase, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
    nta_incoming_destroy(leg->irq);
    leg->irq = nullptr;
  }
  EndLeg(leg->id, leg->end_code != 0 ? leg->end_code : status,
         leg->end_reason.empty() ? std::string(phrase) : leg->end_reason);
}

// ACK or CANCEL of the far end's INVITE (or re-INVITE); null `sip`: no
// ACK came for our 2xx (timer H).
int SofiaSipStack::Impl::OnAckOrCancel(nta_incoming_magic_t* magic, nta_incoming_t* irq,
                                       const sip_t* sip) {
  auto* leg = Magic<CallLeg>(magic);
  Impl* self = leg->impl;
  if (irq != leg->irq) return 0;
  if (sip != nullptr && sip->sip_request != nullptr &&
      sip->sip_request->rq_method == sip_method_cancel) {
    // sofia answered the CANCEL 200; the INVITE gets 487.
    leg->irq = nullptr;
    nta_incoming_treply(irq, SIP_487_REQUEST_CANCELLED, SIPTAG_USER_AGENT_STR(kUserAgent),
                        TAG_END());
    nta_incoming_destroy(irq);
    if (leg->state != CallState::kTerminated) {
      leg->end_code = 487;
      leg->end_reason = "Cancelled by caller";
      self->EndLeg(leg->id, 487, leg->end_reason);
    }
    return 0;
  }
  leg->irq = nullptr;
  nta_incoming_destroy(irq);
  if (leg->state == CallState::kTerminated) return 0;
  if (sip == nullptr) {
    spdlog::warn("call {}: no ACK for our 200; hanging up", leg->id);
    if (leg->end_reason.empty()) leg->end_reason = "No ACK";
    Move(leg, CallEvent::kConfirm);  // (a re-INVITE's: confirmed already)
    self->SendBye(leg);
    return 0;
  }
  if (leg->offered_in_response) {
    // The answer to the offer of our 200 (delayed offer, offerless
    // re-INVITE): required to set up a new call.
    leg->offered_in_response = false;
    self->OnAnswer(leg, SdpOf(sip), leg->local_hold, /*required=*/!IsEstablished(leg->state));
  }
  if (!IsEstablished(leg->state)) self->OnEstablished(leg);  // else a re-INVITE's ACK
  return 0;
}

// The call is set up (our INVITE's 2xx ACKed, or the ACK of our 2xx).
void SofiaSipStack::Impl::OnEstablished(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  const bool hangup_wanted = leg->state == CallState::kHangingUp;
  Move(leg, CallEvent::kConfirm);
  SipThread::DestroyTimer(leg->cancel_timer);
  SipThread::DestroyTimer(leg->invite_timer);
  StopRinging(leg);
  if (leg->media_refused) {
    SendBye(leg);
    return;
  }
  listener_->OnCallEstablished(leg->id);
  NotifyReferrer(leg, 200, "OK");
  StartSessionTimer(leg, leg->pending_timer);
  if (leg->remote_hold) listener_->OnCallHold(leg->id, leg->local_hold, true);
  if (hangup_wanted) {
    SendBye(leg);  // a 2xx crossed our CANCEL, or hung up meanwhile
  } else {
    JournalLeg(leg);  // established: what a restart needs to restore it
  }
}

// Requests in one of our call dialogs.
int SofiaSipStack::Impl::OnDialogRequest(nta_leg_magic_t* magic, nta_leg_t*, nta_incoming_t* irq,
                                         const sip_t* sip) {
  auto* leg = Magic<CallLeg>(magic);
  Impl* self = leg->impl;
  const sip_method_t method = sip->sip_request->rq_method;
  if (method == sip_method_ack) return 200;  // an ACK no transaction took
  if (leg->state == CallState::kTerminated) return method == sip_method_bye ? 200 : 481;
  switch (method) {
    case sip_method_bye:
      nta_incoming_treply(irq, SIP_200_OK, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
      if (leg->irq != nullptr && !IsEstablished(leg->state)) {
        // BYE before the ACK of our 200, or on an early dialog.
        nta_incoming_treply(leg->irq, SIP_487_REQUEST_CANCELLED, TAG_END());
      }
      self->EndLeg(leg->id, leg->end_code,
                   leg->end_reason.empty() ? "Remote hangup" : leg->end_reason);
      return 200;
    case sip_method_invite:
    case sip_method_update:
      return self->OnReoffer(leg, irq, sip, method == sip_method_update);
    case sip_method_info:
      return self->OnInfo(leg, irq, sip);
    case sip_method_notify:
      return self->OnNotify(leg, irq, sip);
    case sip_method_refer:
      return self->OnRefer(leg, irq, sip);
    case sip_method_options:
      return 200;
    default:
      nta_incoming_treply(irq, SIP_405_METHOD_NOT_ALLOWED, SIPTAG_ALLOW_STR(kAllow), TAG_END());
      return 405;
  }
}

// An offer (or none) in a re-INVITE or UPDATE of a call: answered now,
// with our answer or, to an offerless re-INVITE, our offer.
int SofiaSipStack::Impl::OnReoffer(CallLeg* leg, nta_incoming_t* irq, const sip_t* sip,
                                   bool is_update) {
  TELESTRA_ASSERT_ON(owner_);
  if (!IsEstablished(leg->state) && !is_update) {
    return 491;  // a re-INVITE before the call is set up
  }
  if (!is_update && leg->irq != nullptr && !leg->offered_in_response) {
    // A re-INVITE before the ACK of our 2xx to the previous one: the far
    // end has that 2xx (its CSeq is higher) and its ACK is on the way, or
    // was overtaken (a proxy's workers can reorder them). Taken as if the
    // ACK had come (RFC 5407 3.1.2); sofia absorbs the late ACK. Only an
    // ACK that must carry an answer (our 2xx had the offer) is waited for.
    nta_incoming_destroy(leg->irq);
    leg->irq = nullptr;
  }
  if (!is_update && (leg->irq != nullptr || leg->invite != nullptr)) {
    return 491;  // glare: one INVITE transaction at a time (RFC 3261 14.2)
  }
  const TimerAnswer timer = TimerFor(sip);
  if (timer.too_small) return RefuseTooSmall(irq, timer);
  nta_leg_server_route(leg->leg, nullptr, sip->sip_contact);  // a new remote target
  const sip_payload_t* body = SdpOf(sip);
  if (body == nullptr && is_update) {  // a session refresh
    nta_incoming_treply(irq, SIP_200_OK, SIPTAG_USER_AGENT_STR(kUserAgent),
                        TAG_IF(!timer.header.empty(), SIPTAG_SESSION_EXPIRES_STR(timer.header.c_str())),
                        TAG_IF(timer.require_timer, SIPTAG_REQUIRE_STR("timer")), TAG_END());
    if (IsEstablished(leg->state)) StartSessionTimer(leg, timer.timer);
    return 200;
  }
  absl::StatusOr<RemoteSdp> offer = body != nullptr ? ParseBody(body) : RemoteSdp();
  absl::StatusOr<std::string> sdp =
      offer.ok() ? ResponseSdp(leg, body != nullptr ? &*offer : nullptr) : offer.status();
  if (!sdp.ok()) {
    // Refused: the call goes on as it was.
    spdlog::warn("call {}: re-offer refused: {}", leg->id, std::string(sdp.status().message()));
    nta_incoming_treply(irq, SIP_488_NOT_ACCEPTABLE,
                        SIPTAG_WARNING_STR(WarningFor(sdp.status()).c_str()),
                        SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
    return 488;
  }
  nta_incoming_treply(irq, SIP_200_OK, SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()),
                      SIPTAG_USER_AGENT_STR(kUserAgent), SIPTAG_CONTENT_TYPE_STR(kSdpType),
                      TAG_IF(!timer.header.empty(), SIPTAG_SESSION_EXPIRES_STR(timer.header.c_str())),
                      TAG_IF(timer.require_timer, SIPTAG_REQUIRE_STR("timer")),
                      SIPTAG_PAYLOAD_STR(sdp->c_str()), TAG_END());
  if (IsEstablished(leg->state)) StartSessionTimer(leg, timer.timer);
  if (is_update) return 200;
  leg->irq = irq;  // until its ACK
  nta_incoming_bind(irq, &Impl::OnAckOrCancel, Magic<nta_incoming_magic_t>(leg));
  return 0;
}

void SofiaSipStack::Impl::AnswerCall(int64_t call_id) {
  TELESTRA_ASSERT_ON(owner_);
  CallLeg* leg = FindLeg(call_id);
  if (leg == nullptr || leg->state != CallState::kIncoming || leg->irq == nullptr) return;
  Move(leg, CallEvent::kAnswer);
  StopRinging(leg);
  absl::StatusOr<std::string> sdp =
      ResponseSdp(leg, leg->offer.has_value() ? &*leg->offer : nullptr);
  leg->offer.reset();
  if (!sdp.ok()) {  // checked when the INVITE came: not expected
    leg->end_code = 488;
    leg->end_reason = std::string(sdp.status().message());
    RespondToInvite(leg, 488, "Not Acceptable Here");
    return;
  }
  nta_incoming_treply(leg->irq, SIP_200_OK, SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()),
                      SIPTAG_USER_AGENT_STR(kUserAgent), SIPTAG_ALLOW_STR(kAllow),
                      TAG_IF(config_.session_expires > 0, SIPTAG_SUPPORTED_STR("timer")),
                      TAG_IF(!leg->incoming_timer.header.empty(),
                             SIPTAG_SESSION_EXPIRES_STR(leg->incoming_timer.header.c_str())),
                      TAG_IF(leg->incoming_timer.require_timer, SIPTAG_REQUIRE_STR("timer")),
                      SIPTAG_CONTENT_TYPE_STR(kSdpType), SIPTAG_PAYLOAD_STR(sdp->c_str()),
                      TAG_END());
  thread_.AwaitAnswer();  // the ACK
}

}  // namespace telestra::backend
