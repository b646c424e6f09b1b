#include "backend/sip/sofia_sip_stack_impl.h"

// A call's media: our SDP, the offer/answer applied to the RTP ports.

namespace telestra::backend {

// ---------------------------------------------------------------- calls

// A whole SDP of ours for the leg: the o= version grows whenever the
// rest differs from the last SDP the call sent (RFC 3264 8).
std::string SofiaSipStack::Impl::LocalSdp(CallLeg* leg, std::string body) {
  TELESTRA_ASSERT_ON(owner_);
  if (body != leg->sdp_body) {
    ++leg->sdp_version;
    leg->sdp_body = std::move(body);
  }
  // Chosen once per call and kept by the journal: a restored call's o=
  // line stays the far end's (restore.cc).
  if (leg->sdp_session_id == 0) {
    leg->sdp_session_id = sdp_session_id_ + static_cast<uint64_t>(leg->id);
  }
  return sdp_writer_->Compose(leg->sdp_session_id, leg->sdp_version, leg->sdp_body);
}

// Opens the call's RTP ports; false (and the reason in the leg) if none.
bool SofiaSipStack::Impl::OpenMedia(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  if (leg->local_port != 0) return true;
  MediaOptions options;
  options.account = leg->account.name;
  absl::StatusOr<AudioSource> source = ParseAudioSource(leg->account.audio);
  if (!source.ok()) {
    leg->end_reason = std::string(source.status().message());
    return false;
  }
  options.source = *source;
  options.record_dir = leg->account.record_dir;
  options.port = leg->restored_port;
  absl::StatusOr<int> port = media_->Open(leg->id, options);
  if (!port.ok()) {
    leg->end_reason = std::string(port.status().message());
    spdlog::warn("call {}: {}", leg->id, leg->end_reason);
    return false;
  }
  leg->local_port = *port;
  return true;
}

// Attaches an application's audio stream to the call's media, if open.
void SofiaSipStack::Impl::AttachAudio(int64_t call_id, const std::shared_ptr<CallAudioTap>& tap) {
  TELESTRA_ASSERT_ON(owner_);
  CallLeg* leg = FindLeg(call_id);
  if (leg == nullptr || leg->local_port == 0) {
    if (tap->OnStopped("Call ended")) tap->RunWakeup();
    return;
  }
  media_->AttachAudio(call_id, tap);  // stops the tap itself if it fails
}

// Closes the call's RTP ports, if open; the listener gets the media's
// last statistics first, if it ever started.
void SofiaSipStack::Impl::CloseMedia(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  if (leg->local_port == 0) return;
  if (leg->media.remote_rtp_port != 0) {
    if (std::optional<MediaStats> stats = media_->Stats(leg->id)) {
      listener_->OnCallQuality(leg->id, *stats, /*final=*/true);
    }
  }
  media_->Close(leg->id);
  leg->local_port = 0;
}

void SofiaSipStack::Impl::ReportDetails(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  SipCallDetails details;
  details.sip_call_id = leg->sip_call_id;
  details.remote_uri = leg->remote_aor;
  listener_->OnCallDetails(leg->id, details);
}

// One timer for all calls: each established call with media gets its
// statistics read (a copy under the engine's lock) and reported.
void SofiaSipStack::Impl::OnQualityTimer(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* self = static_cast<Impl*>(static_cast<void*>(arg));
  TELESTRA_ASSERT_ON(self->owner_);
  SipThread::DestroyTimer(self->quality_timer_);
  if (self->shutting_down_) return;
  self->quality_timer_ = self->thread_.StartTimer(&Impl::OnQualityTimer, self,
                                                  int64_t{self->rtp_.quality_interval} * 1000);
  std::vector<std::pair<int64_t, MediaStats>> reports;
  for (const auto& [id, leg] : self->calls_) {
    if (!IsEstablished(leg->state) || leg->local_port == 0 || leg->media.remote_rtp_port == 0) {
      continue;
    }
    if (std::optional<MediaStats> stats = self->media_->Stats(id)) {
      reports.emplace_back(id, *stats);
    }
  }
  // Reported after the walk over calls_, which a listener call must not
  // see half done.
  for (const auto& [id, stats] : reports) self->listener_->OnCallQuality(id, stats, false);
}

// Applies a completed offer/answer to the call's media.
void SofiaSipStack::Impl::ApplyAudio(CallLeg* leg, const AudioSession& session) {
  TELESTRA_ASSERT_ON(owner_);
  leg->media.remote_address = session.address;
  leg->media.remote_rtp_port = session.port;
  leg->media.payload_type = session.payload_type;
  leg->media.telephone_event_payload_type = session.telephone_event;
  leg->media.direction = session.send && session.recv ? MediaDirection::kSendRecv
                         : session.send               ? MediaDirection::kSendOnly
                         : session.recv               ? MediaDirection::kRecvOnly
                                                      : MediaDirection::kInactive;
  // We hold: our offer was sendonly. The far end holds us: it does not
  // want our audio (we only receive), or sends nothing while we did not
  // ask for hold.
  bool remote_hold = !session.send || (!session.recv && !leg->local_hold);
  if (IsEstablished(leg->state) && remote_hold != leg->remote_hold) {
    leg->remote_hold = remote_hold;
    listener_->OnCallHold(leg->id, leg->local_hold, remote_hold);
  } else {
    leg->remote_hold = remote_hold;
  }
  UpdateMedia(leg);
}

void SofiaSipStack::Impl::UpdateMedia(CallLeg* leg) {
  TELESTRA_ASSERT_ON(owner_);
  leg->media.held = leg->local_hold || leg->remote_hold;
  if (leg->local_port != 0 && leg->media.remote_rtp_port != 0) {
    media_->Update(leg->id, leg->media);
  }
  if (IsEstablished(leg->state)) JournalLeg(leg);  // a re-INVITE's or UPDATE's media, hold
}

// A call that cannot have audio: hung up once it is established (BYE),
// ended with 488 and `why`, never reported answered.
void SofiaSipStack::Impl::RefuseMedia(CallLeg* leg, std::string why) {
  TELESTRA_ASSERT_ON(owner_);
  spdlog::warn("call {}: {}; hanging up", leg->id, why);
  leg->end_code = 488;
  leg->end_reason = std::move(why);
  leg->media_refused = true;
  if (IsEstablished(leg->state)) {
    SendBye(leg);
  } else {
    Move(leg, CallEvent::kHangup);  // the BYE follows once it is (OnEstablished)
  }
}

// The session that the far end's answer `body` (null: none) to our offer
// makes; `hold`: what the offer asked.
absl::StatusOr<AudioSession> SofiaSipStack::Impl::SessionFromAnswer(const sip_payload_t* body,
                                                                    bool hold) const {
  TELESTRA_ASSERT_ON(owner_);
  if (body == nullptr) return absl::FailedPreconditionError("no SDP answer");
  absl::StatusOr<RemoteSdp> answer = ParseBody(body);
  if (!answer.ok()) return answer.status();
  return sdp_writer_->FromAnswer(*answer, hold);
}

// The far end's answer to our offer (in a 18x/2xx or an ACK). `required`:
// the call cannot go on without it (a new call's 2xx or ACK).
bool SofiaSipStack::Impl::OnAnswer(CallLeg* leg, const sip_payload_t* body, bool hold,
                                   bool required) {
  TELESTRA_ASSERT_ON(owner_);
  absl::StatusOr<AudioSession> session = SessionFromAnswer(body, hold);
  if (session.ok()) {
    ApplyAudio(leg, *session);
    return true;
  }
  if (required && !IsHangingUp(leg->state)) {
    RefuseMedia(leg, absl::StrCat("Unusable SDP answer: ", session.status().message()));
  } else {
    spdlog::warn("call {}: SDP answer ignored: {}", leg->id,
                 std::string(session.status().message()));
  }
  return false;
}

// Our SDP for a 2xx to an INVITE carrying `offer` (or to an UPDATE): our
// answer, whose session is applied at once; with no offer, an offer of
// ours, whose answer comes in the ACK. An error: `offer` cannot be
// answered.
absl::StatusOr<std::string> SofiaSipStack::Impl::ResponseSdp(CallLeg* leg, const RemoteSdp* offer) {
  TELESTRA_ASSERT_ON(owner_);
  if (offer == nullptr) {
    leg->offered_in_response = true;
    return LocalSdp(leg, sdp_writer_->OfferBody(leg->local_port, leg->local_hold));
  }
  AudioSession session;
  absl::StatusOr<std::string> answer =
      sdp_writer_->AnswerBody(*offer, leg->local_port, leg->local_hold, &session);
  if (!answer.ok()) return answer.status();
  ApplyAudio(leg, session);
  return LocalSdp(leg, *std::move(answer));
}

}  // namespace telestra::backend
