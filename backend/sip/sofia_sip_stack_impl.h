#pragma once

// Private to backend/sip/: the parts of SofiaSipStack (one file each, named
// in the declarations below). Nothing outside this folder includes it.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "backend/histogram.h"
#include "backend/call_journal.h"
#include "backend/network_list.h"
#include "backend/sip/call_leg.h"
#include "backend/sip/dial_target.h"
#include "backend/sip/digest_cache.h"
#include "backend/sip/inbound_policy.h"
#include "backend/sip/registration_state.h"
#include "backend/sip/sdp_offer_answer.h"
#include "backend/sip/session_timer.h"
#include "backend/sip/sip_thread.h"
#include "backend/sip/sofia_sip_stack.h"
#include "backend/sip_syntax.h"
#include "backend/thread_owner.h"
#include "spdlog/spdlog.h"

// sofia-sip: only ever included in backend/sip/.
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/url.h>

namespace telestra::backend {

// The SIP user agent, run by the SIP thread (sip_thread.h). Its parts, one
// file each (the "---- file" lines below say which): sofia_sip_stack.cc
// (start and shutdown), registration.cc, incoming_calls.cc,
// outgoing_calls.cc, call_ending.cc, call_media.cc, sip_messages.cc. A
// call's states are call_leg.h, a registration's registration_state.h.
// Thread: SIP thread only, except the methods marked "Thread: any"
// (TELESTRA_ASSERT_ON(owner_) checks the others).
class SofiaSipStack::Impl {
 public:
  static constexpr char kUserAgent[] = "Telestra-SIP-Gateway/0.1";
  static constexpr char kSdpType[] = "application/sdp";
  static constexpr char kAllow[] = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, REFER, NOTIFY";
  // How long a cancelled outgoing call waits for the final answer to its
  // INVITE (normally 487 within milliseconds) before it is reported ended.
  static constexpr absl::Duration kCancelWait = absl::Seconds(4);
  // How long a CANCEL waits for the far end's first provisional response
  // (anything above 100) before it goes anyway: see HangupCall.
  static constexpr absl::Duration kCancelHold = absl::Milliseconds(500);

  // "host:port" for a URI; IPv6 literals get brackets.
  static std::string HostPort(const std::string& host, int port);
  // Final REGISTER statuses that retrying cannot fix.
  static bool IsPermanentFailure(int status);

  // Thread: SIP thread only.
  struct Registration {
    explicit Registration(Impl* owner) : impl(owner) {}
    Impl* const impl;  // for sofia's callbacks
    AccountConfig config;
    AccountConfig bound;  // the account as registered (a new login replaces config)
    absl::Time sent_at;   // when the current REGISTER (before any challenge) left
    uint64_t generation = 0;
    nta_leg_t* leg = nullptr;       // Call-ID, tags and CSeq of the REGISTERs
    nta_outgoing_t* orq = nullptr;  // the REGISTER in flight
    std::unique_ptr<DigestCache> auth;
    int challenges = 0;  // challenges answered in the current request
    int failures = 0;    // consecutive transient failures (backoff)
    // Where the registration stands (registration_state.h): moved only by
    // Move().
    RegistrationState state = RegistrationState::kUnregistered;
    bool pending_register = false;  // register again once unregistered
    su_timer_t* retry = nullptr;
    su_timer_t* refresh = nullptr;
  };

  // One call, incoming or outgoing: a dialog (nta leg) and its
  // transactions.
  // Thread: SIP thread only.
  struct CallLeg {
    explicit CallLeg(Impl* owner) : impl(owner) {}
    Impl* const impl;  // for sofia's callbacks
    int64_t id = -1;
    AccountConfig account;
    nta_leg_t* leg = nullptr;
    std::string target;             // the Request-URI of an outgoing call
    bool target_in_domain = false;  // a user at the account's server
    // Our INVITE until its final answer: the call's before it is
    // established, a re-INVITE after.
    nta_outgoing_t* invite = nullptr;
    // The far end's INVITE until its ACK, or until our final answer when
    // that is not a 2xx: the call's before it is established, a re-INVITE
    // after.
    nta_incoming_t* irq = nullptr;
    nta_outgoing_t* bye = nullptr;
    // DTMF sent as SIP INFO, one digit per INFO: `info` is the one in
    // flight, `info_digits` what follows (the front is in flight).
    nta_outgoing_t* info = nullptr;
    struct InfoDigit {
      char digit = 0;
      int duration_ms = 0;
      uint64_t request = 0;
      bool last_of_request = false;
    };
    std::deque<InfoDigit> info_digits;
    // The far end's URI (our INVITE's target, or their INVITE's From): what
    // an attended transfer to this call refers to.
    std::string remote_aor;
    std::string sip_call_id;  // the dialog's Call-ID
    // Our side's and the far end's From/To header values as the dialog
    // started (tags aside): what the journal keeps (restore.cc).
    std::string local_header;
    std::string remote_header;
    // A call the journal restored: the RTP port it had (OpenMedia opens it).
    int restored_port = 0;
    // We transfer this call: the REFER until its answer, then its NOTIFYs
    // until the final one (or kTransferTimeout).
    nta_outgoing_t* refer = nullptr;
    bool transferring = false;
    int64_t transfer_to_call = -1;  // attended: the call whose far end is the target
    su_timer_t* transfer_timer = nullptr;
    // The far end transferred us: on its call, the call we started for it
    // (its progress goes back in NOTIFYs); on that new call, the call that
    // was REFERred, and the headers of its INVITE.
    int64_t referred_call = -1;
    int64_t referred_from = -1;
    std::string replaces;
    std::string referred_by;
    // Session timer (RFC 4028): what our first INVITE asks (after a 422:
    // the peer's Min-SE), what the call starts with once established
    // (from the 2xx, or our 2xx to their INVITE), what runs, and our
    // refresh in flight.
    int requested_se = 0;
    int requested_min_se = 0;
    bool retried_422 = false;
    TimerAnswer incoming_timer;
    SessionTimer pending_timer;
    SessionTimer session;
    su_timer_t* session_timer = nullptr;
    nta_outgoing_t* refresh = nullptr;
    bool refresh_is_invite = false;
    bool peer_allows_update = false;
    // Where the call stands (call_leg.h): moved only by Move().
    CallState state = CallState::kIncoming;
    bool outgoing = false;
    bool invite_is_reinvite = false;     // `invite` is a hold/resume re-INVITE
    bool cancel_held = false;            // hung up; CANCEL waits for it (HangupCall)
    bool counted_ringing = false;        // counted by policy_ (an unanswered incoming call)
    su_timer_t* ring_timer = nullptr;    // incoming: [sip-settings] ring-timeout
    su_timer_t* invite_timer = nullptr;  // outgoing: [sip-settings] invite-timeout
    int challenges = 0;                  // per INVITE transaction
    int end_code = 0;
    std::string end_reason;
    int local_port = 0;  // 0: no media open
    bool local_hold = false;
    bool remote_hold = false;
    std::deque<bool> hold_requests;  // HoldCall re-INVITEs: the first is in flight
    // The offer of an incoming INVITE, until answer-call answers it; none:
    // a delayed offer (ours goes in the 200, the answer comes in the ACK).
    std::optional<RemoteSdp> offer;
    // Our 200 to an INVITE without SDP carried an offer: the ACK answers.
    bool offered_in_response = false;
    // The far end's SDP leaves the call without audio: it is hung up
    // without ever being reported answered.
    bool media_refused = false;
    // Our SDP's o= session id (0: not chosen yet; LocalSdp takes the
    // stack's), its version and the rest of the last SDP we sent with it.
    uint64_t sdp_session_id = 0;
    uint64_t sdp_version = 0;
    std::string sdp_body;
    // Our CANCEL got no final answer in time: call-ended was reported; the
    // INVITE transaction runs out on its own (a late 2xx gets ACK+BYE).
    su_timer_t* cancel_timer = nullptr;
    MediaParams media;
  };

  Impl(SipConfig config, RtpConfig rtp, MediaEngine* media)
      : config_(std::move(config)), rtp_(std::move(rtp)), media_(media) {}

  // ---- sofia_sip_stack.cc: start and shutdown
  // Thread: any. Starts the SIP thread with the user agent on it.
  absl::Status Start(SipStackListener* listener);
  // Thread: any (not the SIP thread): ends every call, unregisters, stops
  // the thread (at the latest at `deadline`) and waits for its end.
  void Shutdown(absl::Duration deadline);
  // Thread: any. SipStack::MakeCall (at once on the SIP thread, else
  // posted).
  bool StartCall(int64_t call_id, const AccountConfig& account, const std::string& number);
  int port() const { return port_; }
  SipThread& thread() { return thread_; }
  // The user agent on the SIP thread: made at its start, destroyed at its
  // end.
  absl::Status SetUp(su_root_t* root);
  void TearDown();
  void BeginShutdown(int64_t deadline_ms);
  void MaybeFinishShutdown();
  static void OnShutdownTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg);

  template <typename M, typename T>
  static M* Magic(T* object) {
    return reinterpret_cast<M*>(object);
  }
  static void DestroyOutgoing(nta_outgoing_t*& orq);

  // ---- sip_messages.cc: pieces of SIP messages
  std::string ContactFor(const AccountConfig& account) const;
  static std::string FromFor(const AccountConfig& account);
  static int StatusOf(nta_outgoing_t* orq, const sip_t* sip);
  static const char* PhraseOf(const sip_t* sip);
  std::string ProxyUrl(const AccountConfig& account) const;

  static boost::asio::ip::address SourceOf(msg_t* message);

  static const sip_payload_t* SdpOf(const sip_t* sip);
  static absl::StatusOr<RemoteSdp> ParseBody(const sip_payload_t* pl);

  std::string WarningFor(const absl::Status& status) const;

  // ---- registration.cc: accounts: REGISTER, digest, refresh, backoff, unregister
  void Register(const AccountConfig& config, uint64_t generation);
  void Unregister(const std::string& account, uint64_t generation);
  void StartRegister(Registration* reg);
  void StartUnregister(Registration* reg);
  void SendRegister(Registration* reg);
  void ReleaseSip(Registration* reg);

  void CancelRetry(Registration* reg) { SipThread::DestroyTimer(reg->retry); }
  void Forget(Registration* reg, const char* reason);
  void Report(Registration* reg, int status, const std::string& reason, bool retrying);
  void Fail(Registration* reg, int status, const std::string& reason, bool retry);
  static void OnRetry(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg);
  static void OnRefresh(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg);
  int GrantedSeconds(const Registration* reg, const sip_t* sip) const;
  static int OnRegisterResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq, const sip_t* sip);
  void OnRegisterResult(Registration* reg, int status, const char* phrase, const sip_t* sip);
  void OnUnregistered(Registration* reg);
  bool IsRegistrarRealm(const std::string& account, const msg_auth_t* challenge) const;
  void LearnRegistrarAddress(Registration* reg, nta_outgoing_t* orq);

  bool IsTrustedSource(const sip_t* sip, const boost::asio::ip::address& source);

  Registration* AccountFor(const sip_t* sip);

  // ---- incoming_calls.cc: new INVITEs, their ACK/CANCEL, answer-call, in-dialog requests
  static int OnDefaultRequest(nta_leg_magic_t* magic, nta_leg_t*, nta_incoming_t* irq,
                              const sip_t* sip);
  int RefuseUntrusted(nta_incoming_t* irq, const boost::asio::ip::address& source);

  int OnIncomingInvite(nta_incoming_t* irq, const sip_t* sip);
  void StopRinging(CallLeg* leg);
  static void OnRingTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg);

  void RespondToInvite(CallLeg* leg, int status, const char* phrase);
  static int OnAckOrCancel(nta_incoming_magic_t* magic, nta_incoming_t* irq, const sip_t* sip);
  void OnEstablished(CallLeg* leg);
  static int OnDialogRequest(nta_leg_magic_t* magic, nta_leg_t*, nta_incoming_t* irq,
                             const sip_t* sip);
  int OnReoffer(CallLeg* leg, nta_incoming_t* irq, const sip_t* sip, bool is_update);

  void AnswerCall(int64_t call_id);

  // ---- outgoing_calls.cc: make-call, the INVITE and its answers, hold/resume
  static void OnInviteTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg);

  // `replaces`, `referred_by`: headers for a call a REFER asked for (from
  // call `referred_from`).
  void MakeCall(int64_t call_id, const AccountConfig& account, const std::string& number,
                const std::string& replaces = "", const std::string& referred_by = "",
                int64_t referred_from = -1);
  bool SendInvite(CallLeg* leg, const std::string& sdp);
  DigestCache* CachedInviteAuth(const AccountConfig& account);
  void SendAck(CallLeg* leg, nta_outgoing_t* orq);

  static int OnInviteResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq, const sip_t* sip);
  void OnCallInviteResponse(CallLeg* leg, nta_outgoing_t* orq, int status, const char* phrase,
                            const sip_t* sip);
  void OnReinviteResponse(CallLeg* leg, nta_outgoing_t* orq, int status, const char* phrase,
                          const sip_t* sip);
  void SendReinvite(CallLeg* leg);

  void HoldCall(int64_t call_id, bool hold);

  // ---- call_ending.cc: hang-up, BYE/CANCEL answers, timeouts, release
  CallLeg* FindLeg(int64_t call_id);
  void ReleaseSip(CallLeg* leg);
  void EndLeg(int64_t call_id, int code, std::string reason);
  void ReportEnded(CallLeg* leg, int code, const std::string& reason);
  static void OnCancelTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg);

  void SendBye(CallLeg* leg);
  static int OnByeResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq, const sip_t* sip);

  void HangupCall(int64_t call_id);
  void SendCancel(CallLeg* leg);
  static void OnCancelHold(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg);

  void OnRtpTimeout(int64_t call_id);

  // ---- dtmf_calls.cc: DTMF both ways (RFC 4733 through the media, SIP INFO)
  void SendDtmf(int64_t call_id, uint64_t request, const std::string& digits, int duration_ms);
  void AttachAudio(int64_t call_id, const std::shared_ptr<CallAudioTap>& tap);
  void SendNextInfo(CallLeg* leg);
  static int OnInfoResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq, const sip_t* sip);
  int OnInfo(CallLeg* leg, nta_incoming_t* irq, const sip_t* sip);
  void OnDtmfReceived(int64_t call_id, char digit, int duration_ms, DtmfMethod method);
  void OnRtpDtmfSent(int64_t call_id, uint64_t request);

  // ---- transfers.cc: REFER both ways
  static constexpr absl::Duration kTransferTimeout = absl::Seconds(60);
  void TransferCall(int64_t call_id, const std::string& number, int64_t to_call_id);
  static int OnReferResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq, const sip_t* sip);
  static void OnTransferTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg);
  int OnNotify(CallLeg* leg, nta_incoming_t* irq, const sip_t* sip);
  void FinishTransfer(CallLeg* leg, int code, const std::string& reason);
  int OnRefer(CallLeg* leg, nta_incoming_t* irq, const sip_t* sip);
  void NotifyReferrer(CallLeg* leg, int code, const std::string& reason);
  void SendNotify(CallLeg* leg, int code, const std::string& reason, bool final);

  // ---- session_timers.cc: RFC 4028
  void StartSessionTimer(CallLeg* leg, SessionTimer timer);
  static void OnSessionTimer(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg);
  void SendRefresh(CallLeg* leg);
  static int OnRefreshResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq, const sip_t* sip);
  // What a request of the far end asks of the session timer, as we answer it.
  TimerAnswer TimerFor(const sip_t* sip) const;
  int RefuseTooSmall(nta_incoming_t* irq, const TimerAnswer& timer);

  // ---- call_media.cc: SDP and RTP of a call
  std::string LocalSdp(CallLeg* leg, std::string body);

  bool OpenMedia(CallLeg* leg);
  void CloseMedia(CallLeg* leg);
  // Tells the listener the call's SIP details (OnCallDetails).
  void ReportDetails(CallLeg* leg);
  // Every [rtp-settings] quality-interval: the media statistics of each
  // established call to the listener (OnCallQuality).
  static void OnQualityTimer(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg);

  void ApplyAudio(CallLeg* leg, const AudioSession& session);
  void UpdateMedia(CallLeg* leg);
  void RefuseMedia(CallLeg* leg, std::string why);
  absl::StatusOr<AudioSession> SessionFromAnswer(const sip_payload_t* body, bool hold) const;
  // True when the answer was applied to the call's media.
  bool OnAnswer(CallLeg* leg, const sip_payload_t* body, bool hold, bool required);
  absl::StatusOr<std::string> ResponseSdp(CallLeg* leg, const RemoteSdp* offer);

  // ---- restore.cc: the journal's notes of a dialog, and a restart's restore
  // Our CSeq of a restored call goes on this far above the journal's last.
  static constexpr uint32_t kRestoredCSeqStep = 100;
  void JournalLeg(CallLeg* leg);
  void Restore(const std::vector<RestoredCall>& calls);
  void RestoreConfirmed(const RestoredCall& call);
  void CancelRestoredInvite(const RestoredCall& call);
  static int OnRestoredCancelResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                      const sip_t* sip);
  void RefuseRestoredInvite(const RestoredCall& call);
  // Thread: any (not the SIP thread). keep-calls-on-stop: stops the thread
  // without ending calls or unregistering (the journal keeps them).
  void StopKeepingCalls();

  // ---- state moves (call_leg.h, registration_state.h)
  // Moves the call by `event` (call_leg.h's transitions); a transition the
  // machine refuses leaves the state as it is.
  static void Move(CallLeg* leg, CallEvent event) {
    if (std::optional<CallState> next = NextCallState(leg->state, event)) leg->state = *next;
  }
  // The same for an account's registration (registration_state.h).
  static void Move(Registration* reg, RegistrationEvent event) {
    if (std::optional<RegistrationState> next = NextRegistrationState(reg->state, event)) {
      reg->state = *next;
    }
  }

  const SipConfig config_;
  const RtpConfig rtp_;
  MediaEngine* const media_;
  // A call's o= session id is this plus its call id.
  const uint64_t sdp_session_id_ = absl::Uniform<uint64_t>(absl::BitGen(), 1, 1ull << 40);
  std::unique_ptr<SdpWriter> sdp_writer_;  // made on the SIP thread's start
  SipStackListener* listener_ = nullptr;
  CallJournal* journal_ = nullptr;  // set before Start; null: no journal
  int port_ = 0;
  // SIP thread only.
  su_root_t* root_ = nullptr;  // the SIP thread's
  nta_agent_t* agent_ = nullptr;
  nta_leg_t* default_leg_ = nullptr;
  std::string contact_host_port_;  // of our Contact: "host:port[;transport=tcp]"
  bool shutting_down_ = false;
  bool keep_calls_ = false;  // stopping for a restart that restores the calls
  su_timer_t* shutdown_timer_ = nullptr;
  su_timer_t* quality_timer_ = nullptr;  // [rtp-settings] quality-interval; null: off
  std::map<std::string, std::unique_ptr<Registration>> registrations_;
  std::map<int64_t, std::unique_ptr<CallLeg>> calls_;
  std::map<std::string, std::unique_ptr<DigestCache>> invite_auth_;
  std::unique_ptr<InboundPolicy> policy_;  // made by Start
  absl::BitGen bitgen_;

 public:
  // Thread: written on the SIP thread, read anywhere.
  struct Counters {
    std::atomic<uint64_t> untrusted_requests{0};
    std::atomic<uint64_t> foreign_realm_challenges{0};
    std::atomic<uint64_t> ring_timeouts{0};
    std::atomic<uint64_t> invite_timeouts{0};
    std::atomic<uint64_t> ringing_refused{0};
    // REGISTER sent (a challenge's second one included) to its 2xx.
    Histogram registration_seconds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  } stats_;

 private:
  // The SIP thread; every method not marked "Thread: any" asserts that it
  // runs there. Declared last: destroyed first, it stops (if Shutdown did
  // not) while the state its tasks use is still there.
  SipThread thread_;
  const ThreadOwner& owner_ = thread_.owner();
};

}  // namespace telestra::backend
