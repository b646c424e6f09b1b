#pragma once

#include <memory>

#include "backend/account_config.h"
#include "backend/fd_loop.h"
#include "backend/histogram.h"
#include "backend/media_engine.h"
#include "backend/sip_stack.h"

namespace telestra::backend {

// The SIP user agent over sofia-sip's transaction layer (nta). This header
// is the only face of backend/sip/: no sofia type is visible outside that
// folder.
//
// One thread runs sofia's su_root and owns every sofia object; the public
// methods only post work to it (an eventfd wakes the loop). sofia's nta
// does the transactions (retransmissions, 2xx until ACKed, ACKs that catch
// retransmitted 2xx, CANCEL matching, 487); everything above them is ours:
//
// Registration per account: REGISTER with digest auth answered once per
// request (a second challenge means the credentials are wrong: reported,
// not retried), the credentials of the last challenge sent with the next
// REGISTER, refresh at half the granted lifetime, re-register with
// exponential backoff and jitter after a transient failure, unregister on
// logout, on a login that replaces the account, and on shutdown.
//
// Calls (one dialog each, nta legs): INVITE through the account's server
// with an SDP offer of the plan's codecs (+ telephone-event) and the
// account's cached INVITE credentials, 180 Ringing for incoming calls (no
// 100 Trying before the call is reported), answer with SDP, hold/resume by
// re-INVITE (a=sendonly / sendrecv, one INVITE transaction at a time; 491
// on glare), re-INVITEs and UPDATEs from the far end answered with our
// answer (or our offer when they have none), CANCEL / 486 / BYE to hang
// up, a late 2xx after our CANCEL ACKed and BYEd. Delayed-offer INVITEs:
// our offer in the 200, the answer read from the ACK. The offer/answer is
// sdp_offer_answer.h's; the negotiated SDP drives `media`: one RTP port
// pair per call, opened before the offer/answer and closed when the call
// ends.
//
// The SIP thread also serves as an FdLoop: other parts of the service (the
// native port) may have it wait for their sockets too.
//
// Where the code lives (one job per file, the class's private parts in
// sofia_sip_stack_impl.h): sip_thread.h (the thread, its task queue and
// polling loop, FdLoop, timers), sofia_sip_stack.cc (start, shutdown),
// registration.cc with
// registration_state.h (an account's states and transitions),
// incoming_calls.cc, outgoing_calls.cc and call_ending.cc with call_leg.h
// (a call's states and transitions), call_media.cc, dtmf_calls.cc (DTMF
// both ways, dtmf_info.h for INFO bodies), transfers.cc (REFER both ways,
// refer_syntax.h), sip_messages.cc,
// digest_cache.h, sdp_offer_answer.h, inbound_policy.h, dial_target.h.
//
// Thread: public methods any thread; listener calls on the SIP thread.
class SofiaSipStack : public SipStack, public FdLoop {
 public:
  // `media` must outlive the stack.
  SofiaSipStack(SipConfig config, RtpConfig rtp, MediaEngine* media);
  ~SofiaSipStack() override;

  absl::Status Start(SipStackListener* listener) override;
  void Register(const AccountConfig& account, uint64_t generation) override;
  void Unregister(const std::string& account, uint64_t generation) override;
  absl::Status CheckNumber(const AccountConfig& account,
                           const std::string& number) const override;
  bool MakeCall(int64_t call_id, const AccountConfig& account, const std::string& number) override;
  void AnswerCall(int64_t call_id) override;
  void HangupCall(int64_t call_id) override;
  void HoldCall(int64_t call_id, bool hold) override;
  void AttachAudio(int64_t call_id, std::shared_ptr<CallAudioTap> tap) override;
  void SendDtmf(int64_t call_id, uint64_t request, const std::string& digits,
                int duration_ms) override;
  void TransferCall(int64_t call_id, const std::string& number, int64_t to_call_id) override;
  void Shutdown(absl::Duration deadline) override;
  void SetJournal(CallJournal* journal) override;
  void RestoreCalls(std::vector<RestoredCall> calls) override;
  void StopKeepingCalls(absl::Duration deadline) override;
  int port() const override;

  // What the stack refused or ended on its own, for /metrics.
  struct Stats {
    uint64_t untrusted_requests = 0;        // INVITEs from strangers, answered 403
    uint64_t foreign_realm_challenges = 0;  // calls ended, challenge not answered
    uint64_t ring_timeouts = 0;             // incoming calls answered 480
    uint64_t invite_timeouts = 0;           // outgoing calls cancelled, 408
    uint64_t ringing_refused = 0;           // INVITEs over max-ringing, answered 486
    // Seconds from a REGISTER (or refresh) to its 2xx, a challenge included.
    Histogram::Snapshot registration_seconds;
  };
  // Thread: any.
  Stats stats() const;

  WatchId Watch(int fd, std::function<bool()> on_readable) override;
  void Unwatch(WatchId id) override;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace telestra::backend
