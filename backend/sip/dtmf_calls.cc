#include "backend/sip/dtmf_info.h"
#include "backend/sip/sofia_sip_stack_impl.h"

// DTMF on a call, both ways: RFC 4733 telephone-events through the media
// engine when the far end negotiated them (and the plan does not say
// `dtmf = info`), else SIP INFO, one application/dtmf-relay digit per
// INFO, the next after the previous one's answer. Received: the media
// engine's RFC 4733 digits, and INFO with application/dtmf-relay or
// application/dtmf.

namespace telestra::backend {

void SofiaSipStack::Impl::SendDtmf(int64_t call_id, uint64_t request, const std::string& digits,
                                   int duration_ms) {
  TELESTRA_ASSERT_ON(owner_);
  CallLeg* leg = FindLeg(call_id);
  if (leg == nullptr || leg->state == CallState::kTerminated) return;  // call-ended follows
  if (!IsEstablished(leg->state) || IsHangingUp(leg->state)) {
    listener_->OnDtmfSent(call_id, request, 0, "the call is not established");
    return;
  }
  if (!leg->account.dtmf_info) {
    absl::Status queued = media_->SendDtmf(call_id, digits, duration_ms, request);
    if (queued.ok()) return;
    if (!absl::IsFailedPrecondition(queued)) {
      listener_->OnDtmfSent(call_id, request, 0, std::string(queued.message()));
      return;
    }
    spdlog::debug("call {}: DTMF as SIP INFO: {}", call_id, std::string(queued.message()));
  }
  if (leg->info_digits.size() + digits.size() > MediaEngine::kMaxQueuedDtmf) {
    listener_->OnDtmfSent(call_id, request, 0,
                          absl::StrCat("too many DTMF digits queued (at most ",
                                       MediaEngine::kMaxQueuedDtmf, ")"));
    return;
  }
  for (size_t i = 0; i < digits.size(); ++i) {
    leg->info_digits.push_back(
        CallLeg::InfoDigit{digits[i], duration_ms, request, i + 1 == digits.size()});
  }
  if (leg->info == nullptr) SendNextInfo(leg);
}

// Sends the INFO of the first digit waiting, if any.
void SofiaSipStack::Impl::SendNextInfo(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  while (leg->info == nullptr && !leg->info_digits.empty()) {
    const CallLeg::InfoDigit& digit = leg->info_digits.front();
    const std::string body = DtmfRelayBody(digit.digit, digit.duration_ms);
    leg->info = nta_outgoing_tcreate(
        leg->leg, &Impl::OnInfoResponse, Magic<nta_outgoing_magic_t>(leg), nullptr,
        SIP_METHOD_INFO, nullptr, SIPTAG_USER_AGENT_STR(kUserAgent),
        SIPTAG_CONTENT_TYPE_STR(kDtmfRelayType), SIPTAG_PAYLOAD_STR(body.c_str()), TAG_END());
    if (leg->info != nullptr) {
      thread_.AwaitAnswer();
      return;
    }
    // Not sent (the dialog is gone): the request fails as a whole.
    const uint64_t request = digit.request;
    while (!leg->info_digits.empty() && leg->info_digits.front().request == request) {
      leg->info_digits.pop_front();
    }
    listener_->OnDtmfSent(leg->id, request, 0, "the INFO could not be sent");
  }
}

int SofiaSipStack::Impl::OnInfoResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                        const sip_t* sip) {
  auto* leg = Magic<CallLeg>(magic);
  Impl* self = leg->impl;
  const int status = StatusOf(orq, sip);
  if (status < 200 || orq != leg->info) return 0;
  DestroyOutgoing(leg->info);
  if (leg->info_digits.empty() || leg->state == CallState::kTerminated) return 0;
  const CallLeg::InfoDigit digit = leg->info_digits.front();
  leg->info_digits.pop_front();
  if (status < 300) {
    if (digit.last_of_request) self->listener_->OnDtmfSent(leg->id, digit.request, 200, "OK");
  } else {
    // Refused: the rest of this request is dropped; later requests go on.
    while (!leg->info_digits.empty() && leg->info_digits.front().request == digit.request) {
      leg->info_digits.pop_front();
    }
    spdlog::warn("call {}: DTMF INFO refused: {} {}", leg->id, status, PhraseOf(sip));
    self->listener_->OnDtmfSent(leg->id, digit.request, status, PhraseOf(sip));
  }
  self->SendNextInfo(leg);
  return 0;
}

// An INFO in the call's dialog: DTMF is reported; other packages are
// answered 200 and ignored, as before DTMF was understood.
int SofiaSipStack::Impl::OnInfo(CallLeg* leg, nta_incoming_t* irq, const sip_t* sip) {
  TELESTRA_ASSERT_ON(owner_);
  if (sip->sip_content_type == nullptr || sip->sip_content_type->c_type == nullptr ||
      !IsDtmfInfoType(sip->sip_content_type->c_type)) {
    return 200;
  }
  absl::string_view body;
  if (sip->sip_payload != nullptr && sip->sip_payload->pl_data != nullptr) {
    body = absl::string_view(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
  }
  absl::StatusOr<InfoDigit> digit = ParseDtmfInfo(sip->sip_content_type->c_type, body);
  if (!digit.ok()) {
    spdlog::warn("call {}: DTMF INFO refused: {}", leg->id, std::string(digit.status().message()));
    nta_incoming_treply(irq, SIP_400_BAD_REQUEST,
                        SIPTAG_WARNING_STR(WarningFor(digit.status()).c_str()),
                        SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
    return 400;
  }
  nta_incoming_treply(irq, SIP_200_OK, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
  OnDtmfReceived(leg->id, digit->digit, digit->duration_ms, DtmfMethod::kInfo);
  return 200;
}

void SofiaSipStack::Impl::OnDtmfReceived(int64_t call_id, char digit, int duration_ms,
                                         DtmfMethod method) {
  TELESTRA_ASSERT_ON(owner_);
  CallLeg* leg = FindLeg(call_id);
  if (leg == nullptr || leg->state == CallState::kTerminated) return;
  spdlog::info("call {}: DTMF {} received ({}, {} ms)", call_id, digit, DtmfMethodName(method),
               duration_ms);
  listener_->OnDtmfReceived(call_id, digit, duration_ms, method);
}

void SofiaSipStack::Impl::OnRtpDtmfSent(int64_t call_id, uint64_t request) {
  TELESTRA_ASSERT_ON(owner_);
  CallLeg* leg = FindLeg(call_id);
  if (leg == nullptr || leg->state == CallState::kTerminated) return;
  listener_->OnDtmfSent(call_id, request, 200, "OK");
}

}  // namespace telestra::backend
