#include "backend/sip/sofia_sip_stack.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
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
#include <future>
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
#include "backend/network_list.h"
#include "backend/sip/dial_target.h"
#include "backend/sip/digest_cache.h"
#include "backend/sip/inbound_policy.h"
#include "backend/sip/sdp_offer_answer.h"
#include "backend/sip_syntax.h"
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

// sofia's per-module logs (exported by libsofia-sip-ua, not declared in its
// public headers).
extern "C" {
extern su_log_t tport_log[];
extern su_log_t nta_log[];
extern su_log_t iptsec_log[];
}

namespace telestra::backend {
namespace {

// Sends sofia's own log lines to spdlog (debug level) instead of stderr.
// sofia writes a line in pieces; they are joined up to the newline.
void SofiaLogger(void*, char const* format, va_list args) {
  thread_local std::string line;
  char chunk[1024];
  int n = vsnprintf(chunk, sizeof(chunk), format, args);
  if (n <= 0) return;
  line.append(chunk, std::min<size_t>(static_cast<size_t>(n), sizeof(chunk) - 1));
  if (line.empty() || line.back() != '\n') return;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  spdlog::debug("sofia: {}", line);
  line.clear();
}

void RedirectSofiaLogs() {
  for (su_log_t* log : {su_log_default, tport_log, nta_log, iptsec_log}) {
    su_log_redirect(log, &SofiaLogger, nullptr);
  }
}

constexpr char kUserAgent[] = "Telestra-SIP-Gateway/0.1";
constexpr char kSdpType[] = "application/sdp";
constexpr char kAllow[] = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE";

// How long a cancelled outgoing call waits for the final answer to its
// INVITE (normally 487 within milliseconds) before it is reported ended.
constexpr absl::Duration kCancelWait = absl::Seconds(4);

// How long a CANCEL waits for the far end's first provisional response
// (anything above 100) before it goes anyway: see HangupCall.
constexpr absl::Duration kCancelHold = absl::Milliseconds(500);

// Final REGISTER statuses that retrying cannot fix: the user must log in
// again (wrong credentials, unknown user, a request the server refuses).
bool IsPermanentFailure(int status) {
  switch (status) {
    case 400:
    case 401:
    case 403:
    case 404:
    case 407:
    case 410:
    case 420:
    case 484:
    case 485:
    case 603:
    case 604:
    case 606:
      return true;
    default:
      return false;
  }
}

// "host:port" for a URI; IPv6 literals get brackets.
std::string HostPort(const std::string& host, int port) {
  if (absl::StrContains(host, ':') && !absl::StartsWith(host, "[")) {
    return absl::StrFormat("[%s]:%d", host, port);
  }
  return absl::StrFormat("%s:%d", host, port);
}

// A port free for both UDP and TCP on `host` (for sip port = 0).
int PickFreePort(const std::string& host) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (udp < 0 || bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(udp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (udp >= 0) close(udp);
      return 0;
    }
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = tcp >= 0 && bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    int port = ntohs(addr.sin_port);
    close(udp);
    if (tcp >= 0) close(tcp);
    if (ok) return port;
  }
  return 0;
}

}  // namespace

// Everything below runs on the SIP thread unless a comment says otherwise.
class SofiaSipStack::Impl {
 public:
  // Holds back the listener calls made while the stack runs a request
  // inline for a caller on the SIP thread (StartCall): that caller may hold
  // its own lock, and the stack never calls the listener from within its
  // public methods. Take() hands them over, in order, to be made once the
  // caller is done.
  class HeldListener : public SipStackListener {
   public:
    explicit HeldListener(SipStackListener* target) : target_(target) {}
    void OnRegistration(const std::string& account, uint64_t generation, int status,
                        const std::string& reason, bool retrying) override {
      held_.push_back([=](SipStackListener* l) {
        l->OnRegistration(account, generation, status, reason, retrying);
      });
    }
    int64_t OnIncomingCall(const std::string& account, const std::string& caller,
                           const std::string& caller_name) override {
      return target_->OnIncomingCall(account, caller, caller_name);  // never from MakeCall
    }
    void OnCallRinging(int64_t call_id, int code) override {
      held_.push_back([=](SipStackListener* l) { l->OnCallRinging(call_id, code); });
    }
    void OnCallEstablished(int64_t call_id) override {
      held_.push_back([=](SipStackListener* l) { l->OnCallEstablished(call_id); });
    }
    void OnCallHold(int64_t call_id, bool local_hold, bool remote_hold) override {
      held_.push_back(
          [=](SipStackListener* l) { l->OnCallHold(call_id, local_hold, remote_hold); });
    }
    void OnHoldResult(int64_t call_id, bool hold, int code, const std::string& reason) override {
      held_.push_back([=](SipStackListener* l) { l->OnHoldResult(call_id, hold, code, reason); });
    }
    void OnCallEnded(int64_t call_id, int code, const std::string& reason) override {
      held_.push_back([=](SipStackListener* l) { l->OnCallEnded(call_id, code, reason); });
    }
    std::vector<std::function<void(SipStackListener*)>> Take() { return std::move(held_); }

   private:
    SipStackListener* const target_;
    std::vector<std::function<void(SipStackListener*)>> held_;
  };

  // A descriptor the SIP thread waits for on behalf of another part of the
  // service (FdLoop).
  struct FdWatch {
    Impl* self = nullptr;
    FdLoop::WatchId id = 0;
    su_wait_t wait{};
    int index = 0;  // su_root's registration
    std::function<bool()> on_readable;
  };

  struct Registration {
    explicit Registration(Impl* owner) : impl(owner) {}
    Impl* const impl;  // for sofia's callbacks
    AccountConfig config;
    AccountConfig bound;  // the account as registered (a new login replaces config)
    uint64_t generation = 0;
    nta_leg_t* leg = nullptr;       // Call-ID, tags and CSeq of the REGISTERs
    nta_outgoing_t* orq = nullptr;  // the REGISTER in flight
    std::unique_ptr<DigestCache> auth;
    int challenges = 0;  // challenges answered in the current request
    int failures = 0;    // consecutive transient failures (backoff)
    bool registered = false;
    bool unregistering = false;
    bool pending_register = false;  // register again once unregistered
    su_timer_t* retry = nullptr;
    su_timer_t* refresh = nullptr;
  };

  // One call, incoming or outgoing: a dialog (nta leg) and its
  // transactions.
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
    bool outgoing = false;
    bool established = false;
    bool answering = false;  // our 200 is sent; the ACK establishes the call
    bool hangup_requested = false;
    bool ringing_reported = false;
    bool far_end_provisional = false;  // a 101-199 to the call's INVITE came
    bool cancel_held = false;          // hung up; CANCEL waits for it (HangupCall)
    bool counted_ringing = false;      // counted by policy_ (an unanswered incoming call)
    su_timer_t* ring_timer = nullptr;    // incoming: [sip-settings] ring-timeout
    su_timer_t* invite_timer = nullptr;  // outgoing: [sip-settings] invite-timeout
    int challenges = 0;                // per INVITE transaction
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
    // Our SDP's o= version and the rest of the last SDP we sent with it.
    uint64_t sdp_version = 0;
    std::string sdp_body;
    // Our CANCEL got no final answer in time: call-ended was reported; the
    // INVITE transaction runs out on its own (a late 2xx gets ACK+BYE).
    su_timer_t* cancel_timer = nullptr;
    bool end_reported = false;
    MediaParams media;
  };

  Impl(SipConfig config, RtpConfig rtp, MediaEngine* media)
      : config_(std::move(config)), rtp_(std::move(rtp)), media_(media) {}

  // Thread: any.
  absl::Status Start(SipStackListener* listener) {
    listener_ = listener;
    absl::StatusOr<NetworkList> trusted = NetworkList::Parse(config_.trusted);
    if (!trusted.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("[sip-settings] trusted: ", trusted.status().message()));
    }
    policy_ = std::make_unique<InboundPolicy>(*std::move(trusted), config_.max_ringing);
    if (config_.port == 0) {
      port_ = PickFreePort(config_.bind);
      if (port_ == 0) return absl::UnavailableError("no free SIP port");
    } else {
      port_ = config_.port;
    }
    std::promise<absl::Status> started;
    std::future<absl::Status> result = started.get_future();
    thread_ = std::thread([this, &started] { Run(started); });
    absl::Status status = result.get();
    if (!status.ok() && thread_.joinable()) thread_.join();
    return status;
  }

  // Thread: any. Runs `task` on the SIP thread; false once stopped. Only
  // the first task of a burst signals the eventfd: while a wake-up is
  // pending, the tasks that follow just join the queue (no system call).
  bool Post(std::function<void()> task) {
    {
      absl::MutexLock lock(&mu_);
      if (!accepting_) return false;
      posted_.push_back(std::move(task));
      if (wake_pending_) return true;
      wake_pending_ = true;
    }
    uint64_t one = 1;
    ssize_t n = write(wake_fd_, &one, sizeof(one));
    (void)n;  // a full counter still wakes the loop
    return true;
  }

  // Thread: any (not the SIP thread). Blocks until the thread has ended.
  void Shutdown(absl::Duration deadline) {
    if (!thread_.joinable()) return;
    int64_t millis = absl::ToInt64Milliseconds(deadline);
    if (!Post([this, millis] { BeginShutdown(millis); })) return;
    thread_.join();
  }

  int port() const { return port_; }

  // Thread: any. FdLoop::Watch: registers `fd` with su_root on the SIP
  // thread.
  FdLoop::WatchId Watch(int fd, std::function<bool()> on_readable) {
    const FdLoop::WatchId id = next_watch_id_.fetch_add(1, std::memory_order_relaxed);
    bool posted = Post([this, id, fd, on_readable = std::move(on_readable)]() mutable {
      auto watch = std::make_unique<FdWatch>();
      watch->self = this;
      watch->id = id;
      watch->on_readable = std::move(on_readable);
      su_wait_create(&watch->wait, fd, SU_WAIT_IN);
      watch->index = su_root_register(root_, &watch->wait, &Impl::OnFdReadable, watch.get(), 0);
      if (watch->index <= 0) {
        spdlog::error("SIP thread: cannot wait for descriptor {}", fd);
        return;  // on_readable is destroyed without being called
      }
      watches_[id] = std::move(watch);
    });
    return posted ? id : 0;
  }

  // Thread: any. FdLoop::Unwatch.
  void Unwatch(FdLoop::WatchId id) {
    if (id == 0) return;
    Post([this, id] { EndWatch(id); });
  }

  // Thread: any. SipStack::MakeCall. On the SIP thread itself (a native
  // command read there) the INVITE goes out at once, before the caller
  // even answers call-return; the listener calls it leads to wait until
  // the caller is done. Elsewhere it is posted.
  bool StartCall(int64_t call_id, const AccountConfig& account, const std::string& number) {
    if (std::this_thread::get_id() != sip_thread_.load(std::memory_order_relaxed)) {
      return Post([this, call_id, account, number] { MakeCall(call_id, account, number); });
    }
    {
      absl::MutexLock lock(&mu_);
      if (!accepting_) return false;
    }
    SipStackListener* const listener = listener_;
    HeldListener held(listener);
    listener_ = &held;
    MakeCall(call_id, account, number);
    listener_ = listener;
    std::vector<std::function<void(SipStackListener*)>> calls = held.Take();
    if (!calls.empty()) {
      // After the caller has returned (and also when the loop stops first).
      Defer([this, calls = std::move(calls)] {
        for (const auto& call : calls) call(listener_);
      });
    }
    return true;
  }

  // ----------------------------------------------------------- the thread

  void Run(std::promise<absl::Status>& started) {
    sip_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    pthread_setname_np(pthread_self(), "telestra-sip");  // for top -H, perf, gdb
    if (config_.thread_nice != 0 &&
        setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), config_.thread_nice) != 0) {
      spdlog::warn("SIP thread: cannot set nice {} ({}); running at the process's priority",
                   config_.thread_nice, std::strerror(errno));
    }
    su_init();
    RedirectSofiaLogs();
    root_ = su_root_create(this);
    if (root_ == nullptr) {
      su_deinit();
      started.set_value(absl::InternalError("su_root_create failed"));
      return;
    }
    sdp_writer_ = std::make_unique<SdpWriter>(media_->local_address(), rtp_.codecs);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    su_wait_create(&wait_, wake_fd_, SU_WAIT_IN);
    su_root_register(root_, &wait_, &Impl::OnWake, this, 0);

    std::string url =
        absl::StrCat("sip:", HostPort(config_.bind, port_), ";transport=", config_.transport);
    // The transaction layer in user-agent mode (2xx retransmitted until
    // ACKed, ACKs that catch retransmitted 2xx); dialogs, offer/answer,
    // authentication and call state are ours.
    agent_ = nta_agent_create(root_, URL_STRING_MAKE(url.c_str()), nullptr, nullptr, NTATAG_UA(1),
                              NTATAG_MERGE_482(1), NTATAG_CLIENT_RPORT(1), TAG_END());
    if (agent_ != nullptr) {
      default_leg_ = nta_leg_tcreate(agent_, &Impl::OnDefaultRequest, Magic<nta_leg_magic_t>(this),
                                     NTATAG_NO_DIALOG(1), TAG_END());
    }
    const sip_contact_t* contact = agent_ != nullptr ? nta_agent_contact(agent_) : nullptr;
    if (default_leg_ == nullptr || contact == nullptr) {
      if (agent_ != nullptr) nta_agent_destroy(agent_);
      agent_ = nullptr;
      su_root_unregister(root_, &wait_, &Impl::OnWake, this);
      close(wake_fd_);
      su_root_destroy(root_);
      su_deinit();
      started.set_value(absl::UnavailableError(
          absl::StrCat("cannot start the SIP user agent on ", url, " (port in use?)")));
      return;
    }
    contact_host_port_ =
        absl::StrCat(contact->m_url->url_host, ":",
                     contact->m_url->url_port != nullptr ? contact->m_url->url_port : "5060");
    if (config_.transport != "udp") {
      contact_host_port_ = absl::StrCat(contact_host_port_, ";transport=", config_.transport);
    }
    reaper_ = su_timer_create(su_root_task(root_), 0);
    spdlog::info("SIP user agent listening on {}", url);
    media_->SetTimeoutHandler(
        [this](int64_t call_id) { Post([this, call_id] { OnRtpTimeout(call_id); }); });
    started.set_value(absl::OkStatus());
    if (config_.busy_poll_us > 0 || config_.answer_poll_us > 0) {
      RunPolling(absl::Microseconds(config_.busy_poll_us));
    } else {
      su_root_run(root_);
    }

    // Stopped: no more posts are accepted; drop what was left.
    {
      absl::MutexLock lock(&mu_);
      accepting_ = false;
      posted_.clear();
    }
    for (auto& [name, reg] : registrations_) ReleaseSip(reg.get());
    registrations_.clear();
    for (auto& [id, leg] : calls_) {
      CloseMedia(leg.get());
      ReleaseSip(leg.get());
      if (!leg->end_reported) listener_->OnCallEnded(id, 0, "Service stopped");
    }
    calls_.clear();
    invite_auth_.clear();
    while (!watches_.empty()) EndWatch(watches_.begin()->first);
    RunDeferred();
    DestroyTimer(reaper_);
    nta_leg_destroy(default_leg_);
    nta_agent_destroy(agent_);
    agent_ = nullptr;
    DestroyTimer(shutdown_timer_);
    su_root_unregister(root_, &wait_, &Impl::OnWake, this);
    close(wake_fd_);
    su_root_destroy(root_);
    root_ = nullptr;
    su_deinit();
  }

  // su_root_run's loop, except that the thread keeps polling (zero-timeout
  // steps) instead of waiting: for `window` after each piece of work
  // ([sip-settings] busy-poll-us), and until answer_poll_until_ after it
  // sent a request (answer-poll-us, AwaitAnswer). Ends when stopping_ is
  // set.
  void RunPolling(absl::Duration window) {
    absl::Time last_work = absl::Now();
    while (!stopping_) {
      // 0: something was done (or a timer is due within the millisecond).
      su_duration_t next = su_root_step(root_, 0);
      absl::Time now = absl::Now();
      if (next == 0) {
        last_work = now;
      } else if (now - last_work < window || now < answer_poll_until_) {
        sched_yield();  // a runnable thread of this CPU goes first
      } else {
        su_root_step(root_, next);  // sleeps until work or the next timer
        last_work = absl::Now();
      }
    }
  }

  // A request went out: its answer is likely to come soon, so the loop
  // polls for it for a while rather than sleep ([sip-settings]
  // answer-poll-us).
  void AwaitAnswer() {
    if (config_.answer_poll_us > 0) {
      answer_poll_until_ = absl::Now() + absl::Microseconds(config_.answer_poll_us);
    }
  }

  // A watched descriptor is readable: its callback runs; false ends it.
  static int OnFdReadable(su_root_magic_t*, su_wait_t*, su_wakeup_arg_t* arg) {
    auto* watch = static_cast<FdWatch*>(static_cast<void*>(arg));
    if (!watch->on_readable()) watch->self->EndWatch(watch->id);
    return 0;
  }

  // Stops waiting for a watch's descriptor and destroys its callback.
  void EndWatch(FdLoop::WatchId id) {
    auto it = watches_.find(id);
    if (it == watches_.end()) return;
    su_root_deregister(root_, it->second->index);
    watches_.erase(it);
  }

  static int OnWake(su_root_magic_t* magic, su_wait_t*, su_wakeup_arg_t*) {
    auto* self = static_cast<Impl*>(magic);
    uint64_t count;
    ssize_t n = read(self->wake_fd_, &count, sizeof(count));
    (void)n;
    std::deque<std::function<void()>> tasks;
    {
      absl::MutexLock lock(&self->mu_);
      tasks.swap(self->posted_);
      self->wake_pending_ = false;  // a later Post signals again
    }
    for (auto& task : tasks) task();
    return 0;
  }

  // Shutdown ends every call (BYE, CANCEL, 503) and unregisters every
  // account, then stops the loop, or stops it at the deadline.
  void BeginShutdown(int64_t deadline_ms) {
    {
      absl::MutexLock lock(&mu_);
      accepting_ = false;
    }
    if (shutting_down_) return;
    shutting_down_ = true;
    shutdown_timer_ = su_timer_create(su_root_task(root_), 0);
    su_timer_set_interval(shutdown_timer_, &Impl::OnShutdownTimeout, this,
                          static_cast<su_duration_t>(std::max<int64_t>(deadline_ms, 1)));
    std::vector<int64_t> ids;
    for (auto& [id, leg] : calls_) ids.push_back(id);
    for (int64_t id : ids) {
      CallLeg* leg = FindLeg(id);
      if (leg == nullptr || leg->end_reported) continue;
      if (!leg->established && !leg->outgoing && !leg->answering) {
        leg->end_code = 503;
        leg->end_reason = "Service shutting down";
        RespondToInvite(leg, 503, "Service Unavailable");
        continue;
      }
      leg->end_reason = "Service shutting down";
      HangupCall(id);
    }
    std::vector<std::string> names;
    for (auto& [name, reg] : registrations_) names.push_back(name);
    for (const std::string& name : names) {
      Registration* reg = registrations_[name].get();
      CancelRetry(reg);
      if (reg->registered && !reg->unregistering) {
        StartUnregister(reg);
      } else if (!reg->unregistering) {
        ReleaseSip(reg);
        registrations_.erase(name);
      }
    }
    MaybeFinishShutdown();
  }

  void MaybeFinishShutdown() {
    if (!shutting_down_ || stopping_) return;
    if (!registrations_.empty()) return;
    for (auto& [id, leg] : calls_) {
      if (!leg->end_reported) return;
    }
    stopping_ = true;
    spdlog::info("SIP user agent shut down");
    su_root_break(root_);
  }

  static void OnShutdownTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
    auto* self = static_cast<Impl*>(arg);
    spdlog::warn("SIP shutdown did not finish in time; stopping anyway");
    self->stopping_ = true;
    su_root_break(self->root_);
  }

  // Runs `task` once the current callback has returned (before the loop
  // waits again): sofia objects must not be destroyed from their own
  // callbacks.
  void Defer(std::function<void()> task) {
    deferred_.push_back(std::move(task));
    if (deferred_.size() == 1 && reaper_ != nullptr) {
      su_timer_set_interval(reaper_, &Impl::OnReap, this, 0);
    }
  }

  static void OnReap(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
    static_cast<Impl*>(static_cast<void*>(arg))->RunDeferred();
  }

  void RunDeferred() {
    while (!deferred_.empty()) {
      std::vector<std::function<void()>> tasks;
      tasks.swap(deferred_);
      for (auto& task : tasks) task();
    }
  }

  template <typename M, typename T>
  static M* Magic(T* object) {
    return reinterpret_cast<M*>(object);
  }

  static void DestroyTimer(su_timer_t*& timer) {
    if (timer != nullptr) {
      su_timer_destroy(timer);
      timer = nullptr;
    }
  }

  static void DestroyOutgoing(nta_outgoing_t*& orq) {
    if (orq != nullptr) {
      nta_outgoing_destroy(orq);
      orq = nullptr;
    }
  }

  // A timer on the SIP thread calling `callback` with `arg` after `ms`.
  su_timer_t* StartTimer(su_timer_f callback, void* arg, int64_t ms) {
    su_timer_t* timer = su_timer_create(su_root_task(root_), 0);
    su_timer_set_interval(timer, callback, static_cast<su_timer_arg_t*>(arg),
                          static_cast<su_duration_t>(std::max<int64_t>(ms, 1)));
    return timer;
  }

  // "<sip:user@host:port>" for an account's requests and responses.
  std::string ContactFor(const AccountConfig& account) const {
    return absl::StrCat("<sip:", account.user, "@", contact_host_port_, ">");
  }

  // The From of an account: its address of record and display name.
  static std::string FromFor(const AccountConfig& account) {
    std::string aor = absl::StrCat("sip:", account.user, "@", account.server);
    return account.display_name.empty()
               ? absl::StrCat("<", aor, ">")
               : absl::StrCat("\"", account.display_name, "\" <", aor, ">");
  }

  static int StatusOf(nta_outgoing_t* orq, const sip_t* sip) {
    return sip != nullptr && sip->sip_status != nullptr ? sip->sip_status->st_status
                                                        : nta_outgoing_status(orq);
  }

  static const char* PhraseOf(const sip_t* sip) {
    return sip != nullptr && sip->sip_status != nullptr && sip->sip_status->st_phrase != nullptr
               ? sip->sip_status->st_phrase
               : "";
  }

  // The account's registrar/proxy as a URL: where every request that
  // starts something (REGISTER, a call's INVITE and its CANCEL) is sent.
  std::string ProxyUrl(const AccountConfig& account) const {
    return absl::StrCat("sip:", account.server, ";transport=", config_.transport);
  }

  // ---------------------------------------------------------- registration

  void Register(const AccountConfig& config, uint64_t generation) {
    std::unique_ptr<Registration>& slot = registrations_[config.name];
    if (!slot) slot = std::make_unique<Registration>(this);
    Registration* reg = slot.get();
    reg->config = config;
    reg->generation = generation;
    reg->failures = 0;
    CancelRetry(reg);
    Report(reg, 100, "Registering", false);
    if (reg->registered || reg->unregistering) {
      // Replace the binding: unregister the old one, then register anew.
      reg->pending_register = true;
      if (!reg->unregistering) StartUnregister(reg);
      return;
    }
    ReleaseSip(reg);
    StartRegister(reg);
  }

  void Unregister(const std::string& account, uint64_t generation) {
    auto it = registrations_.find(account);
    if (it == registrations_.end()) {
      // Never registered: nothing on the wire, just confirm.
      listener_->OnRegistration(account, generation, 0, "Logged out", false);
      return;
    }
    Registration* reg = it->second.get();
    reg->generation = generation;
    reg->pending_register = false;
    CancelRetry(reg);
    if (reg->registered) {
      if (!reg->unregistering) StartUnregister(reg);
      return;
    }
    if (reg->unregistering) return;
    Forget(reg, "Logged out");
  }

  void StartRegister(Registration* reg) {
    reg->bound = reg->config;
    policy_->SetRegistrar(reg->bound.name, reg->bound.server);
    reg->challenges = 0;
    reg->registered = false;
    SendRegister(reg);
  }

  void StartUnregister(Registration* reg) {
    reg->unregistering = true;
    reg->challenges = 0;
    DestroyTimer(reg->refresh);
    DestroyOutgoing(reg->orq);
    SendRegister(reg);
  }

  // A REGISTER (Expires: 0 while unregistering) with the credentials of
  // the account's last challenge, if any.
  void SendRegister(Registration* reg) {
    const AccountConfig& c = reg->bound;
    su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
    if (reg->leg == nullptr) {
      std::string to = absl::StrCat("<sip:", c.user, "@", c.server, ">");
      reg->leg = nta_leg_tcreate(agent_, nullptr, nullptr, SIPTAG_FROM_STR(FromFor(c).c_str()),
                                 SIPTAG_TO_STR(to.c_str()),
                                 SIPTAG_CALL_ID(sip_call_id_create(scratch, nullptr)), TAG_END());
      if (reg->leg != nullptr) nta_leg_tag(reg->leg, nullptr);
    }
    std::string registrar = absl::StrCat("sip:", c.server, ";transport=", config_.transport);
    std::string expires = reg->unregistering ? "0" : absl::StrCat(config_.register_expires);
    const sip_header_t* credentials =
        reg->leg != nullptr && reg->auth != nullptr
            ? reg->auth->Credentials(c, "REGISTER", registrar, scratch)
            : nullptr;
    if (reg->leg != nullptr) {
      reg->orq = nta_outgoing_tcreate(
          reg->leg, &Impl::OnRegisterResponse, Magic<nta_outgoing_magic_t>(reg), nullptr,
          SIP_METHOD_REGISTER, URL_STRING_MAKE(registrar.c_str()),
          SIPTAG_CONTACT_STR(ContactFor(c).c_str()), SIPTAG_EXPIRES_STR(expires.c_str()),
          SIPTAG_USER_AGENT_STR(kUserAgent),
          TAG_IF(credentials != nullptr, SIPTAG_HEADER(credentials)), TAG_END());
    }
    su_home_deinit(scratch);
    if (reg->orq != nullptr) {
      AwaitAnswer();
      return;
    }
    if (reg->unregistering) {
      OnUnregistered(reg);
    } else {
      Fail(reg, 503, absl::StrCat("Cannot send REGISTER to ", c.server), /*retry=*/true);
    }
  }

  // Drops the registration's sofia objects and timers (not its state);
  // the dialog after the current callback.
  void ReleaseSip(Registration* reg) {
    DestroyOutgoing(reg->orq);
    if (reg->leg != nullptr) {
      Defer([leg = reg->leg] { nta_leg_destroy(leg); });
      reg->leg = nullptr;
    }
    DestroyTimer(reg->retry);
    DestroyTimer(reg->refresh);
    reg->registered = false;
    reg->unregistering = false;
  }

  void CancelRetry(Registration* reg) { DestroyTimer(reg->retry); }

  // Reports 0 and drops the account's state.
  void Forget(Registration* reg, const char* reason) {
    std::string name = reg->config.name;
    uint64_t generation = reg->generation;
    ReleaseSip(reg);
    registrations_.erase(name);
    policy_->ForgetAccount(name);
    listener_->OnRegistration(name, generation, 0, reason, false);
    MaybeFinishShutdown();
  }

  void Report(Registration* reg, int status, const std::string& reason, bool retrying) {
    listener_->OnRegistration(reg->config.name, reg->generation, status, reason, retrying);
  }

  void Fail(Registration* reg, int status, const std::string& reason, bool retry) {
    ReleaseSip(reg);
    if (retry && !shutting_down_) {
      ++reg->failures;
      double base = std::min<double>(
          config_.register_retry_max,
          config_.register_retry_min * std::pow(2.0, std::min(reg->failures - 1, 20)));
      double delay = base * absl::Uniform(bitgen_, 0.8, 1.2);
      reg->retry = StartTimer(&Impl::OnRetry, reg, static_cast<int64_t>(delay * 1000));
      spdlog::info("account {}: retrying registration in {:.1f} s", reg->config.name, delay);
    }
    Report(reg, status, reason, retry && !shutting_down_);
  }

  static void OnRetry(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
    auto* reg = static_cast<Registration*>(static_cast<void*>(arg));
    Impl* self = reg->impl;
    self->CancelRetry(reg);
    if (self->shutting_down_ || reg->orq != nullptr) return;
    self->StartRegister(reg);
  }

  static void OnRefresh(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
    auto* reg = static_cast<Registration*>(static_cast<void*>(arg));
    DestroyTimer(reg->refresh);
    if (!reg->registered || reg->unregistering || reg->orq != nullptr) return;
    reg->challenges = 0;
    reg->impl->SendRegister(reg);
  }

  // The binding's lifetime the registrar granted: our Contact's expires
  // parameter, else the Expires header, else what we asked.
  int GrantedSeconds(const Registration* reg, const sip_t* sip) const {
    int granted = config_.register_expires;
    if (sip->sip_expires != nullptr) granted = static_cast<int>(sip->sip_expires->ex_delta);
    for (const sip_contact_t* m = sip->sip_contact; m != nullptr; m = m->m_next) {
      const url_t* url = m->m_url;
      if (m->m_expires == nullptr || url->url_user == nullptr ||
          reg->config.user != url->url_user) {
        continue;
      }
      std::string host_port = absl::StrCat(url->url_host != nullptr ? url->url_host : "", ":",
                                           url->url_port != nullptr ? url->url_port : "5060");
      if (absl::StartsWith(contact_host_port_, host_port)) {
        granted = std::atoi(m->m_expires);
        break;
      }
    }
    return std::max(granted, 1);
  }

  static int OnRegisterResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                const sip_t* sip) {
    auto* reg = Magic<Registration>(magic);
    Impl* self = reg->impl;
    int status = StatusOf(orq, sip);
    if (status < 200) return 0;
    if (orq != reg->orq) {  // replaced meanwhile
      nta_outgoing_destroy(orq);
      return 0;
    }
    self->LearnRegistrarAddress(reg, orq);
    DestroyOutgoing(reg->orq);
    self->OnRegisterResult(reg, status, PhraseOf(sip), sip);
    return 0;
  }

  void OnRegisterResult(Registration* reg, int status, const char* phrase, const sip_t* sip) {
    if (status == 401 || status == 407) {
      const msg_auth_t* challenge = DigestCache::ChallengeOf(status, sip);
      if (reg->challenges == 0 && challenge != nullptr) {
        ++reg->challenges;
        if (!reg->auth) reg->auth = std::make_unique<DigestCache>();
        if (reg->auth->Remember(reg->bound, challenge, status == 407)) {
          SendRegister(reg);
          return;
        }
      }
      if (reg->unregistering) {
        OnUnregistered(reg);
        return;
      }
      reg->auth.reset();
      Fail(reg, status, phrase, /*retry=*/false);  // credentials rejected
      return;
    }
    if (reg->unregistering) {
      OnUnregistered(reg);
      return;
    }
    if (status < 300) {
      reg->registered = true;
      reg->challenges = 0;
      reg->failures = 0;
      DestroyTimer(reg->refresh);
      reg->refresh =
          StartTimer(&Impl::OnRefresh, reg, int64_t{GrantedSeconds(reg, sip)} * 1000 / 2);
      Report(reg, 200, phrase, false);
      return;
    }
    Fail(reg, status, phrase, !IsPermanentFailure(status));
  }

  void OnUnregistered(Registration* reg) {
    ReleaseSip(reg);
    if (reg->pending_register && !shutting_down_) {
      reg->pending_register = false;
      StartRegister(reg);
      return;
    }
    Forget(reg, "Logged out");
  }

  // `challenge` has the realm the account's registrar challenged its
  // REGISTER with, with the account's current credentials (a registrar that
  // never challenged has none to match).
  bool IsRegistrarRealm(const std::string& account, const msg_auth_t* challenge) const {
    auto it = registrations_.find(account);
    if (it == registrations_.end()) return false;
    const DigestCache* auth = it->second->auth.get();
    return auth != nullptr && auth->MadeFor(it->second->bound) && !auth->realm().empty() &&
           auth->realm() == DigestCache::RealmOf(challenge);
  }

  // The address the answer to `orq` came from is the registrar's.
  // (None for a timeout or error made here: no address to learn.)
  void LearnRegistrarAddress(Registration* reg, nta_outgoing_t* orq) {
    policy_->LearnRegistrar(reg->config.name, SourceOf(nta_outgoing_getresponse(orq)));
  }

  // The address a received message came from (unspecified if unknown);
  // takes the caller's reference to `message`.
  static boost::asio::ip::address SourceOf(msg_t* message) {
    boost::asio::ip::address source;
    if (message == nullptr) return source;
    const su_addrinfo_t* info = msg_addrinfo(message);
    if (info != nullptr) source = NetworkList::AddressOf(info->ai_addr);
    msg_destroy(message);
    return source;
  }

  // A request that starts a dialog may come from the IP address of the
  // called account's registrar/proxy, or from a [sip-settings] trusted
  // network. For no known account: from any account's registrar (it gets
  // its 404 then, not the 403 of strangers).
  bool IsTrustedSource(const sip_t* sip, const boost::asio::ip::address& source) {
    const Registration* reg = AccountFor(sip);
    return policy_->MayStartDialog(source, reg != nullptr ? &reg->config.name : nullptr);
  }

  // ------------------------------------------------------- requests to us

  // Requests outside our dialogs: new INVITEs, OPTIONS; anything in a
  // dialog we do not know gets 481.
  static int OnDefaultRequest(nta_leg_magic_t* magic, nta_leg_t*, nta_incoming_t* irq,
                              const sip_t* sip) {
    auto* self = Magic<Impl>(magic);
    const sip_method_t method = sip->sip_request->rq_method;
    if (method == sip_method_ack) return 200;  // no reply; the transaction ends
    if (sip->sip_to != nullptr && sip->sip_to->a_tag != nullptr) return 481;
    switch (method) {
      case sip_method_invite:
        if (auto source = SourceOf(nta_incoming_getrequest(irq));
            !self->IsTrustedSource(sip, source)) {
          return self->RefuseUntrusted(irq, source);
        }
        return self->OnIncomingInvite(irq, sip);
      case sip_method_options:
        nta_incoming_treply(irq, SIP_200_OK, SIPTAG_ALLOW_STR(kAllow), SIPTAG_ACCEPT_STR(kSdpType),
                            SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
        return 200;
      case sip_method_cancel:
      case sip_method_bye:
        return 481;
      default:
        nta_incoming_treply(irq, SIP_405_METHOD_NOT_ALLOWED, SIPTAG_ALLOW_STR(kAllow),
                            SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
        return 405;
    }
  }

  int RefuseUntrusted(nta_incoming_t* irq, const boost::asio::ip::address& source) {
    const uint64_t refused =
        stats_.untrusted_requests.fetch_add(1, std::memory_order_relaxed) + 1;
    if ((refused & (refused - 1)) == 0) {  // the 1st, 2nd, 4th, 8th ...: a flood logs little
      spdlog::warn("SIP: INVITE from {} refused 403: not a registrar of ours nor a trusted "
                   "network ({} refused so far)",
                   source.is_unspecified() ? "unknown" : source.to_string(), refused);
    }
    nta_incoming_treply(irq, SIP_403_FORBIDDEN, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
    return 403;
  }

  // The account an incoming INVITE is for: the registered account whose
  // user is the Request-URI's user (the registrar rewrites it to our
  // contact, which carries the user), else the To user.
  Registration* AccountFor(const sip_t* sip) {
    std::string ruri_user, to_user;
    if (sip->sip_request && sip->sip_request->rq_url->url_user) {
      ruri_user = sip->sip_request->rq_url->url_user;
    }
    if (sip->sip_to && sip->sip_to->a_url->url_user) to_user = sip->sip_to->a_url->url_user;
    for (const std::string* user : {&ruri_user, &to_user}) {
      if (user->empty()) continue;
      for (auto& [name, reg] : registrations_) {
        if (reg->registered && reg->config.user == *user) return reg.get();
      }
    }
    return nullptr;
  }

  int OnIncomingInvite(nta_incoming_t* irq, const sip_t* sip) {
    Registration* reg = AccountFor(sip);
    if (reg == nullptr || shutting_down_) {
      return shutting_down_ ? 503 : 404;
    }
    if (!policy_->MayRing(reg->config.name)) {
      stats_.ringing_refused.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("account {}: incoming INVITE refused 486: {} calls already ringing",
                   reg->config.name, config_.max_ringing);
      nta_incoming_treply(irq, SIP_486_BUSY_HERE, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
      return 486;
    }
    // The offer, checked before the call is reported: one we cannot answer
    // is refused at once (no call-incoming for a call that cannot work).
    std::optional<RemoteSdp> offer;
    if (const sip_payload_t* body = SdpOf(sip); body != nullptr) {
      absl::StatusOr<RemoteSdp> parsed = ParseBody(body);
      absl::Status usable = parsed.ok() ? sdp_writer_->CheckOffer(*parsed) : parsed.status();
      if (!usable.ok()) {
        spdlog::info("account {}: incoming INVITE refused: {}", reg->config.name,
                     std::string(usable.message()));
        nta_incoming_treply(irq, SIP_488_NOT_ACCEPTABLE,
                            SIPTAG_WARNING_STR(WarningFor(usable).c_str()),
                            SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
        return 488;
      }
      offer = std::move(*parsed);
    }
    std::string caller, caller_name;
    if (sip->sip_from != nullptr) {
      if (sip->sip_from->a_url->url_user) caller = sip->sip_from->a_url->url_user;
      if (sip->sip_from->a_display) {
        caller_name = sip->sip_from->a_display;
        if (caller_name.size() >= 2 && caller_name.front() == '"' && caller_name.back() == '"') {
          caller_name = caller_name.substr(1, caller_name.size() - 2);
        }
      }
    }
    int64_t call_id = listener_->OnIncomingCall(reg->config.name, caller, caller_name);
    if (call_id < 0) return 480;
    auto owned = std::make_unique<CallLeg>(this);
    CallLeg* leg = owned.get();
    leg->id = call_id;
    leg->account = reg->config;
    leg->offer = std::move(offer);
    calls_[call_id] = std::move(owned);
    leg->leg = nta_leg_tcreate(agent_, &Impl::OnDialogRequest, Magic<nta_leg_magic_t>(leg),
                               SIPTAG_CALL_ID(sip->sip_call_id), SIPTAG_FROM(sip->sip_to),
                               SIPTAG_TO(sip->sip_from), NTATAG_REMOTE_CSEQ(sip->sip_cseq->cs_seq),
                               TAG_END());
    if (leg->leg == nullptr) {
      EndLeg(call_id, 500, "Cannot create a SIP dialog");
      return 500;
    }
    nta_leg_tag(leg->leg, nta_incoming_tag(irq, nullptr));
    nta_leg_server_route(leg->leg, sip->sip_record_route, sip->sip_contact);
    leg->irq = irq;
    nta_incoming_bind(irq, &Impl::OnAckOrCancel, Magic<nta_incoming_magic_t>(leg));
    // Reserve the RTP ports now: if there are none, refuse at once.
    if (!OpenMedia(leg)) {
      leg->irq = nullptr;  // answered here; sofia ends the transaction
      nta_incoming_treply(irq, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_USER_AGENT_STR(kUserAgent),
                          TAG_END());
      EndLeg(call_id, 503, leg->end_reason);
      return 503;
    }
    nta_incoming_treply(irq, SIP_180_RINGING, SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()),
                        SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
    leg->counted_ringing = true;
    policy_->StartRinging(leg->account.name);
    if (config_.ring_timeout > 0) {
      leg->ring_timer = StartTimer(&Impl::OnRingTimeout, leg, int64_t{config_.ring_timeout} * 1000);
    }
    return 0;
  }

  // The incoming call is no longer an unanswered one (answered, ended).
  void StopRinging(CallLeg* leg) {
    DestroyTimer(leg->ring_timer);
    if (!leg->counted_ringing) return;
    leg->counted_ringing = false;
    policy_->StopRinging(leg->account.name);
  }

  // Nobody answered the incoming call in [sip-settings] ring-timeout.
  static void OnRingTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
    auto* leg = static_cast<CallLeg*>(static_cast<void*>(arg));
    Impl* self = leg->impl;
    DestroyTimer(leg->ring_timer);
    if (leg->established || leg->answering || leg->end_reported || leg->irq == nullptr) return;
    self->stats_.ring_timeouts.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("call {}: not answered in {} s; 480", leg->id, self->config_.ring_timeout);
    leg->end_code = 480;
    leg->end_reason = "Ring timeout";
    self->RespondToInvite(leg, 480, "Temporarily Unavailable");
  }

  // The outgoing call got no final answer in [sip-settings] invite-timeout:
  // cancelled, and it ends with 408 "No answer".
  static void OnInviteTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
    auto* leg = static_cast<CallLeg*>(static_cast<void*>(arg));
    Impl* self = leg->impl;
    DestroyTimer(leg->invite_timer);
    if (leg->established || leg->end_reported || leg->hangup_requested) return;
    self->stats_.invite_timeouts.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("call {}: no final answer in {} s; cancelled", leg->id,
                 self->config_.invite_timeout);
    leg->hangup_requested = true;
    leg->end_code = 408;
    leg->end_reason = "No answer";
    if (leg->invite == nullptr) {
      self->EndLeg(leg->id, 408, leg->end_reason);
      return;
    }
    self->SendCancel(leg);
  }

  // A final answer other than 2xx to the far end's INVITE of a call that
  // is not established: the call is over.
  void RespondToInvite(CallLeg* leg, int status, const char* phrase) {
    if (leg->irq != nullptr) {
      nta_incoming_treply(leg->irq, status, phrase, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
      nta_incoming_destroy(leg->irq);
      leg->irq = nullptr;
    }
    EndLeg(leg->id, leg->end_code != 0 ? leg->end_code : status,
           leg->end_reason.empty() ? std::string(phrase) : leg->end_reason);
  }

  // ACK or CANCEL of the far end's INVITE (or re-INVITE); null `sip`: no
  // ACK came for our 2xx (timer H).
  static int OnAckOrCancel(nta_incoming_magic_t* magic, nta_incoming_t* irq, const sip_t* sip) {
    auto* leg = Magic<CallLeg>(magic);
    Impl* self = leg->impl;
    if (irq != leg->irq) return 0;
    if (sip != nullptr && sip->sip_request != nullptr &&
        sip->sip_request->rq_method == sip_method_cancel) {
      // sofia answered the CANCEL 200; the INVITE gets 487.
      leg->irq = nullptr;
      nta_incoming_treply(irq, SIP_487_REQUEST_CANCELLED, SIPTAG_USER_AGENT_STR(kUserAgent),
                          TAG_END());
      nta_incoming_destroy(irq);
      if (!leg->end_reported) {
        leg->end_code = 487;
        leg->end_reason = "Cancelled by caller";
        self->EndLeg(leg->id, 487, leg->end_reason);
      }
      return 0;
    }
    leg->irq = nullptr;
    nta_incoming_destroy(irq);
    if (leg->end_reported) return 0;
    if (sip == nullptr) {
      spdlog::warn("call {}: no ACK for our 200; hanging up", leg->id);
      if (leg->end_reason.empty()) leg->end_reason = "No ACK";
      leg->established = true;
      self->SendBye(leg);
      return 0;
    }
    if (leg->offered_in_response) {
      // The answer to the offer of our 200 (delayed offer, offerless
      // re-INVITE): required to set up a new call.
      leg->offered_in_response = false;
      self->OnAnswer(leg, SdpOf(sip), leg->local_hold, /*required=*/!leg->established);
    }
    if (!leg->established) self->OnEstablished(leg);  // else a re-INVITE's ACK
    return 0;
  }

  // The call is set up (our INVITE's 2xx ACKed, or the ACK of our 2xx).
  void OnEstablished(CallLeg* leg) {
    leg->established = true;
    leg->answering = false;
    DestroyTimer(leg->cancel_timer);
    DestroyTimer(leg->invite_timer);
    StopRinging(leg);
    if (leg->media_refused) {
      SendBye(leg);
      return;
    }
    listener_->OnCallEstablished(leg->id);
    if (leg->remote_hold) listener_->OnCallHold(leg->id, leg->local_hold, true);
    if (leg->hangup_requested) SendBye(leg);  // a 2xx crossed our CANCEL, or hung up meanwhile
  }

  // Requests in one of our call dialogs.
  static int OnDialogRequest(nta_leg_magic_t* magic, nta_leg_t*, nta_incoming_t* irq,
                             const sip_t* sip) {
    auto* leg = Magic<CallLeg>(magic);
    Impl* self = leg->impl;
    const sip_method_t method = sip->sip_request->rq_method;
    if (method == sip_method_ack) return 200;  // an ACK no transaction took
    if (leg->end_reported) return method == sip_method_bye ? 200 : 481;
    switch (method) {
      case sip_method_bye:
        nta_incoming_treply(irq, SIP_200_OK, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
        if (leg->irq != nullptr && !leg->established) {
          // BYE before the ACK of our 200, or on an early dialog.
          nta_incoming_treply(leg->irq, SIP_487_REQUEST_CANCELLED, TAG_END());
        }
        self->EndLeg(leg->id, leg->end_code,
                     leg->end_reason.empty() ? "Remote hangup" : leg->end_reason);
        return 200;
      case sip_method_invite:
      case sip_method_update:
        return self->OnReoffer(leg, irq, sip, method == sip_method_update);
      case sip_method_info:
      case sip_method_options:
        return 200;
      default:
        nta_incoming_treply(irq, SIP_405_METHOD_NOT_ALLOWED, SIPTAG_ALLOW_STR(kAllow), TAG_END());
        return 405;
    }
  }

  // An offer (or none) in a re-INVITE or UPDATE of a call: answered now,
  // with our answer or, to an offerless re-INVITE, our offer.
  int OnReoffer(CallLeg* leg, nta_incoming_t* irq, const sip_t* sip, bool is_update) {
    if (!leg->established && !is_update) {
      return 491;  // a re-INVITE before the call is set up
    }
    if (!is_update && leg->irq != nullptr && !leg->offered_in_response) {
      // A re-INVITE before the ACK of our 2xx to the previous one: the far
      // end has that 2xx (its CSeq is higher) and its ACK is on the way, or
      // was overtaken (a proxy's workers can reorder them). Taken as if the
      // ACK had come (RFC 5407 3.1.2); sofia absorbs the late ACK. Only an
      // ACK that must carry an answer (our 2xx had the offer) is waited for.
      nta_incoming_destroy(leg->irq);
      leg->irq = nullptr;
    }
    if (!is_update && (leg->irq != nullptr || leg->invite != nullptr)) {
      return 491;  // glare: one INVITE transaction at a time (RFC 3261 14.2)
    }
    nta_leg_server_route(leg->leg, nullptr, sip->sip_contact);  // a new remote target
    const sip_payload_t* body = SdpOf(sip);
    if (body == nullptr && is_update) {
      nta_incoming_treply(irq, SIP_200_OK, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
      return 200;
    }
    absl::StatusOr<RemoteSdp> offer = body != nullptr ? ParseBody(body) : RemoteSdp();
    absl::StatusOr<std::string> sdp =
        offer.ok() ? ResponseSdp(leg, body != nullptr ? &*offer : nullptr) : offer.status();
    if (!sdp.ok()) {
      // Refused: the call goes on as it was.
      spdlog::warn("call {}: re-offer refused: {}", leg->id, std::string(sdp.status().message()));
      nta_incoming_treply(irq, SIP_488_NOT_ACCEPTABLE,
                          SIPTAG_WARNING_STR(WarningFor(sdp.status()).c_str()),
                          SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
      return 488;
    }
    nta_incoming_treply(irq, SIP_200_OK, SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()),
                        SIPTAG_USER_AGENT_STR(kUserAgent), SIPTAG_CONTENT_TYPE_STR(kSdpType),
                        SIPTAG_PAYLOAD_STR(sdp->c_str()), TAG_END());
    if (is_update) return 200;
    leg->irq = irq;  // until its ACK
    nta_incoming_bind(irq, &Impl::OnAckOrCancel, Magic<nta_incoming_magic_t>(leg));
    return 0;
  }

  // ---------------------------------------------------------------- calls

  // A whole SDP of ours for the leg: the o= version grows whenever the
  // rest differs from the last SDP the call sent (RFC 3264 8).
  std::string LocalSdp(CallLeg* leg, std::string body) {
    if (body != leg->sdp_body) {
      ++leg->sdp_version;
      leg->sdp_body = std::move(body);
    }
    return sdp_writer_->Compose(sdp_session_id_ + static_cast<uint64_t>(leg->id), leg->sdp_version,
                                leg->sdp_body);
  }

  // The SDP body of a request or response; null when it has none
  // (application/sdp, or no type and "v=0").
  static const sip_payload_t* SdpOf(const sip_t* sip) {
    if (sip == nullptr || sip->sip_payload == nullptr || sip->sip_payload->pl_len == 0 ||
        sip->sip_payload->pl_data == nullptr) {
      return nullptr;
    }
    const sip_content_type_t* ct = sip->sip_content_type;
    if (ct != nullptr && ct->c_type != nullptr) {
      return absl::EqualsIgnoreCase(ct->c_type, "application/sdp") ? sip->sip_payload : nullptr;
    }
    const sip_payload_t* pl = sip->sip_payload;
    return pl->pl_len >= 3 && absl::StartsWithIgnoreCase(absl::string_view(pl->pl_data, 3), "v=0")
               ? pl
               : nullptr;
  }

  static absl::StatusOr<RemoteSdp> ParseBody(const sip_payload_t* pl) {
    return ParseRemoteSdp(absl::string_view(pl->pl_data, pl->pl_len));
  }

  // Opens the call's RTP ports; false (and the reason in the leg) if none.
  bool OpenMedia(CallLeg* leg) {
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
    absl::StatusOr<int> port = media_->Open(leg->id, options);
    if (!port.ok()) {
      leg->end_reason = std::string(port.status().message());
      spdlog::warn("call {}: {}", leg->id, leg->end_reason);
      return false;
    }
    leg->local_port = *port;
    return true;
  }

  // Closes the call's RTP ports, if open.
  void CloseMedia(CallLeg* leg) {
    if (leg->local_port == 0) return;
    media_->Close(leg->id);
    leg->local_port = 0;
  }

  CallLeg* FindLeg(int64_t call_id) {
    auto it = calls_.find(call_id);
    return it == calls_.end() ? nullptr : it->second.get();
  }

  // Drops the call's sofia objects and timers.
  void ReleaseSip(CallLeg* leg) {
    DestroyTimer(leg->cancel_timer);
    DestroyTimer(leg->invite_timer);
    StopRinging(leg);
    DestroyOutgoing(leg->invite);
    DestroyOutgoing(leg->bye);
    if (leg->irq != nullptr) {
      nta_incoming_destroy(leg->irq);
      leg->irq = nullptr;
    }
    if (leg->leg != nullptr) {
      nta_leg_destroy(leg->leg);
      leg->leg = nullptr;
    }
  }

  // The call is over: its end is reported (once), its media closed, and
  // its state and sofia objects freed once the current callback is done
  // (sofia may still be using them).
  // `reason` by value: callers pass the leg's own end_reason.
  void EndLeg(int64_t call_id, int code, std::string reason) {
    auto it = calls_.find(call_id);
    bool reported = false;
    if (it != calls_.end()) {
      std::shared_ptr<CallLeg> leg(std::move(it->second));
      calls_.erase(it);
      reported = leg->end_reported;
      leg->end_reported = true;
      DestroyTimer(leg->cancel_timer);
      DestroyTimer(leg->invite_timer);
      StopRinging(leg.get());
      CloseMedia(leg.get());
      // Released after the current callback (sofia may still be using
      // the dialog); callbacks until then see end_reported.
      Defer([this, leg] { ReleaseSip(leg.get()); });
    }
    if (!reported) listener_->OnCallEnded(call_id, code, reason);
    MaybeFinishShutdown();
  }

  // The call was reported ended early (CANCEL unanswered) but its INVITE
  // transaction still runs: it stays in calls_ until the transaction ends.
  void ReportEnded(CallLeg* leg, int code, const std::string& reason) {
    if (leg->end_reported) return;
    leg->end_reported = true;
    DestroyTimer(leg->invite_timer);
    StopRinging(leg);
    CloseMedia(leg);
    listener_->OnCallEnded(leg->id, code, reason);
    MaybeFinishShutdown();
  }

  // No final answer to the INVITE we cancelled (the proxy or the far end
  // is gone): the call is over for the application now; its RTP ports are
  // freed. The transaction runs out on its own (64 x T1).
  static void OnCancelTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
    auto* leg = static_cast<CallLeg*>(static_cast<void*>(arg));
    DestroyTimer(leg->cancel_timer);
    if (leg->established || leg->end_reported) return;
    spdlog::warn("call {}: no answer to CANCEL in {} s; reported as ended", leg->id,
                 absl::ToInt64Seconds(kCancelWait));
    leg->impl->ReportEnded(leg, 487, "No answer to CANCEL");
  }

  void MakeCall(int64_t call_id, const AccountConfig& account, const std::string& number) {
    auto owned = std::make_unique<CallLeg>(this);
    CallLeg* leg = owned.get();
    leg->id = call_id;
    leg->account = account;
    leg->outgoing = true;
    calls_[call_id] = std::move(owned);
    if (shutting_down_) {
      EndLeg(call_id, 503, "Service shutting down");
      return;
    }
    if (!OpenMedia(leg)) {
      EndLeg(call_id, 503, leg->end_reason);
      return;
    }
    absl::StatusOr<DialTarget> dialed = ParseDialTarget(number, account.server);
    if (!dialed.ok()) {  // checked by the backend (CheckNumber) before
      EndLeg(call_id, 400, std::string(dialed.status().message()));
      return;
    }
    const std::string& target = dialed->uri;
    su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
    leg->leg = nta_leg_tcreate(agent_, &Impl::OnDialogRequest, Magic<nta_leg_magic_t>(leg),
                               SIPTAG_FROM_STR(FromFor(account).c_str()),
                               SIPTAG_TO_STR(absl::StrCat("<", target, ">").c_str()),
                               SIPTAG_CALL_ID(sip_call_id_create(scratch, nullptr)), TAG_END());
    su_home_deinit(scratch);
    if (leg->leg == nullptr) {
      EndLeg(call_id, 500, "Cannot create a SIP dialog");
      return;
    }
    nta_leg_tag(leg->leg, nullptr);
    leg->target = target;
    leg->target_in_domain = dialed->in_domain;
    if (config_.invite_timeout > 0) {
      leg->invite_timer =
          StartTimer(&Impl::OnInviteTimeout, leg, int64_t{config_.invite_timeout} * 1000);
    }
    if (!SendInvite(leg, LocalSdp(leg, sdp_writer_->OfferBody(leg->local_port, false)))) {
      EndLeg(call_id, 400, absl::StrCat("Cannot call ", target));
    }
  }

  // The call's first INVITE (again after a challenge), with the account's
  // cached credentials for a target in its own domain or once the proxy
  // has challenged this call. It goes to the
  // account's registrar/proxy whatever the Request-URI names (outbound
  // proxy), so that credentials only ever reach that proxy.
  bool SendInvite(CallLeg* leg, const std::string& sdp) {
    su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
    const std::string proxy = ProxyUrl(leg->account);
    // A first INVITE to another domain goes without; after the proxy's
    // challenge (its realm checked) it goes with them, to the proxy.
    const bool with_credentials = leg->target_in_domain || leg->challenges > 0;
    DigestCache* cache = with_credentials ? CachedInviteAuth(leg->account) : nullptr;
    const sip_header_t* credentials =
        cache != nullptr ? cache->Credentials(leg->account, "INVITE", leg->target, scratch)
                         : nullptr;
    leg->invite =
        nta_outgoing_tcreate(leg->leg, &Impl::OnInviteResponse, Magic<nta_outgoing_magic_t>(leg),
                             URL_STRING_MAKE(proxy.c_str()), SIP_METHOD_INVITE,
                             URL_STRING_MAKE(leg->target.c_str()),
                             SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()),
                             SIPTAG_USER_AGENT_STR(kUserAgent), SIPTAG_ALLOW_STR(kAllow),
                             SIPTAG_CONTENT_TYPE_STR(kSdpType), SIPTAG_PAYLOAD_STR(sdp.c_str()),
                             TAG_IF(credentials != nullptr, SIPTAG_HEADER(credentials)), TAG_END());
    su_home_deinit(scratch);
    if (leg->invite == nullptr) return false;
    AwaitAnswer();
    return true;
  }

  // The account's cached INVITE challenge, if made with its current
  // credentials.
  DigestCache* CachedInviteAuth(const AccountConfig& account) {
    auto it = invite_auth_.find(account.name);
    if (it == invite_auth_.end()) return nullptr;
    DigestCache* auth = it->second.get();
    if (!auth->MadeFor(account)) {
      invite_auth_.erase(it);
      return nullptr;
    }
    return auth;
  }

  // An ACK for the 2xx of our INVITE `orq`.
  void SendAck(CallLeg* leg, nta_outgoing_t* orq) {
    su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
    sip_cseq_t* cseq = sip_cseq_create(scratch, nta_outgoing_cseq(orq), SIP_METHOD_ACK);
    nta_outgoing_t* ack =
        nta_outgoing_tcreate(leg->leg, nullptr, nullptr, nullptr, SIP_METHOD_ACK, nullptr,
                             SIPTAG_CSEQ(cseq), SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
    // sofia keeps the ACK for a while to answer retransmitted 2xx.
    if (ack != nullptr) nta_outgoing_destroy(ack);
    su_home_deinit(scratch);
  }

  void SendBye(CallLeg* leg) {
    if (leg->bye != nullptr || leg->leg == nullptr) return;
    leg->hangup_requested = true;
    leg->bye = nta_outgoing_tcreate(leg->leg, &Impl::OnByeResponse,
                                    Magic<nta_outgoing_magic_t>(leg), nullptr, SIP_METHOD_BYE,
                                    nullptr, SIPTAG_USER_AGENT_STR(kUserAgent), TAG_END());
    if (leg->bye == nullptr) {
      EndLeg(leg->id, leg->end_code, leg->end_reason);
      return;
    }
    AwaitAnswer();
  }

  static int OnByeResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq, const sip_t* sip) {
    auto* leg = Magic<CallLeg>(magic);
    if (StatusOf(orq, sip) < 200 || orq != leg->bye) return 0;
    DestroyOutgoing(leg->bye);
    leg->impl->EndLeg(leg->id, leg->end_code, leg->end_reason);
    return 0;
  }

  static int OnInviteResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq, const sip_t* sip) {
    auto* leg = Magic<CallLeg>(magic);
    if (orq != leg->invite) return 0;
    Impl* self = leg->impl;
    const int status = StatusOf(orq, sip);
    if (leg->established) {  // re-INVITEs are sent only then
      self->OnReinviteResponse(leg, orq, status, PhraseOf(sip), sip);
    } else {
      self->OnCallInviteResponse(leg, orq, status, PhraseOf(sip), sip);
    }
    return 0;
  }

  void OnCallInviteResponse(CallLeg* leg, nta_outgoing_t* orq, int status, const char* phrase,
                            const sip_t* sip) {
    if (status < 200) {
      if (sip == nullptr || status < 101) return;
      if (sip->sip_to->a_tag != nullptr && nta_leg_get_rtag(leg->leg) == nullptr) {
        nta_leg_rtag(leg->leg, sip->sip_to->a_tag);  // early dialog
      }
      leg->far_end_provisional = true;
      if (leg->cancel_held) SendCancel(leg);
      if (leg->end_reported || status < 180) return;
      if (const sip_payload_t* body = SdpOf(sip); body != nullptr) {
        OnAnswer(leg, body, leg->local_hold, /*required=*/false);  // early media
      }
      if (!leg->ringing_reported) {
        leg->ringing_reported = true;
        listener_->OnCallRinging(leg->id, status);
      }
      return;
    }
    leg->invite = nullptr;
    if (leg->cancel_held) {  // final before the far end rang: nothing to CANCEL
      leg->cancel_held = false;
      DestroyTimer(leg->cancel_timer);
    }
    if (status < 300) {
      nta_leg_rtag(leg->leg, sip->sip_to->a_tag);
      nta_leg_client_route(leg->leg, sip->sip_record_route, sip->sip_contact);
      SendAck(leg, orq);
      nta_outgoing_destroy(orq);
      if (leg->end_reported) {  // reported ended (CANCEL unanswered): ACK+BYE
        leg->established = true;
        SendBye(leg);
        return;
      }
      OnAnswer(leg, SdpOf(sip), leg->local_hold, /*required=*/!leg->hangup_requested);
      OnEstablished(leg);
      return;
    }
    nta_outgoing_destroy(orq);
    if ((status == 401 || status == 407) && !leg->hangup_requested && !leg->end_reported) {
      const msg_auth_t* challenge = DigestCache::ChallengeOf(status, sip);
      if (challenge != nullptr && !IsRegistrarRealm(leg->account.name, challenge)) {
        // Not the realm the account's registrar challenged with: whoever
        // made it gets no digest of the account's password.
        stats_.foreign_realm_challenges.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("call {}: {} challenge from realm '{}', not the registrar's: not answered",
                     leg->id, status, Printable(DigestCache::RealmOf(challenge)));
        EndLeg(leg->id, status, "Challenge from a foreign realm");
        return;
      }
      if (leg->challenges == 0 && challenge != nullptr) {
        ++leg->challenges;
        std::unique_ptr<DigestCache>& auth = invite_auth_[leg->account.name];
        if (!auth) auth = std::make_unique<DigestCache>();
        if (auth->Remember(leg->account, challenge, status == 407) &&
            SendInvite(leg, LocalSdp(leg, leg->sdp_body))) {
          return;
        }
      }
      // Rejected credentials: nothing more to wait for, and nothing to
      // send again with the next call.
      invite_auth_.erase(leg->account.name);
    }
    if ((status == 401 || status == 407) && leg->hangup_requested && leg->end_code == 0) {
      // Hung up while the INVITE was being challenged: the challenge only
      // closed the transaction (not sent again); the hangup ended the call.
      EndLeg(leg->id, 0, leg->end_reason);
      return;
    }
    int code = leg->end_code != 0 ? leg->end_code : status;
    std::string reason =
        leg->hangup_requested && leg->end_reason != "Hung up" ? leg->end_reason : phrase;
    EndLeg(leg->id, code, reason);
  }

  void OnReinviteResponse(CallLeg* leg, nta_outgoing_t* orq, int status, const char* phrase,
                          const sip_t* sip) {
    if (status < 200) return;
    leg->invite = nullptr;
    const bool hold = leg->hold_requests.empty() ? leg->local_hold : leg->hold_requests.front();
    if (!leg->hold_requests.empty()) leg->hold_requests.pop_front();
    if (status < 300) {
      nta_leg_client_route(leg->leg, nullptr, sip->sip_contact);  // a new remote target
      SendAck(leg, orq);
      nta_outgoing_destroy(orq);
      if (!leg->end_reported) OnAnswer(leg, SdpOf(sip), hold, /*required=*/false);
    } else {
      nta_outgoing_destroy(orq);
      spdlog::warn("call {}: re-INVITE failed: {} {}", leg->id, status, phrase);
      if (leg->hold_requests.empty()) {
        leg->local_hold = !hold;
        UpdateMedia(leg);
      }
    }
    if (leg->end_reported) return;
    listener_->OnHoldResult(leg->id, hold, status, phrase);
    if (status == 408 || status == 481) {
      // The dialog is gone (RFC 3261 12.2.1.2).
      leg->end_code = status;
      leg->end_reason = phrase;
      SendBye(leg);
      return;
    }
    if (!leg->hold_requests.empty() && !leg->hangup_requested) SendReinvite(leg);
  }

  // A re-INVITE for the first queued hold/resume.
  void SendReinvite(CallLeg* leg) {
    const bool hold = leg->hold_requests.front();
    std::string sdp = LocalSdp(leg, sdp_writer_->OfferBody(leg->local_port, hold));
    leg->invite = nta_outgoing_tcreate(
        leg->leg, &Impl::OnInviteResponse, Magic<nta_outgoing_magic_t>(leg), nullptr,
        SIP_METHOD_INVITE, nullptr, SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()),
        SIPTAG_USER_AGENT_STR(kUserAgent), SIPTAG_CONTENT_TYPE_STR(kSdpType),
        SIPTAG_PAYLOAD_STR(sdp.c_str()), TAG_END());
    if (leg->invite == nullptr) {
      leg->hold_requests.pop_front();
      listener_->OnHoldResult(leg->id, hold, 500, "Cannot send re-INVITE");
      return;
    }
    AwaitAnswer();
  }

  void AnswerCall(int64_t call_id) {
    CallLeg* leg = FindLeg(call_id);
    if (leg == nullptr || leg->outgoing || leg->established || leg->answering ||
        leg->hangup_requested || leg->irq == nullptr) {
      return;
    }
    leg->answering = true;
    StopRinging(leg);
    absl::StatusOr<std::string> sdp =
        ResponseSdp(leg, leg->offer.has_value() ? &*leg->offer : nullptr);
    leg->offer.reset();
    if (!sdp.ok()) {  // checked when the INVITE came: not expected
      leg->end_code = 488;
      leg->end_reason = std::string(sdp.status().message());
      RespondToInvite(leg, 488, "Not Acceptable Here");
      return;
    }
    nta_incoming_treply(leg->irq, SIP_200_OK, SIPTAG_CONTACT_STR(ContactFor(leg->account).c_str()),
                        SIPTAG_USER_AGENT_STR(kUserAgent), SIPTAG_ALLOW_STR(kAllow),
                        SIPTAG_CONTENT_TYPE_STR(kSdpType), SIPTAG_PAYLOAD_STR(sdp->c_str()),
                        TAG_END());
    AwaitAnswer();  // the ACK
  }

  void HangupCall(int64_t call_id) {
    CallLeg* leg = FindLeg(call_id);
    if (leg == nullptr || leg->end_reported || leg->hangup_requested) return;
    leg->hangup_requested = true;
    if (leg->end_reason.empty()) leg->end_reason = "Hung up";
    if (leg->established) {
      SendBye(leg);
    } else if (leg->outgoing) {
      if (leg->invite != nullptr && !leg->far_end_provisional) {
        // Only the proxy's 100 so far. A CANCEL that reaches a proxy while
        // it is still relaying the far end's 180 can be lost there
        // (Kamailio: answered 200, never relayed; the far end rings on),
        // so it waits for the far end's first provisional response, or
        // kCancelHold.
        spdlog::debug("call {}: CANCEL waits for the far end's first provisional response",
                      leg->id);
        leg->cancel_held = true;
        leg->cancel_timer =
            StartTimer(&Impl::OnCancelHold, leg, absl::ToInt64Milliseconds(kCancelHold));
        return;
      }
      SendCancel(leg);
    } else if (!leg->answering) {
      RespondToInvite(leg, 486, "Busy Here");
    }
    // Answered, not yet ACKed: the ACK brings the BYE (OnEstablished).
  }

  // CANCELs the call's INVITE, if still pending, and gives the far end
  // kCancelWait to answer it.
  void SendCancel(CallLeg* leg) {
    leg->cancel_held = false;
    DestroyTimer(leg->cancel_timer);
    if (leg->invite != nullptr) {
      nta_outgoing_cancel(leg->invite);
      AwaitAnswer();
    }
    leg->cancel_timer =
        StartTimer(&Impl::OnCancelTimeout, leg, absl::ToInt64Milliseconds(kCancelWait));
  }

  static void OnCancelHold(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
    auto* leg = static_cast<CallLeg*>(static_cast<void*>(arg));
    if (leg->cancel_held) leg->impl->SendCancel(leg);
  }

  void HoldCall(int64_t call_id, bool hold) {
    CallLeg* leg = FindLeg(call_id);
    if (leg == nullptr || !leg->established || leg->hangup_requested || leg->end_reported) return;
    leg->local_hold = hold;
    leg->hold_requests.push_back(hold);
    // One INVITE transaction at a time: the others wait for its answer.
    if (leg->invite == nullptr && leg->irq == nullptr) SendReinvite(leg);
  }

  void OnRtpTimeout(int64_t call_id) {
    CallLeg* leg = FindLeg(call_id);
    if (leg == nullptr || leg->hangup_requested || leg->end_reported) return;
    spdlog::warn("call {}: no RTP received for {} s, hanging up", call_id, rtp_.rtp_timeout);
    leg->end_reason = "RTP timeout";
    leg->hangup_requested = true;
    if (leg->established) {
      SendBye(leg);
    } else {
      EndLeg(call_id, 0, "RTP timeout");
    }
  }

  // Applies a completed offer/answer to the call's media.
  void ApplyAudio(CallLeg* leg, const AudioSession& session) {
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
    if (leg->established && remote_hold != leg->remote_hold) {
      leg->remote_hold = remote_hold;
      listener_->OnCallHold(leg->id, leg->local_hold, remote_hold);
    } else {
      leg->remote_hold = remote_hold;
    }
    UpdateMedia(leg);
  }

  void UpdateMedia(CallLeg* leg) {
    leg->media.held = leg->local_hold || leg->remote_hold;
    if (leg->local_port != 0 && leg->media.remote_rtp_port != 0) {
      media_->Update(leg->id, leg->media);
    }
  }

  // A call that cannot have audio: hung up once it is established (BYE),
  // ended with 488 and `why`, never reported answered.
  void RefuseMedia(CallLeg* leg, std::string why) {
    spdlog::warn("call {}: {}; hanging up", leg->id, why);
    leg->end_code = 488;
    leg->end_reason = std::move(why);
    leg->hangup_requested = true;
    leg->media_refused = true;
    if (leg->established) SendBye(leg);
  }

  // The session that the far end's answer `body` (null: none) to our offer
  // makes; `hold`: what the offer asked.
  absl::StatusOr<AudioSession> SessionFromAnswer(const sip_payload_t* body, bool hold) const {
    if (body == nullptr) return absl::FailedPreconditionError("no SDP answer");
    absl::StatusOr<RemoteSdp> answer = ParseBody(body);
    if (!answer.ok()) return answer.status();
    return sdp_writer_->FromAnswer(*answer, hold);
  }

  // The far end's answer to our offer (in a 18x/2xx or an ACK). `required`:
  // the call cannot go on without it (a new call's 2xx or ACK).
  void OnAnswer(CallLeg* leg, const sip_payload_t* body, bool hold, bool required) {
    absl::StatusOr<AudioSession> session = SessionFromAnswer(body, hold);
    if (session.ok()) {
      ApplyAudio(leg, *session);
    } else if (required && !leg->hangup_requested) {
      RefuseMedia(leg, absl::StrCat("Unusable SDP answer: ", session.status().message()));
    } else {
      spdlog::warn("call {}: SDP answer ignored: {}", leg->id,
                   std::string(session.status().message()));
    }
  }

  // Our SDP for a 2xx to an INVITE carrying `offer` (or to an UPDATE): our
  // answer, whose session is applied at once; with no offer, an offer of
  // ours, whose answer comes in the ACK. An error: `offer` cannot be
  // answered.
  absl::StatusOr<std::string> ResponseSdp(CallLeg* leg, const RemoteSdp* offer) {
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

  // A Warning header value (RFC 3261 20.43, code 305: incompatible media
  // format) carrying `status`'s message.
  std::string WarningFor(const absl::Status& status) const {
    std::string text(status.message());
    absl::StrReplaceAll({{"\\", "\\\\"}, {"\"", "\\\""}}, &text);
    return absl::StrCat("305 ", HostPort(config_.bind, port_), " \"", text, "\"");
  }

  const SipConfig config_;
  const RtpConfig rtp_;
  MediaEngine* const media_;
  // A call's o= session id is this plus its call id.
  const uint64_t sdp_session_id_ = absl::Uniform<uint64_t>(absl::BitGen(), 1, 1ull << 40);
  std::unique_ptr<SdpWriter> sdp_writer_;  // made on the SIP thread's start
  SipStackListener* listener_ = nullptr;
  int port_ = 0;
  std::thread thread_;

  absl::Mutex mu_;
  std::deque<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  // The eventfd was signalled and OnWake has not yet taken the queue.
  bool wake_pending_ ABSL_GUARDED_BY(mu_) = false;
  int wake_fd_ = -1;

  // SIP thread only.
  su_root_t* root_ = nullptr;
  su_wait_t wait_{};
  nta_agent_t* agent_ = nullptr;
  nta_leg_t* default_leg_ = nullptr;
  std::string contact_host_port_;  // of our Contact: "host:port[;transport=tcp]"
  bool shutting_down_ = false;
  bool stopping_ = false;                                // the loop was told to stop
  absl::Time answer_poll_until_ = absl::InfinitePast();  // AwaitAnswer
  su_timer_t* shutdown_timer_ = nullptr;
  su_timer_t* reaper_ = nullptr;  // runs deferred_
  std::vector<std::function<void()>> deferred_;
  std::map<std::string, std::unique_ptr<Registration>> registrations_;
  std::map<int64_t, std::unique_ptr<CallLeg>> calls_;
  std::map<std::string, std::unique_ptr<DigestCache>> invite_auth_;
  std::unique_ptr<InboundPolicy> policy_;  // made by Start
  std::map<FdLoop::WatchId, std::unique_ptr<FdWatch>> watches_;
  absl::BitGen bitgen_;
  std::atomic<FdLoop::WatchId> next_watch_id_{1};
  std::atomic<std::thread::id> sip_thread_{};  // set when the thread starts

 public:
  // Thread: written on the SIP thread, read anywhere.
  struct Counters {
    std::atomic<uint64_t> untrusted_requests{0};
    std::atomic<uint64_t> foreign_realm_challenges{0};
    std::atomic<uint64_t> ring_timeouts{0};
    std::atomic<uint64_t> invite_timeouts{0};
    std::atomic<uint64_t> ringing_refused{0};
  } stats_;
};

SofiaSipStack::SofiaSipStack(SipConfig config, RtpConfig rtp, MediaEngine* media)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(rtp), media)) {}

SofiaSipStack::~SofiaSipStack() { impl_->Shutdown(absl::Seconds(3)); }

absl::Status SofiaSipStack::Start(SipStackListener* listener) { return impl_->Start(listener); }

void SofiaSipStack::Register(const AccountConfig& account, uint64_t generation) {
  impl_->Post([impl = impl_.get(), account, generation] { impl->Register(account, generation); });
}

void SofiaSipStack::Unregister(const std::string& account, uint64_t generation) {
  impl_->Post([impl = impl_.get(), account, generation] { impl->Unregister(account, generation); });
}

absl::Status SofiaSipStack::CheckNumber(const AccountConfig& account,
                                        const std::string& number) const {
  return ParseDialTarget(number, account.server).status();
}

SofiaSipStack::Stats SofiaSipStack::stats() const {
  const Impl::Counters& c = impl_->stats_;
  Stats stats;
  stats.untrusted_requests = c.untrusted_requests.load(std::memory_order_relaxed);
  stats.foreign_realm_challenges = c.foreign_realm_challenges.load(std::memory_order_relaxed);
  stats.ring_timeouts = c.ring_timeouts.load(std::memory_order_relaxed);
  stats.invite_timeouts = c.invite_timeouts.load(std::memory_order_relaxed);
  stats.ringing_refused = c.ringing_refused.load(std::memory_order_relaxed);
  return stats;
}

bool SofiaSipStack::MakeCall(int64_t call_id, const AccountConfig& account,
                             const std::string& number) {
  return impl_->StartCall(call_id, account, number);
}

void SofiaSipStack::AnswerCall(int64_t call_id) {
  impl_->Post([impl = impl_.get(), call_id] { impl->AnswerCall(call_id); });
}

void SofiaSipStack::HangupCall(int64_t call_id) {
  impl_->Post([impl = impl_.get(), call_id] { impl->HangupCall(call_id); });
}

void SofiaSipStack::HoldCall(int64_t call_id, bool hold) {
  impl_->Post([impl = impl_.get(), call_id, hold] { impl->HoldCall(call_id, hold); });
}

void SofiaSipStack::Shutdown(absl::Duration deadline) { impl_->Shutdown(deadline); }

int SofiaSipStack::port() const { return impl_->port(); }

FdLoop::WatchId SofiaSipStack::Watch(int fd, std::function<bool()> on_readable) {
  return impl_->Watch(fd, std::move(on_readable));
}

void SofiaSipStack::Unwatch(WatchId id) { impl_->Unwatch(id); }

}  // namespace telestra::backend
