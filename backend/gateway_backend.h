#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/account_config.h"
#include "backend/backend.h"
#include "backend/call_quality.h"
#include "backend/event_hub.h"
#include "backend/histogram.h"
#include "backend/media_engine.h"
#include "backend/sip_stack.h"

namespace telestra::backend {

// The backend: owns the accounts' state, drives the SIP stack and turns what
// the stack reports into state changes plus events (the state changes first,
// the event last, so that a get-status after an event always agrees).
//
// Thread: public methods any thread; SipStackListener methods on the SIP
// thread. State is guarded by mu_; the lock is never held while calling the
// SIP stack (which only posts) — it is held while publishing to the hub so
// that events and state stay in the same order.
// The SipStackListener methods open an EventHub::ReplyScope before they take
// mu_: a broadcast to a few clients is then written by the SIP thread as
// the method returns, after mu_ is released, without a hand-over to the
// hub's thread (a larger one goes to that thread).
class GatewayBackend : public Backend, public SipStackListener {
 public:
  GatewayBackend(std::vector<AccountConfig> accounts, SipStack* stack,
                 EventHub* hub);

  // Registers every account whose plan says register = true.
  void Start();

  // What Reload did, account names in plan order.
  struct ReloadSummary {
    std::vector<std::string> added;
    std::vector<std::string> removed;
    std::vector<std::string> changed;
    std::vector<std::string> unchanged;
  };

  // Applies a re-read plan's accounts (SIGHUP; docs/configuration.md,
  // "Reloading the plan"): an account new to the plan is added (and
  // registers if its plan says register = true); one no longer in it ends
  // its calls, unregisters and is forgotten (account-status 0 "Removed from
  // the plan"); one whose section changed logs in again with it (a login
  // made by a client is replaced; its calls go on); an unchanged one is left
  // alone, calls, login and all. The plan order becomes the new one.
  ReloadSummary Reload(std::vector<AccountConfig> accounts);

  // Audio streams one call may have (`[rtp-settings] max-streams-per-call`);
  // set before Start.
  void set_max_audio_streams_per_call(int max) { max_audio_streams_per_call_ = max; }

  // Where get-status and the snapshots read a call's live quality (codec,
  // packets, loss, jitter, round trip, MOS); unset: those stay empty. Set
  // before Start; it must outlive the backend. The engine's own lock is a
  // leaf: it is read after mu_ is released.
  void set_media(const MediaEngine* media) { media_ = media; }

  // The journal ([state-settings] dir) where each call is noted as the API
  // reports it (the stack notes its dialog); it must outlive the backend.
  // Set before RestoreCalls and Start.
  void set_journal(CallJournal* journal) { journal_ = journal; }

  // Before Start: the calls the journal carried across a restart get their
  // records again (same ids, states, peers and times; an established call
  // ACTIVE, HELD or REMOTE_HELD as its dialog was) and new call ids start at
  // `next_call_id`. Returns what the SIP stack needs to restore or end each
  // (SipStack::RestoreCalls); those that end are reported through
  // OnCallEnded as usual. A call whose call-ended is in the restored event
  // `history` is over already (the crash came before the journal dropped
  // it) and is left out.
  std::vector<RestoredCall> RestoreCalls(const std::vector<telestra::state::JournalCall>& calls,
                                         int64_t next_call_id,
                                         const std::vector<telestra::v1::Event>& history = {});

  // The calls that the restored event `history` shows begun (an event of
  // theirs) and never ended (no call-ended), but that are not among the
  // journal's `calls`: a crash came between their first event and the
  // journal's next write of its calls (docs/restart.md). Each gets its
  // call-ended, reason "Gateway restarted", so that no client is left with
  // a call that never ends. Before Start; returns how many.
  int EndCallsLeftOpen(const std::vector<telestra::v1::Event>& history,
                       const std::vector<telestra::state::JournalCall>& calls);

  // Backend:
  absl::Status Login(const telestra::v1::LoginCommand& login) override;
  absl::Status Logout(absl::string_view account) override;
  absl::StatusOr<int64_t> MakeCall(
      absl::string_view account, absl::string_view number,
      absl::FunctionRef<void(int64_t)> on_call_id) override;
  absl::Status AnswerCall(absl::string_view account, int64_t call_id) override;
  absl::Status SwitchCall(absl::string_view account, int64_t call_id) override;
  absl::Status HangupCall(absl::string_view account, int64_t call_id) override;
  absl::Status SendDtmf(absl::string_view account, int64_t call_id, absl::string_view digits,
                        int duration_ms, DtmfDone on_done) override;
  absl::Status TransferCall(absl::string_view account, int64_t call_id, absl::string_view number,
                            std::optional<int64_t> to_call_id) override;
  absl::Status OpenCallAudio(absl::string_view account, int64_t call_id,
                             std::shared_ptr<CallAudioTap> tap) override;
  absl::StatusOr<telestra::v1::Status> GetStatus(
      absl::string_view account) const override;
  std::vector<telestra::v1::Status> ListAccounts() const override;

  // Calls placed or received since start (the next call id).
  int64_t calls_started() const;

  // What /metrics shows of the calls (docs/metrics.md). Thread: any.
  struct CallStats {
    // Seconds from make-call (its INVITE leaves at once) to the far end's
    // 2xx; from an incoming INVITE to the call's establishment (answer-call
    // and the ACK).
    Histogram::Snapshot setup_outgoing_seconds;
    Histogram::Snapshot setup_incoming_seconds;
    std::map<int, uint64_t> ended_by_code;  // call-ended code -> calls
    // At the end of each call that received audio: its loss (a ratio, late
    // packets included), jitter (seconds) and MOS.
    Histogram::Snapshot loss_ratio;
    Histogram::Snapshot jitter_seconds;
    Histogram::Snapshot mos;
  };
  CallStats call_stats() const;

  // SipStackListener:
  void OnRegistration(const std::string& account, uint64_t generation,
                      int status, const std::string& reason,
                      bool retrying) override;
  void OnRegistrationExpires(const std::string& account, uint64_t generation,
                             absl::Time expires) override;
  int64_t OnIncomingCall(const std::string& account, const std::string& caller,
                         const std::string& caller_name) override;
  void OnCallProgress(int64_t call_id, int code, bool early_media) override;
  void OnCallDetails(int64_t call_id, const SipCallDetails& details) override;
  void OnCallQuality(int64_t call_id, const MediaStats& stats, bool final) override;
  void OnCallEstablished(int64_t call_id) override;
  void OnCallHold(int64_t call_id, bool local_hold, bool remote_hold) override;
  void OnHoldResult(int64_t call_id, bool hold, int code, const std::string& reason) override;
  void OnDtmfReceived(int64_t call_id, char digit, int duration_ms, DtmfMethod method) override;
  void OnTransferProgress(int64_t call_id, int code) override;
  void OnTransferFailed(int64_t call_id, int code, const std::string& reason) override;
  int64_t OnTransferRequested(int64_t call_id, const std::string& num) override;
  void OnDtmfSent(int64_t call_id, uint64_t request, int code, const std::string& reason) override;
  void OnCallEnded(int64_t call_id, int code, const std::string& reason) override;

 private:
  // A send-dtmf queued in the SIP stack, until OnDtmfSent or the call's end.
  struct DtmfRequest {
    int64_t call_id = 0;
    std::string digits;
    DtmfDone on_done;
  };

  struct CallRecord {
    int64_t id = 0;
    std::string account;
    telestra::v1::CallDirection direction = telestra::v1::CALL_DIRECTION_UNSPECIFIED;
    telestra::v1::CallState state = telestra::v1::CALL_STATE_UNSPECIFIED;
    std::string peer;
    std::string peer_name;
    absl::Time start_time;                         // AddCall
    absl::Time answer_time = absl::InfinitePast();  // established; InfinitePast before
    SipCallDetails sip;                            // OnCallDetails; empty before
    // What the SIP stack reported: `state` (DIALING/INCOMING, RINGING on
    // call-ringing, ACTIVE once established, HELD/REMOTE_HELD from the hold
    // directions below; the call is established exactly when it is one of
    // the last three: Established()).
    bool local_hold = false;   // we hold the far end (its re-INVITE succeeded)
    bool remote_hold = false;  // the far end holds us
    // What the commands asked, not yet confirmed by the stack (backend-side:
    // a second answer-call or hangup-call is refused or ignored at once).
    bool answering = false;    // answer-call sent, not yet established
    bool hanging_up = false;   // hangup-call sent, not yet ended
    bool hold_wanted = false;  // what the last switch-call asked for
    bool transferring = false;  // transfer-call sent, no result yet
    // The last call-progress reported (code 0: none yet).
    int progress_code = 0;
    bool early_media = false;
    // Applications' audio streams (the stopped ones are let go whenever the
    // list is looked at); DTMF the far end sends is told to them.
    std::vector<std::shared_ptr<CallAudioTap>> audio_taps;

    bool Established() const {
      return state == telestra::v1::CALL_STATE_ACTIVE || state == telestra::v1::CALL_STATE_HELD ||
             state == telestra::v1::CALL_STATE_REMOTE_HELD;
    }
  };

  struct AccountState {
    AccountConfig config;  // as used now (a login changes user, password, server)
    AccountConfig plan;    // as the plan last said (what Reload compares)
    int status = 0;  // account_status as the API reports it
    std::string reason;
    uint64_t generation = 0;  // bumped by every login/logout
    // The registrar's binding lasts until then (status 200 only; else
    // InfinitePast).
    absl::Time registration_expires = absl::InfinitePast();
  };

  // A new call of `account` with the next id: incoming calls start
  // INCOMING, outgoing ones DIALING.
  CallRecord& AddCall(const std::string& account, telestra::v1::CallDirection direction,
                      std::string peer, std::string peer_name = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Sets the status and broadcasts account-status if it changed.
  void SetStatus(AccountState& state, int status, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckAccount(absl::string_view account) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The call `call_id` of `account`, or NotFound "Unknown call id N for
  // account: X" (also for a call of another account).
  absl::StatusOr<CallRecord*> FindCall(absl::string_view account, int64_t call_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Derives the API state of an established call from its hold flags and
  // broadcasts call-held / call-resumed when the local hold changed.
  void UpdateHoldState(CallRecord& call, bool was_locally_held)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  telestra::v1::Status StatusOf(const AccountState& state) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fills the calls' codec and quality from the media engine (if set),
  // without mu_ (the engine's lock is taken instead).
  void AddLiveQuality(telestra::v1::Status& status) const ABSL_LOCKS_EXCLUDED(mu_);

  // A `fail` event for `account`.
  static telestra::v1::Event FailEvent(const std::string& account, std::string error,
                                       telestra::v1::FailKind kind);

  // Notes the call as the API reports it in the journal (if any).
  void NoteCall(const CallRecord& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  SipStack* const stack_;
  EventHub* const hub_;
  CallJournal* journal_ = nullptr;  // fixed before Start
  // The accounts' and calls' state.
  // Lock order: backend mu_ before hub mu_ (events are published under it,
  // so that state and events keep one order) and before an audio tap's
  // own lock and the histograms' (leaves); nothing else is taken or called
  // with it held (the media engine's statistics are read after it is
  // released): never the SIP stack (its methods are called after
  // releasing it), never a socket, never a reply callback (MakeCall's
  // on_call_id runs without it). Listener methods take it on the SIP thread,
  // which holds no lock of its own while calling them.
  mutable absl::Mutex mu_;
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);  // plan order
  std::map<std::string, AccountState, std::less<>> accounts_ ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t next_call_id_ ABSL_GUARDED_BY(mu_) = 0;  // service-wide, never reused
  std::map<int64_t, CallRecord> calls_ ABSL_GUARDED_BY(mu_);
  uint64_t next_dtmf_request_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, DtmfRequest> dtmf_requests_ ABSL_GUARDED_BY(mu_);
  int max_audio_streams_per_call_ = 4;  // fixed before Start
  const MediaEngine* media_ = nullptr;   // fixed before Start
  std::map<int, uint64_t> ended_by_code_ ABSL_GUARDED_BY(mu_);
  // Observed under mu_ (their own locks are leaves).
  Histogram setup_outgoing_seconds_{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  Histogram setup_incoming_seconds_{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  Histogram loss_ratio_{0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5};
  Histogram jitter_seconds_{0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2};
  Histogram mos_{1, 2, 3, 3.5, 3.8, 4, 4.2, 4.3, 4.4};
};

}  // namespace telestra::backend
