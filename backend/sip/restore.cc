#include "backend/sip/sofia_sip_stack_impl.h"

#include <sofia-sip/msg.h>
#include <sofia-sip/nta_stateless.h>

// Across a restart (docs/restart.md): what the journal keeps of each call's
// dialog, and what a new start does with it: an established call is
// restored (its dialog, its RTP port), a call still dialing is cancelled, a
// call still ringing is refused.

namespace telestra::backend {
namespace {

using telestra::state::JournalDialog;

// A From/To header value with `tag` added unless it has one already.
std::string WithTag(const std::string& header, const char* tag) {
  if (tag == nullptr || *tag == '\0') return header;
  su_home_t home[1] = {SU_HOME_INIT(home)};
  std::string out = header;
  if (sip_to_t* to = sip_to_make(home, header.c_str()); to != nullptr && to->a_tag == nullptr) {
    if (sip_to_tag(home, to, tag) == 0) {
      if (char* text = sip_header_as_string(home, reinterpret_cast<sip_header_t*>(to))) out = text;
    }
  }
  su_home_deinit(home);
  return out;
}

}  // namespace

// Notes the call's dialog as it stands now (nothing without a journal).
void SofiaSipStack::Impl::JournalLeg(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  if (journal_ == nullptr || leg->leg == nullptr || leg->state == CallState::kTerminated) return;
  JournalDialog dialog;
  dialog.set_outgoing(leg->outgoing);
  dialog.set_dialog_call_id(leg->sip_call_id);
  dialog.set_local(WithTag(leg->local_header, nta_leg_get_tag(leg->leg)));
  dialog.set_remote(WithTag(leg->remote_header, nta_leg_get_rtag(leg->leg)));
  dialog.set_local_cseq(nta_leg_get_seq(leg->leg));
  dialog.set_remote_cseq(nta_leg_get_rseq(leg->leg));
  dialog.set_target(leg->target);
  dialog.set_target_in_domain(leg->target_in_domain);
  dialog.set_remote_aor(leg->remote_aor);
  su_home_t home[1] = {SU_HOME_INIT(home)};
  if (IsEstablished(leg->state)) {
    dialog.set_phase(JournalDialog::CONFIRMED);
    const sip_route_t* route = nullptr;
    const sip_contact_t* target = nullptr;
    nta_leg_get_route(leg->leg, &route, &target);
    for (; route != nullptr; route = route->r_next) {
      if (char* url = url_as_string(home, route->r_url)) dialog.add_route(url);
    }
    if (target != nullptr) {
      if (char* url = url_as_string(home, target->m_url)) dialog.set_remote_target(url);
    }
    dialog.set_local_rtp_port(leg->local_port);
    dialog.set_remote_address(leg->media.remote_address);
    dialog.set_remote_rtp_port(leg->media.remote_rtp_port);
    dialog.set_payload_type(leg->media.payload_type);
    dialog.set_telephone_event_payload_type(leg->media.telephone_event_payload_type);
    dialog.set_direction(static_cast<int>(leg->media.direction));
    dialog.set_local_hold(leg->local_hold);
    dialog.set_remote_hold(leg->remote_hold);
    dialog.set_sdp_session_id(leg->sdp_session_id);
    dialog.set_sdp_version(leg->sdp_version);
    dialog.set_sdp_body(leg->sdp_body);
    dialog.set_peer_allows_update(leg->peer_allows_update);
    dialog.set_session_expires(leg->session.interval);
    dialog.set_we_refresh(leg->session.we_refresh);
  } else if (leg->outgoing && leg->invite != nullptr && !leg->invite_is_reinvite) {
    dialog.set_phase(JournalDialog::DIALING);
    if (const char* branch = nta_outgoing_branch(leg->invite)) dialog.set_invite_branch(branch);
    dialog.set_invite_cseq(nta_outgoing_cseq(leg->invite));
  } else if (!leg->outgoing && leg->irq != nullptr) {
    dialog.set_phase(JournalDialog::RINGING);
    if (msg_t* request = nta_incoming_getrequest(leg->irq)) {
      size_t length = 0;
      if (char* text = msg_as_string(home, request, nullptr, 0, &length)) {
        dialog.set_invite(std::string(text, length));
      }
      msg_destroy(request);
    }
  } else {
    su_home_deinit(home);
    return;  // between phases (answered, not yet ACKed): the last note stands
  }
  su_home_deinit(home);
  journal_->PutDialog(leg->id, dialog);
}

// On the SIP thread, once, after the start and before the accounts
// register.
void SofiaSipStack::Impl::Restore(const std::vector<RestoredCall>& calls) {
  TELESTRA_ASSERT_ON(owner_);
  for (const RestoredCall& call : calls) {
    switch (call.dialog.phase()) {
      case JournalDialog::CONFIRMED:
        RestoreConfirmed(call);  // reports the call ended itself if it cannot be
        continue;
      case JournalDialog::DIALING:
        CancelRestoredInvite(call);
        break;
      case JournalDialog::RINGING:
        RefuseRestoredInvite(call);
        break;
      default:
        break;
    }
    listener_->OnCallEnded(call.call_id, 0, "Gateway restarted");
  }
}

// An established call: the same dialog (Call-ID, tags, route set, remote
// target, CSeqs) and the same RTP port, so the far end notices nothing but
// the gap in audio. When it cannot be (no account, the port is taken) the
// far end gets a BYE and the call ends "Gateway restarted".
void SofiaSipStack::Impl::RestoreConfirmed(const RestoredCall& call) {
  TELESTRA_ASSERT_ON(owner_);
  const JournalDialog& d = call.dialog;
  auto owned = std::make_unique<CallLeg>(this);
  CallLeg* leg = owned.get();
  leg->id = call.call_id;
  leg->account = call.account;
  leg->outgoing = d.outgoing();
  leg->state = CallState::kConfirmed;
  leg->sip_call_id = d.dialog_call_id();
  leg->local_header = d.local();
  leg->remote_header = d.remote();
  leg->target = d.target();
  leg->target_in_domain = d.target_in_domain();
  leg->remote_aor = d.remote_aor();
  leg->local_hold = d.local_hold();
  leg->remote_hold = d.remote_hold();
  leg->sdp_session_id = d.sdp_session_id();
  leg->sdp_version = d.sdp_version();
  leg->sdp_body = d.sdp_body();
  leg->peer_allows_update = d.peer_allows_update();
  leg->media.remote_address = d.remote_address();
  leg->media.remote_rtp_port = d.remote_rtp_port();
  leg->media.payload_type = d.payload_type();
  leg->media.telephone_event_payload_type = d.telephone_event_payload_type();
  leg->media.direction = static_cast<MediaDirection>(d.direction());

  su_home_t home[1] = {SU_HOME_INIT(home)};
  std::string routes;
  for (const std::string& url : d.route()) {
    absl::StrAppend(&routes, routes.empty() ? "" : ", ", "<", url, ">");
  }
  sip_route_t* route = routes.empty() ? nullptr : sip_route_make(home, routes.c_str());
  sip_contact_t* target =
      d.remote_target().empty()
          ? nullptr
          : sip_contact_make(home, absl::StrCat("<", d.remote_target(), ">").c_str());
  // Our requests go on above the last CSeq the journal saw: requests sent
  // after its last note (a refresh, an INFO) must not be repeated.
  sip_cseq_t* cseq = sip_cseq_create(home, d.local_cseq() + kRestoredCSeqStep, SIP_METHOD_INVITE);
  leg->leg = nta_leg_tcreate(
      agent_, &Impl::OnDialogRequest, Magic<nta_leg_magic_t>(leg),
      SIPTAG_CALL_ID_STR(d.dialog_call_id().c_str()), SIPTAG_FROM_STR(d.local().c_str()),
      SIPTAG_TO_STR(d.remote().c_str()), SIPTAG_CSEQ(cseq), NTATAG_REMOTE_CSEQ(d.remote_cseq()),
      TAG_END());
  // The route set and target as kept (in the order requests use them).
  // Not as nta_leg_tcreate's SIPTAG_ROUTE: that one never marks the first
  // route loose (;lr), so every request would be strict-routed (the proxy
  // in the Request-URI, the far end's Contact in a Route).
  if (leg->leg != nullptr && (route != nullptr || target != nullptr)) {
    nta_leg_server_route(leg->leg, route, target);
  }
  su_home_deinit(home);
  calls_[call.call_id] = std::move(owned);
  if (leg->leg == nullptr) {
    spdlog::warn("call {}: its dialog cannot be restored", call.call_id);
    media_->CancelReservation(d.local_rtp_port());
    EndLeg(call.call_id, 0, "Gateway restarted");
    return;
  }
  if (call.account.name.empty()) {
    spdlog::warn("call {}: its account is no longer in the plan; hanging up", call.call_id);
    media_->CancelReservation(d.local_rtp_port());
    leg->end_reason = "Gateway restarted";
    SendBye(leg);
    return;
  }
  leg->restored_port = d.local_rtp_port();
  if (!OpenMedia(leg)) {
    spdlog::warn("call {}: RTP port {} cannot be restored ({}); hanging up", call.call_id,
                 d.local_rtp_port(), leg->end_reason);
    media_->CancelReservation(d.local_rtp_port());  // if Open failed before binding it
    leg->end_reason = "Gateway restarted";
    SendBye(leg);
    return;
  }
  UpdateMedia(leg);
  StartSessionTimer(leg, SessionTimer{d.session_expires(), d.we_refresh()});
  spdlog::info("call {}: restored (Call-ID {}, RTP port {})", call.call_id, d.dialog_call_id(),
               leg->local_port);
  JournalLeg(leg);
}

// A call that was still dialing: our INVITE is cancelled. The CANCEL
// carries the INVITE's branch and CSeq, from the same address, so the
// proxy matches it to the INVITE's transaction.
void SofiaSipStack::Impl::CancelRestoredInvite(const RestoredCall& call) {
  TELESTRA_ASSERT_ON(owner_);
  const JournalDialog& d = call.dialog;
  if (d.invite_branch().empty() || d.target().empty() || call.account.name.empty()) return;
  su_home_t home[1] = {SU_HOME_INIT(home)};
  nta_leg_t* leg = nta_leg_tcreate(agent_, nullptr, nullptr,
                                   SIPTAG_CALL_ID_STR(d.dialog_call_id().c_str()),
                                   SIPTAG_FROM_STR(d.local().c_str()),
                                   SIPTAG_TO_STR(d.remote().c_str()), TAG_END());
  if (leg != nullptr) {
    sip_cseq_t* cseq = sip_cseq_create(home, d.invite_cseq(), SIP_METHOD_CANCEL);
    const std::string proxy = ProxyUrl(call.account);
    nta_outgoing_t* cancel = nta_outgoing_tcreate(
        leg, &Impl::OnRestoredCancelResponse, nullptr, URL_STRING_MAKE(proxy.c_str()),
        SIP_METHOD_CANCEL, URL_STRING_MAKE(d.target().c_str()), SIPTAG_CSEQ(cseq),
        NTATAG_BRANCH_KEY(d.invite_branch().c_str()), SIPTAG_USER_AGENT_STR(kUserAgent),
        SIPTAG_REASON_STR("SIP;cause=503;text=\"Gateway restarted\""), TAG_END());
    if (cancel == nullptr) {
      spdlog::warn("call {}: cannot cancel its INVITE", call.call_id);
    } else {
      spdlog::info("call {}: was dialing at the restart; CANCEL sent", call.call_id);
    }
    nta_leg_destroy(leg);  // the CANCEL's transaction lives on its own
  }
  su_home_deinit(home);
}

int SofiaSipStack::Impl::OnRestoredCancelResponse(nta_outgoing_magic_t*, nta_outgoing_t* orq,
                                                  const sip_t* sip) {
  if (StatusOf(orq, sip) >= 200) nta_outgoing_destroy(orq);
  return 0;
}

// A call that was still ringing: the far end's INVITE gets its final
// answer now, 480, along the Via path it came by.
void SofiaSipStack::Impl::RefuseRestoredInvite(const RestoredCall& call) {
  TELESTRA_ASSERT_ON(owner_);
  const std::string& invite = call.dialog.invite();
  if (invite.empty()) return;
  msg_t* request = msg_make(sip_default_mclass(), 0, invite.data(), static_cast<ssize_t>(invite.size()));
  if (request == nullptr || sip_object(request) == nullptr ||
      sip_object(request)->sip_request == nullptr) {
    if (request != nullptr) msg_destroy(request);
    spdlog::warn("call {}: its INVITE cannot be read back; not refused", call.call_id);
    return;
  }
  // With the To tag of our 180 (the one the note's `local` carries): one
  // tag in every answer to the INVITE (RFC 3261 8.2.6.2).
  if (sip_to_t* to = sip_object(request)->sip_to; to != nullptr && to->a_tag == nullptr) {
    su_home_t home[1] = {SU_HOME_INIT(home)};
    if (sip_to_t* ours = sip_to_make(home, call.dialog.local().c_str());
        ours != nullptr && ours->a_tag != nullptr) {
      sip_to_tag(msg_home(request), to, ours->a_tag);
    }
    su_home_deinit(home);
  }
  // nta takes the message over.
  nta_msg_treply(agent_, request, 480, "Gateway restarted", SIPTAG_USER_AGENT_STR(kUserAgent),
                 TAG_END());
  spdlog::info("call {}: was ringing at the restart; refused 480", call.call_id);
}

}  // namespace telestra::backend
