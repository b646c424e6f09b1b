#pragma once

// Fakes for the SIP stack's unit tests: a SIP peer on loopback UDP (a
// registrar, a proxy, a far end: whatever the test's answers make it), a
// media engine without sockets, and a listener that records what the stack
// reports.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/media_engine.h"
#include "backend/sip/sofia_sip_stack.h"
#include "backend/sip_stack.h"
#include "gtest/gtest.h"

namespace telestra::backend::testing {

// One message the peer received.
struct SipMessage {
  std::string text;
  absl::Time at;

  bool IsRequest() const { return text.rfind("SIP/2.0 ", 0) != 0; }
  // The request's method, or the response's CSeq method.
  std::string Method() const;
  // A response's status code (0 for a request).
  int Status() const;
  // The first header `name` (or its compact form), without the name; "" if
  // absent.
  std::string Header(const std::string& name) const;
  std::string Body() const;
};

// A SIP peer on 127.0.0.1, UDP, any free port. Every message it receives is
// recorded; a request is answered with what `answer` returns (none for an
// ACK, or when it returns nothing). The answers echo the request's Via,
// From, Call-ID and CSeq, add a tag to its To, and carry the peer's
// Contact.
class FakeSipPeer {
 public:
  struct Response {
    // "180 Ringing", or "401 Unauthorized\r\nWWW-Authenticate: ..." (extra
    // headers after the status line).
    std::string status;
    std::string sdp;  // a body, sent as application/sdp
  };
  // n: how many requests of this method came before this one.
  using Answer = std::function<std::vector<Response>(int n, const SipMessage& request)>;

  // Bound to `ip` (a loopback address), any port.
  explicit FakeSipPeer(Answer answer, const std::string& ip = "127.0.0.1");
  ~FakeSipPeer();
  FakeSipPeer(const FakeSipPeer&) = delete;
  FakeSipPeer& operator=(const FakeSipPeer&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:port".
  std::string address() const;

  // Waits until `count` requests of `method` (or responses to it, when
  // `responses`) have come; true if they did within `timeout`.
  bool WaitFor(const std::string& method, size_t count, bool responses = false,
               absl::Duration timeout = absl::Seconds(5));
  // What came so far: requests of `method`, or responses to it.
  std::vector<SipMessage> Received(const std::string& method, bool responses = false);

  // Sends `text` to 127.0.0.1:`port` from the peer's socket.
  void Send(const std::string& text, int port);
  // Sends an in-dialog request `method` of the dialog the INVITE `invite`
  // (received by the peer) and its answer `to_tag` opened, to the INVITE's
  // Contact. `cseq` numbers the peer's requests in the dialog; a
  // `content_type` comes with `body`; `headers` are more header lines (each
  // ending in CRLF).
  void SendInDialog(const std::string& method, const SipMessage& invite, const std::string& to_tag,
                    int cseq, int stack_port, const std::string& content_type = "",
                    const std::string& body = "", const std::string& headers = "");

 private:
  void Serve();
  std::string AnswerText(const SipMessage& request, const Response& response) const;

  Answer answer_;
  const std::string ip_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;  // Lock order: a leaf.
  std::vector<SipMessage> received_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> requests_by_method_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// The peer's SDP answer/offer: PCMU on 127.0.0.1:`port`.
std::string PeerSdp(int port, const std::string& direction = "sendrecv");

// A media engine with no sockets: Open hands out ports from 40000 up (or
// the port of MediaOptions::port, which ReservePort must have kept, as the
// engine) and records what the stack asks.
class FakeMedia : public MediaEngine {
 public:
  absl::Status ReservePort(int rtp_port) override;
  absl::StatusOr<int> Open(int64_t call_id, const MediaOptions& options) override;
  void Update(int64_t call_id, const MediaParams& params) override;
  void Close(int64_t call_id) override;
  // For an open call: nothing received, the codec of its last MediaParams.
  std::optional<MediaStats> Stats(int64_t call_id) const override;
  void SetTimeoutHandler(std::function<void(int64_t)>) override {}
  // Queues (records) the digits when the call's last MediaParams negotiated
  // telephone-event and send; FailedPrecondition otherwise, as the engine.
  absl::Status SendDtmf(int64_t call_id, const std::string& digits, int duration_ms,
                        uint64_t request) override;
  void SetDtmfHandlers(DtmfHandlers handlers) override;
  // Attaches (and tells the tap "PCMU") when the call is open; NotFound and
  // a stopped tap otherwise, as the engine.
  absl::Status AttachAudio(int64_t call_id, std::shared_ptr<CallAudioTap> tap) override;
  const std::string& local_address() const override { return address_; }
  size_t open_calls() const override;

  // "call digits duration request" of every SendDtmf queued, in order.
  std::vector<std::string> dtmf_queued() const;
  // What the engine would report, as from its media thread.
  DtmfHandlers handlers() const;

  // The last MediaParams given for the call, if any.
  std::optional<MediaParams> Last(int64_t call_id) const;
  // The options of the call's last Open that succeeded, if any.
  std::optional<MediaOptions> Options(int64_t call_id) const;
  // The RTP port the call has open (0: none).
  int PortOf(int64_t call_id) const;
  bool IsOpen(int64_t call_id) const;

 private:
  std::string address_ = "127.0.0.1";
  mutable absl::Mutex mu_;  // Lock order: a leaf.
  int next_port_ ABSL_GUARDED_BY(mu_) = 40000;
  std::map<int64_t, int> open_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, MediaParams> last_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, MediaOptions> options_ ABSL_GUARDED_BY(mu_);
  std::set<int> reserved_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> dtmf_queued_ ABSL_GUARDED_BY(mu_);
  DtmfHandlers handlers_ ABSL_GUARDED_BY(mu_);
};

// Records every report of the stack, in order, as one line each:
// "registration 200 OK", "incoming 1 3002", "ringing 1 180",
// "established 1", "hold 1 local=1 remote=0", "hold-result 1 hold=1 200",
// "dtmf 1 5 160 info", "dtmf-sent 1 7 200 OK", "transfer-progress 1 180",
// "transfer-failed 1 603 Decline", "referred 1 3003 -> 2",
// "ended 1 486 Busy Here".
class RecordingListener : public SipStackListener {
 public:
  void OnRegistration(const std::string&, uint64_t, int status, const std::string& reason,
                      bool retrying) override;
  int64_t OnIncomingCall(const std::string& account, const std::string& caller,
                         const std::string& caller_name) override;
  void OnCallProgress(int64_t call_id, int code, bool early_media) override;
  void OnCallEstablished(int64_t call_id) override;
  void OnCallHold(int64_t call_id, bool local_hold, bool remote_hold) override;
  void OnHoldResult(int64_t call_id, bool hold, int code, const std::string& reason) override;
  void OnDtmfReceived(int64_t call_id, char digit, int duration_ms, DtmfMethod method) override;
  void OnDtmfSent(int64_t call_id, uint64_t request, int code, const std::string& reason) override;
  void OnTransferProgress(int64_t call_id, int code) override;
  void OnTransferFailed(int64_t call_id, int code, const std::string& reason) override;
  // Returns the next incoming id (as OnIncomingCall does).
  int64_t OnTransferRequested(int64_t call_id, const std::string& num) override;
  void OnCallEnded(int64_t call_id, int code, const std::string& reason) override;
  // Kept apart from reports() (which the tests compare whole):
  // expiries(), details(), quality().
  void OnRegistrationExpires(const std::string& account, uint64_t generation,
                             absl::Time expires) override;
  void OnCallDetails(int64_t call_id, const SipCallDetails& details) override;
  void OnCallQuality(int64_t call_id, const MediaStats& stats, bool final) override;

  // The registration's expiry times reported, in order.
  std::vector<absl::Time> expiries();
  // The details reported of `call_id` (empty if none).
  SipCallDetails details(int64_t call_id);
  // "<call_id> live|final <codec payload type>" per OnCallQuality, in order.
  std::vector<std::string> quality();

  // What OnIncomingCall returns next (then one more each time); -1 refuses.
  void set_next_incoming_id(int64_t id) { next_incoming_id_ = id; }

  // Waits for a report that starts with `prefix`; returns it ("" if none
  // came within `timeout`).
  std::string WaitFor(const std::string& prefix, absl::Duration timeout = absl::Seconds(5));
  std::vector<std::string> reports();

  // Registration reports as the registration tests read them.
  struct Registration {
    int status = -1;
    std::string reason;
    bool retrying = false;
  };
  // The first registration report with `status` ({-1} if none came).
  Registration WaitForRegistration(int status, absl::Duration timeout = absl::Seconds(5));
  std::vector<Registration> registrations();

 private:
  void Add(std::string report);
  // Waits until `list` holds an entry that `match` accepts; the first one,
  // if any came within `timeout`.
  template <typename T, typename Match>
  std::optional<T> AwaitFirst(const std::vector<T>& list, Match match, absl::Duration timeout);

  std::atomic<int64_t> next_incoming_id_{1};
  absl::Mutex mu_;  // Lock order: a leaf.
  std::vector<std::string> reports_ ABSL_GUARDED_BY(mu_);
  std::vector<Registration> registrations_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> expiries_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, SipCallDetails> details_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> quality_ ABSL_GUARDED_BY(mu_);
};

// A SofiaSipStack on loopback (any port) against a FakeSipPeer, with
// account-1 = user 3001 (password "secret") at the peer: the fixture of the
// stack's tests.
class StackTest : public ::testing::Test {
 protected:
  void StartStack(FakeSipPeer::Answer answer, SipConfig config = SipConfig(),
                  RtpConfig rtp = RtpConfig());
  void TearDown() override;

  // An INVITE from the peer (the registrar) for 3001, offering PCMU, with
  // Call-ID `call_id`.
  std::string IncomingInvite(const std::string& call_id) const;

  // Given to the stack before it starts, when set (restore_test).
  CallJournal* journal_ = nullptr;
  FakeMedia media_;
  RecordingListener listener_;
  AccountConfig account_;
  std::unique_ptr<FakeSipPeer> peer_;
  std::unique_ptr<SofiaSipStack> stack_;
};

}  // namespace telestra::backend::testing
