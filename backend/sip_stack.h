#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/account_config.h"
#include "backend/call_journal.h"
#include "backend/call_audio_tap.h"
#include "backend/dtmf.h"
#include "backend/media_engine.h"

namespace telestra::backend {

// What identifies a call on the SIP side (SipStackListener::OnCallDetails).
struct SipCallDetails {
  std::string sip_call_id;  // the dialog's Call-ID
  // The far end's URI: our INVITE's Request-URI (outgoing), the From of
  // theirs (incoming).
  std::string remote_uri;
};

// A call the journal carried across a restart (docs/restart.md).
struct RestoredCall {
  int64_t call_id = 0;
  // The plan's account of the call (its name empty when the plan no longer
  // has it: the call is ended).
  AccountConfig account;
  telestra::state::JournalDialog dialog;
};

// What the SIP stack reports back to the backend.
// Thread: called on the SIP thread only; must not block.
class SipStackListener {
 public:
  virtual ~SipStackListener() = default;

  // The registration of `account` (attempt `generation`, as given to
  // Register/Unregister) changed. `status` is 100 while a first attempt is
  // in flight, 200 when registered, 0 when unregistered, otherwise the final
  // SIP status of the failed REGISTER (401, 403, 408, 503 ...).
  // `retrying` is true when the stack will try again by itself (backoff).
  virtual void OnRegistration(const std::string& account, uint64_t generation,
                              int status, const std::string& reason,
                              bool retrying) = 0;

  // A REGISTER of `account` (attempt `generation`) was accepted: the
  // binding lasts until `expires` unless refreshed. Just before the
  // OnRegistration(200) of the same answer (a refresh's too).
  virtual void OnRegistrationExpires(const std::string& account, uint64_t generation,
                                     absl::Time expires) = 0;

  // An INVITE arrived for `account`. Returns the new call's id (the backend
  // broadcasts call-incoming), or -1 to refuse it (the stack answers 480).
  virtual int64_t OnIncomingCall(const std::string& account, const std::string& caller,
                                 const std::string& caller_name) = 0;

  // A provisional answer (180-199) to an outgoing call's INVITE; once per
  // such answer. `early_media`: it carried an SDP answer that the call's
  // media now uses (the far end's audio flows before the call is answered).
  virtual void OnCallProgress(int64_t call_id, int code, bool early_media) = 0;

  // The call's SIP dialog exists: once per call that gets one, before
  // anything else of it but OnIncomingCall (an incoming call's right after
  // OnIncomingCall accepted it; an outgoing call's before its INVITE).
  virtual void OnCallDetails(int64_t call_id, const SipCallDetails& details) = 0;

  // The media statistics of a call whose media has started: every
  // `[rtp-settings] quality-interval` seconds while it is established
  // (`final` false; none when the interval is 0), and once just before its
  // media closes (`final` true; OnCallEnded follows).
  virtual void OnCallQuality(int64_t call_id, const MediaStats& stats, bool final) = 0;

  // The call is established (2xx + ACK), once per call.
  virtual void OnCallEstablished(int64_t call_id) = 0;

  // The negotiated media direction changed: `local_hold` we hold the far
  // end, `remote_hold` the far end holds us.
  virtual void OnCallHold(int64_t call_id, bool local_hold, bool remote_hold) = 0;

  // The final answer to a HoldCall re-INVITE: `code` 2xx when the far end
  // accepted the hold (`hold`) or resume, else the failure (the call goes
  // on as it was). One per HoldCall on a call that is still up.
  virtual void OnHoldResult(int64_t call_id, bool hold, int code, const std::string& reason) = 0;

  // The far end of call `call_id` sent a DTMF digit (0-9 * # A-D), as RFC
  // 4733 telephone-events or in a SIP INFO; `duration_ms` as it reported
  // (0 if it did not). Once per digit.
  virtual void OnDtmfReceived(int64_t call_id, char digit, int duration_ms,
                              DtmfMethod method) = 0;

  // The digits of SendDtmf `request` are out (`code` 200), or sending
  // failed (`code` the SIP status of the refused INFO, or 0, and `reason`).
  // Once per request on a call that is still up; never after OnCallEnded.
  virtual void OnDtmfSent(int64_t call_id, uint64_t request, int code,
                          const std::string& reason) = 0;

  // The far end of call `call_id`, which we transfer, reports `code` (the
  // status line of a NOTIFY's message/sipfrag).
  virtual void OnTransferProgress(int64_t call_id, int code) = 0;

  // The transfer of `call_id` failed (`code` >= 300 or 0, `reason`): the
  // REFER was refused, the final NOTIFY reported a failure, or none came in
  // time. The call stays up. (On success the stack ends the call itself,
  // reason "Transferred".)
  virtual void OnTransferFailed(int64_t call_id, int code, const std::string& reason) = 0;

  // The far end of call `call_id` asks us (REFER) to call `num` (the user at
  // the account's server, or a whole URI). Returns the new call's id (the
  // backend broadcasts call-started), or -1 to decline (the REFER gets 603).
  virtual int64_t OnTransferRequested(int64_t call_id, const std::string& num) = 0;

  // The call is over; exactly once per call id the stack ever reported or
  // was asked to make. `code` is the SIP status that ended it (0 if none).
  virtual void OnCallEnded(int64_t call_id, int code, const std::string& reason) = 0;
};

// The backend's view of a SIP user agent. The only implementation over a
// real stack is SofiaSipStack (backend/sip/); tests use fakes.
// Thread: every method may be called from any thread; work is posted to the
// stack's own thread and results come back through SipStackListener.
class SipStack {
 public:
  virtual ~SipStack() = default;

  // Binds the SIP port and starts the stack's thread.
  virtual absl::Status Start(SipStackListener* listener) = 0;

  // Registers `account` with its credentials, replacing any earlier
  // registration of the same account (which is unregistered first).
  virtual void Register(const AccountConfig& account, uint64_t generation) = 0;

  // Unregisters (REGISTER Expires: 0) and forgets the account.
  virtual void Unregister(const std::string& account, uint64_t generation) = 0;

  // Whether MakeCall can dial `number` for `account`: a dial string or a
  // sip:/sips:/tel: URI (backend/sip/dial_target.h); InvalidArgument
  // "Invalid number: <number>" otherwise. Thread: any; does not block.
  virtual absl::Status CheckNumber(const AccountConfig& account,
                                   const std::string& number) const = 0;

  // Places call `call_id` from `account` to `number` (checked with
  // CheckNumber: a user at the account's server, or a full URI). From
  // another thread it only posts; on the stack's own thread the INVITE goes
  // out at once, and a call that cannot start (no RTP port, shutting down)
  // is reported ended before it returns: the caller holds no lock of its
  // own that the listener takes. False when the stack no longer takes calls
  // (stopped), and then no listener call ever comes for this call (the
  // caller ends it).
  virtual bool MakeCall(int64_t call_id, const AccountConfig& account,
                        const std::string& number) = 0;

  // Answers an incoming call (200 OK with SDP).
  virtual void AnswerCall(int64_t call_id) = 0;

  // Ends a call: CANCEL (outgoing, not answered), 486 (incoming, not
  // answered) or BYE (established). Unknown or ended ids are ignored.
  virtual void HangupCall(int64_t call_id) = 0;

  // Holds (re-INVITE a=sendonly) or resumes (a=sendrecv) an established call.
  virtual void HoldCall(int64_t call_id, bool hold) = 0;

  // Sends `digits` (valid DTMF, backend/dtmf.h; each `duration_ms` long)
  // on an established call: RFC 4733 telephone-events when the far end
  // negotiated them and the account's plan does not say `dtmf = info`,
  // else one SIP INFO (application/dtmf-relay) per digit, each after the
  // previous one's answer. OnDtmfSent(request) follows once, unless the
  // call ends first.
  virtual void SendDtmf(int64_t call_id, uint64_t request, const std::string& digits,
                        int duration_ms) = 0;

  // Attaches an application's audio stream to the call's media (on the SIP
  // thread, after whatever was asked before): MediaEngine::AttachAudio. A
  // call that has ended (or has no media) stops the tap with "Call ended".
  virtual void AttachAudio(int64_t call_id, std::shared_ptr<CallAudioTap> tap) = 0;

  // Transfers an established call with REFER: to `number` (blind; as
  // MakeCall's) or, when `to_call_id` >= 0, to the far end of that call
  // (attended: Refer-To with Replaces). OnTransferProgress follows for
  // each NOTIFY, then either the call's end (reason "Transferred") or
  // OnTransferFailed.
  virtual void TransferCall(int64_t call_id, const std::string& number, int64_t to_call_id) = 0;

  // Unregisters every account and stops the stack, waiting at most
  // `deadline`. Blocks. After it returns no listener call is made.
  virtual void Shutdown(absl::Duration deadline) = 0;
  // From Start on, every call's dialog is noted in `journal` (which must
  // outlive the stack). Before Start.
  virtual void SetJournal(CallJournal* /*journal*/) {}
  // After Start, before any account registers: the journal's calls of the
  // last run. Established ones go on (same dialog, same RTP port); the
  // others end (CANCEL for our INVITE, 480 to theirs) and, like those that
  // cannot be restored, are reported ended with reason "Gateway
  // restarted".
  virtual void RestoreCalls(std::vector<RestoredCall> /*calls*/) {}
  // `[state-settings] keep-calls-on-stop`: stops the stack without ending
  // its calls or unregistering (the next start restores them). Blocks.
  // After it returns no listener call is made.
  virtual void StopKeepingCalls(absl::Duration deadline) { Shutdown(deadline); }

  // The local SIP port actually bound (after Start).
  virtual int port() const = 0;
};

}  // namespace telestra::backend
