#pragma once

#include <memory>

#include "backend/account_config.h"
#include "backend/media_engine.h"
#include "backend/sip_stack.h"

namespace telestra::backend {

// The SIP user agent over sofia-sip's NUA. This header is the only face of
// backend/sip/: no sofia type is visible outside that folder.
//
// One thread runs sofia's su_root and owns every nua call and every sofia
// object; the public methods only post work to it (an eventfd wakes the
// loop). Registration per account: digest auth answered once per request (a
// second challenge means the credentials are wrong: reported, not retried),
// refresh by sofia before expiry, re-register with exponential backoff and
// jitter after a transient failure, unregister on logout and on shutdown.
//
// Calls: INVITE through the account's server with an SDP offer of the
// plan's codecs (+ telephone-event), 180 Ringing for incoming calls, answer
// with SDP, hold/resume by re-INVITE (a=sendonly / sendrecv), CANCEL / 486 /
// BYE to hang up; delayed-offer INVITEs and offerless re-INVITEs are handled
// by sofia's offer/answer engine. The negotiated SDP drives `media`: one
// RTP port pair per call, opened before the offer/answer and closed when
// the call ends.
//
// Thread: public methods any thread; listener calls on the SIP thread.
class SofiaSipStack : public SipStack {
 public:
  // `media` must outlive the stack.
  SofiaSipStack(SipConfig config, RtpConfig rtp, MediaEngine* media);
  ~SofiaSipStack() override;

  absl::Status Start(SipStackListener* listener) override;
  void Register(const AccountConfig& account, uint64_t generation) override;
  void Unregister(const std::string& account, uint64_t generation) override;
  void MakeCall(int64_t call_id, const AccountConfig& account, const std::string& number) override;
  void AnswerCall(int64_t call_id) override;
  void HangupCall(int64_t call_id) override;
  void HoldCall(int64_t call_id, bool hold) override;
  void Shutdown(absl::Duration deadline) override;
  int port() const override;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace telestra::backend
