#include "backend/sip/refer_syntax.h"
#include "backend/sip/sofia_sip_stack_impl.h"

// Call transfer, both ways (RFC 3515 REFER, RFC 3891 Replaces, RFC 3892
// Referred-By). We transfer: REFER in the call's dialog (Refer-To the
// number, or the other call's far end with Replaces), its NOTIFYs'
// message/sipfrag reported as progress; the final one ends the call
// ("Transferred") or fails the transfer (the call stays up). We are
// transferred: a REFER from the far end (through the account's proxy or a
// trusted network) makes the account call the Refer-To target (with its
// Replaces), and the new call's progress goes back in NOTIFYs.

namespace telestra::backend {
namespace {

// Why a REFER or NOTIFY from a stranger is refused.
constexpr char kNotFromProxy[] = "not from the account's proxy nor a trusted network";

// Answers the in-dialog request `method` of call `call_id` with `status`,
// saying why in a Warning (`warning`) and in the log.
int RefuseInDialog(nta_incoming_t* irq, const char* method, int64_t call_id, int status,
                   const char* phrase, const std::string& why, const std::string& warning) {
  spdlog::warn("call {}: {} refused {}: {}", call_id, method, status, why);
  nta_incoming_treply(irq, status, phrase, SIPTAG_WARNING_STR(warning.c_str()),
                      SIPTAG_USER_AGENT_STR(SofiaSipStack::Impl::kUserAgent), TAG_END());
  return status;
}

}  // namespace

void SofiaSipStack::Impl::TransferCall(int64_t call_id, const std::string& number,
                                       int64_t to_call_id) {
  TELESTRA_ASSERT_ON(owner_);
  CallLeg* leg = FindLeg(call_id);
  if (leg == nullptr || leg->state == CallState::kTerminated) return;  // call-ended follows
  auto fail = [&](const std::string& reason) { listener_->OnTransferFailed(call_id, 0, reason); };
  if (!IsEstablished(leg->state) || IsHangingUp(leg->state) || leg->leg == nullptr) {
    return fail("the call is not established");
  }
  if (leg->transferring) return fail("a transfer of the call is in progress");
  std::string refer_to;
  if (to_call_id >= 0) {
    CallLeg* other = FindLeg(to_call_id);
    if (other == nullptr || !IsEstablished(other->state) || IsHangingUp(other->state) ||
        other->leg == nullptr) {
      return fail(absl::StrCat("call ", to_call_id, " is not established"));
    }
    su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
    sip_replaces_t* replaces = nta_leg_make_replaces(other->leg, scratch, 0);
    char* text = replaces != nullptr
                     ? sip_header_as_string(scratch, reinterpret_cast<sip_header_t*>(replaces))
                     : nullptr;
    if (text != nullptr) refer_to = ReferToWithReplaces(other->remote_aor, text);
    su_home_deinit(scratch);
    if (refer_to.empty()) return fail(absl::StrCat("call ", to_call_id, " has no dialog to replace"));
  } else {
    absl::StatusOr<DialTarget> dialed = ParseDialTarget(number, leg->account.server);
    if (!dialed.ok()) return fail(std::string(dialed.status().message()));  // checked before
    refer_to = absl::StrCat("<", dialed->uri, ">");
  }
  leg->refer = nta_outgoing_tcreate(
      leg->leg, &Impl::OnReferResponse, Magic<nta_outgoing_magic_t>(leg), nullptr,
      SIP_METHOD_REFER, nullptr, SIPTAG_REFER_TO_STR(refer_to.c_str()),
      SIPTAG_REFERRED_BY_STR(FromFor(leg->account).c_str()),
      SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()), SIPTAG_USER_AGENT_STR(kUserAgent),
      TAG_END());
  if (leg->refer == nullptr) return fail("the REFER could not be sent");
  spdlog::info("call {}: REFER to {}", call_id, refer_to);
  leg->transferring = true;
  leg->transfer_to_call = to_call_id;
  leg->transfer_timer = thread_.StartTimer(&Impl::OnTransferTimeout, leg,
                                           absl::ToInt64Milliseconds(kTransferTimeout));
  thread_.AwaitAnswer();
}

int SofiaSipStack::Impl::OnReferResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                         const sip_t* sip) {
  auto* leg = Magic<CallLeg>(magic);
  const int status = StatusOf(orq, sip);
  if (status < 200 || orq != leg->refer) return 0;
  DestroyOutgoing(leg->refer);
  // A 2xx (202 Accepted): the NOTIFYs tell the rest.
  if (status >= 300 && leg->transferring) leg->impl->FinishTransfer(leg, status, PhraseOf(sip));
  return 0;
}

void SofiaSipStack::Impl::OnTransferTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* leg = static_cast<CallLeg*>(static_cast<void*>(arg));
  SipThread::DestroyTimer(leg->transfer_timer);
  if (leg->transferring) leg->impl->FinishTransfer(leg, 408, "No final NOTIFY");
}

// A NOTIFY of the transfer of the call (Event: refer). Like a REFER it is
// taken only from the account's proxy or a trusted network: the dialog's
// identifiers are no secret, and a final 200 ends the call "Transferred".
int SofiaSipStack::Impl::OnNotify(CallLeg* leg, nta_incoming_t* irq, const sip_t* sip) {
  TELESTRA_ASSERT_ON(owner_);
  if (auto source = SourceOf(nta_incoming_getrequest(irq));
      !policy_->MayStartDialog(source, &leg->account.name)) {
    return RefuseInDialog(irq, "NOTIFY", leg->id, 403, "Forbidden", kNotFromProxy,
                          WarningFor(absl::UnknownError(kNotFromProxy)));
  }
  if (sip->sip_event == nullptr || sip->sip_event->o_type == nullptr ||
      !absl::EqualsIgnoreCase(sip->sip_event->o_type, "refer")) {
    nta_incoming_treply(irq, 489, "Bad Event", SIPTAG_ALLOW_EVENTS_STR("refer"),
                        SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
    return 489;
  }
  if (!leg->transferring) return 481;  // no transfer of ours: no subscription
  std::optional<std::pair<int, std::string>> status;
  if (sip->sip_payload != nullptr && sip->sip_payload->pl_data != nullptr) {
    status = ParseSipfragStatus(
        absl::string_view(sip->sip_payload->pl_data, sip->sip_payload->pl_len));
  }
  const bool terminated = sip->sip_subscription_state != nullptr &&
                          sip->sip_subscription_state->ss_substate != nullptr &&
                          absl::EqualsIgnoreCase(sip->sip_subscription_state->ss_substate,
                                                 "terminated");
  nta_incoming_treply(irq, SIP_200_OK, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
  if (status) listener_->OnTransferProgress(leg->id, status->first);
  if (status && status->first >= 200) {
    FinishTransfer(leg, status->first, status->second);
  } else if (terminated) {
    FinishTransfer(leg, 0, "the far end ended the transfer without a final answer");
  }
  return 200;
}

// The transfer's outcome: on success the call (and an attended transfer's
// other call) ends with BYE, reason "Transferred"; else the call stays up.
void SofiaSipStack::Impl::FinishTransfer(CallLeg* leg, int code, const std::string& reason) {
  TELESTRA_ASSERT_ON(owner_);
  leg->transferring = false;
  SipThread::DestroyTimer(leg->transfer_timer);
  const int64_t other_id = leg->transfer_to_call;
  leg->transfer_to_call = -1;
  if (code < 200 || code >= 300) {
    listener_->OnTransferFailed(leg->id, code, reason);
    return;
  }
  spdlog::info("call {}: transferred", leg->id);
  for (CallLeg* ending : {leg, other_id >= 0 ? FindLeg(other_id) : nullptr}) {
    if (ending == nullptr || ending->state == CallState::kTerminated) continue;
    ending->end_code = 0;
    ending->end_reason = "Transferred";
    if (IsEstablished(ending->state) && !IsHangingUp(ending->state)) SendBye(ending);
  }
}

// A REFER from the far end of the call: we call the Refer-To target.
int SofiaSipStack::Impl::OnRefer(CallLeg* leg, nta_incoming_t* irq, const sip_t* sip) {
  TELESTRA_ASSERT_ON(owner_);
  auto refuse = [&](int status, const char* phrase, const std::string& why) {
    return RefuseInDialog(irq, "REFER", leg->id, status, phrase, why,
                          WarningFor(absl::UnknownError(why)));
  };
  if (auto source = SourceOf(nta_incoming_getrequest(irq));
      !policy_->MayStartDialog(source, &leg->account.name)) {
    return refuse(403, "Forbidden", kNotFromProxy);
  }
  if (!IsEstablished(leg->state) || IsHangingUp(leg->state)) {
    return refuse(481, "Call/Transaction Does Not Exist", "the call is not established");
  }
  if (!leg->account.accept_refer) return refuse(603, "Decline", "accept-refer is false");
  if (leg->referred_call >= 0) return refuse(491, "Request Pending", "a transfer is in progress");
  if (sip->sip_refer_to == nullptr || sip->sip_refer_to->r_url == nullptr) {
    return refuse(400, "Bad Request", "no Refer-To");
  }
  su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
  url_t* url = url_hdup(scratch, sip->sip_refer_to->r_url);
  std::string replaces = url != nullptr && url->url_headers != nullptr
                             ? ReplacesOfUriHeaders(url->url_headers)
                             : "";
  if (url != nullptr) url->url_headers = nullptr;  // never copied into our INVITE
  char* text = url != nullptr ? url_as_string(scratch, url) : nullptr;
  const std::string target = text != nullptr ? text : "";
  const std::string user = url != nullptr && url->url_user != nullptr ? url->url_user : "";
  std::string referred_by;
  if (sip->sip_referred_by != nullptr) {
    if (char* by = sip_header_as_string(scratch, reinterpret_cast<const sip_header_t*>(
                                                     sip->sip_referred_by))) {
      referred_by = by;
    }
  }
  su_home_deinit(scratch);
  absl::StatusOr<DialTarget> dialed = ParseDialTarget(target, leg->account.server);
  if (!dialed.ok()) return refuse(400, "Bad Refer-To", std::string(dialed.status().message()));
  // What call-started names: the user at our own server, else the URI.
  const std::string num = dialed->in_domain && !user.empty() ? user : dialed->uri;
  const int64_t new_id = listener_->OnTransferRequested(leg->id, num);
  if (new_id < 0) return refuse(603, "Decline", "the account cannot call now");
  nta_incoming_treply(irq, SIP_202_ACCEPTED, SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()),
                      SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
  spdlog::info("call {}: REFER accepted: call {} to {}", leg->id, new_id, dialed->uri);
  leg->referred_call = new_id;
  SendNotify(leg, 100, "Trying", /*final=*/false);
  MakeCall(new_id, leg->account, dialed->uri, replaces, referred_by, leg->id);
  return 202;
}

// The call `leg` was started by a REFER: its progress goes to the referrer
// (NOTIFY in the REFERring call's dialog); a final code ends that.
void SofiaSipStack::Impl::NotifyReferrer(CallLeg* leg, int code, const std::string& reason) {
  TELESTRA_ASSERT_ON(owner_);
  if (leg->referred_from < 0) return;
  CallLeg* referrer = FindLeg(leg->referred_from);
  const bool final = code >= 200;
  if (final) leg->referred_from = -1;
  if (referrer == nullptr || referrer->state == CallState::kTerminated ||
      referrer->referred_call != leg->id) {
    return;
  }
  if (final) referrer->referred_call = -1;
  SendNotify(referrer, code, reason, final);
}

void SofiaSipStack::Impl::SendNotify(CallLeg* leg, int code, const std::string& reason,
                                     bool final) {
  TELESTRA_ASSERT_ON(owner_);
  if (leg->leg == nullptr) return;
  const std::string body = SipfragBody(code, reason);
  nta_outgoing_t* notify = nta_outgoing_tcreate(
      leg->leg, nullptr, nullptr, nullptr, SIP_METHOD_NOTIFY, nullptr, SIPTAG_EVENT_STR("refer"),
      SIPTAG_SUBSCRIPTION_STATE_STR(final ? "terminated;reason=noresource" : "active;expires=60"),
      SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()), SIPTAG_USER_AGENT_STR(kUserAgent),
      SIPTAG_CONTENT_TYPE_STR(kSipfragType), SIPTAG_PAYLOAD_STR(body.c_str()), TAG_END());
  // sofia finishes the transaction by itself (its answer is not needed).
  if (notify != nullptr) nta_outgoing_destroy(notify);
}

}  // namespace telestra::backend
