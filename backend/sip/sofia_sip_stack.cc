#include "backend/sip/sofia_sip_stack.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "backend/sip/sdp_offer_answer.h"
#include "spdlog/spdlog.h"

// sofia-sip: only ever included in backend/sip/.
#include <sofia-sip/auth_client.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
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
extern su_log_t nua_log[];
extern su_log_t soa_log[];
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
  for (su_log_t* log : {su_log_default, tport_log, nta_log, nua_log, soa_log, iptsec_log}) {
    su_log_redirect(log, &SofiaLogger, nullptr);
  }
}

constexpr char kUserAgent[] = "Telestra-SIP-Gateway/0.1";
constexpr char kSdpType[] = "application/sdp";

// How long a cancelled outgoing call waits for the final answer to its
// INVITE (normally 487 within milliseconds) before it is reported ended.
constexpr absl::Duration kCancelWait = absl::Seconds(4);

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
  // What a nua handle's magic points to.
  struct HandleOwner {
    enum class Kind { kRegistration, kCall };
    HandleOwner(Kind k, Impl* owner) : kind(k), impl(owner) {}
    const Kind kind;
    Impl* const impl;  // for sofia's timer callbacks
  };

  struct Registration : HandleOwner {
    explicit Registration(Impl* owner) : HandleOwner(Kind::kRegistration, owner) {}
    AccountConfig config;
    uint64_t generation = 0;
    nua_handle_t* nh = nullptr;
    int challenges = 0;  // challenges answered in the current request
    int failures = 0;    // consecutive transient failures (backoff)
    bool registered = false;
    bool unregistering = false;
    bool pending_register = false;  // register again once unregistered
    su_timer_t* retry = nullptr;
  };

  // One call, incoming or outgoing.
  struct CallLeg : HandleOwner {
    explicit CallLeg(Impl* owner) : HandleOwner(Kind::kCall, owner) {}
    int64_t id = -1;
    AccountConfig account;
    nua_handle_t* nh = nullptr;
    bool outgoing = false;
    bool established = false;
    bool answering = false;
    bool hangup_requested = false;
    bool ringing_reported = false;
    int challenges = 0;  // per INVITE transaction
    int end_code = 0;
    std::string end_reason;
    int local_port = 0;  // 0: no media open
    bool local_hold = false;
    bool remote_hold = false;
    std::deque<bool> hold_requests;  // HoldCall re-INVITEs awaiting their answer
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
    // Our CANCEL got no final answer in time: call-ended was reported and
    // sofia finishes the transaction on its own (a late 2xx gets ACK+BYE).
    su_timer_t* cancel_timer = nullptr;
    bool end_reported = false;
    MediaParams media;
  };

  // The last INVITE challenge of an account, with its credentials, so that
  // the next INVITE carries them at once (RFC 3261 22.3) and skips the
  // 401/407 round trip. Keyed by account name; the credentials it was made
  // with tell when a new login makes it stale.
  struct InviteAuth {
    InviteAuth() : home(static_cast<su_home_t*>(su_home_new(sizeof(su_home_t)))) {}
    ~InviteAuth() { su_home_unref(home); }
    InviteAuth(const InviteAuth&) = delete;
    InviteAuth& operator=(const InviteAuth&) = delete;
    su_home_t* home;
    auth_client_t* clients = nullptr;
    std::string user, password, server;
  };

  Impl(SipConfig config, RtpConfig rtp, MediaEngine* media)
      : config_(std::move(config)), rtp_(std::move(rtp)), media_(media) {}

  // Thread: any.
  absl::Status Start(SipStackListener* listener) {
    listener_ = listener;
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

  // Thread: any, once the SIP thread no longer runs: a call that could not
  // be handed to it still gets its single end.
  void EndUnstarted(int64_t call_id) {
    listener_->OnCallEnded(call_id, 503, "Service shutting down");
  }

  void Register(const AccountConfig& config, uint64_t generation) {
    std::unique_ptr<Registration>& slot = registrations_[config.name];
    if (!slot) {
      slot = std::make_unique<Registration>(this);
    }
    Registration* reg = slot.get();
    reg->config = config;
    reg->generation = generation;
    reg->failures = 0;
    CancelRetry(reg);
    Report(reg, 100, "Registering", false);
    if (reg->nh != nullptr && reg->registered) {
      // Replace the binding: unregister the old one, then register anew.
      reg->pending_register = true;
      if (!reg->unregistering) StartUnregister(reg);
      return;
    }
    if (reg->unregistering) {
      reg->pending_register = true;
      return;
    }
    DestroyHandle(reg);
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
    if (reg->nh != nullptr && reg->registered) {
      if (!reg->unregistering) StartUnregister(reg);
      return;
    }
    if (reg->unregistering) return;
    Forget(reg, "Logged out");
  }

  // Everything below runs on the SIP thread.
  void Run(std::promise<absl::Status>& started) {
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
    su_root_threading(root_, 0);  // no extra nua stack thread
    sdp_writer_ = std::make_unique<SdpWriter>(media_->local_address(), rtp_.codecs);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    su_wait_create(&wait_, wake_fd_, SU_WAIT_IN);
    su_root_register(root_, &wait_, &Impl::OnWake, this, 0);

    std::string url =
        absl::StrCat("sip:", HostPort(config_.bind, port_), ";transport=", config_.transport);
    // Offer/answer is ours (sdp_offer_answer.h): sofia's engine (soa) is
    // off, SDP travels as plain bodies, and re-INVITEs and UPDATEs come to
    // us to answer.
    nua_ = nua_create(root_, &Impl::OnNuaEvent, this, NUTAG_URL(url.c_str()),
                      SIPTAG_USER_AGENT_STR(kUserAgent), NUTAG_MEDIA_ENABLE(0),
                      NUTAG_APPL_METHOD("UPDATE"), TAG_END());
    if (nua_ == nullptr) {
      su_root_unregister(root_, &wait_, &Impl::OnWake, this);
      close(wake_fd_);
      su_root_destroy(root_);
      su_deinit();
      started.set_value(absl::UnavailableError(
          absl::StrCat("cannot start the SIP user agent on ", url, " (port in use?)")));
      return;
    }
    spdlog::info("SIP user agent listening on {}", url);
    media_->SetTimeoutHandler(
        [this](int64_t call_id) { Post([this, call_id] { OnRtpTimeout(call_id); }); });
    started.set_value(absl::OkStatus());
    su_root_run(root_);

    // Stopped: no more posts are accepted; drop what was left.
    {
      absl::MutexLock lock(&mu_);
      accepting_ = false;
      posted_.clear();
    }
    for (auto& [name, reg] : registrations_) {
      CancelRetry(reg.get());
      reg->nh = nullptr;  // nua_destroy frees every handle
    }
    registrations_.clear();
    for (auto& [id, leg] : calls_) {
      if (leg->local_port != 0) media_->Close(id);
      leg->nh = nullptr;
      DestroyTimer(leg->cancel_timer);
      if (!leg->end_reported) listener_->OnCallEnded(id, 0, "Service stopped");
    }
    calls_.clear();
    invite_auth_.clear();
    nua_destroy(nua_);
    nua_ = nullptr;
    if (shutdown_timer_ != nullptr) su_timer_destroy(shutdown_timer_);
    su_root_unregister(root_, &wait_, &Impl::OnWake, this);
    close(wake_fd_);
    su_root_destroy(root_);
    root_ = nullptr;
    su_deinit();
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

  void BeginShutdown(int64_t deadline_ms) {
    {
      absl::MutexLock lock(&mu_);
      accepting_ = false;
    }
    if (shutting_down_) return;
    shutting_down_ = true;
    for (auto& [name, reg] : registrations_) CancelRetry(reg.get());
    // sofia unregisters every registration and ends every dialog itself.
    nua_shutdown(nua_);
    shutdown_timer_ = su_timer_create(su_root_task(root_), 0);
    su_timer_set_interval(shutdown_timer_, &Impl::OnShutdownTimeout, this,
                          static_cast<su_duration_t>(std::max<int64_t>(deadline_ms, 1)));
  }

  static void OnShutdownTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
    auto* self = static_cast<Impl*>(arg);
    spdlog::warn("SIP shutdown did not finish in time; stopping anyway");
    su_root_break(self->root_);
  }

  void StartRegister(Registration* reg) {
    const AccountConfig& c = reg->config;
    std::string aor = absl::StrCat("sip:", c.user, "@", c.server);
    std::string from = c.display_name.empty()
                           ? absl::StrCat("<", aor, ">")
                           : absl::StrCat("\"", c.display_name, "\" <", aor, ">");
    std::string registrar = absl::StrCat("sip:", c.server, ";transport=", config_.transport);
    std::string expires = absl::StrCat(config_.register_expires);
    reg->challenges = 0;
    reg->registered = false;
    reg->nh = nua_handle(nua_, reg, SIPTAG_FROM_STR(from.c_str()),
                         SIPTAG_TO_STR(absl::StrCat("<", aor, ">").c_str()), TAG_END());
    if (reg->nh == nullptr) {
      Fail(reg, 500, "Cannot create a SIP handle", /*retry=*/true);
      return;
    }
    nua_register(reg->nh, NUTAG_REGISTRAR(registrar.c_str()), NUTAG_M_USERNAME(c.user.c_str()),
                 SIPTAG_EXPIRES_STR(expires.c_str()), NUTAG_OUTBOUND("no-validate"), TAG_END());
  }

  void StartUnregister(Registration* reg) {
    reg->unregistering = true;
    nua_unregister(reg->nh, TAG_END());
  }

  void DestroyHandle(Registration* reg) {
    if (reg->nh != nullptr) {
      nua_handle_bind(reg->nh, nullptr);
      nua_handle_destroy(reg->nh);
      reg->nh = nullptr;
    }
    reg->registered = false;
    reg->unregistering = false;
  }

  static void DestroyTimer(su_timer_t*& timer) {
    if (timer != nullptr) {
      su_timer_destroy(timer);
      timer = nullptr;
    }
  }

  void CancelRetry(Registration* reg) { DestroyTimer(reg->retry); }

  // Reports 0 and drops the account's state.
  void Forget(Registration* reg, const char* reason) {
    std::string name = reg->config.name;
    uint64_t generation = reg->generation;
    DestroyHandle(reg);
    CancelRetry(reg);
    registrations_.erase(name);
    listener_->OnRegistration(name, generation, 0, reason, false);
  }

  void Report(Registration* reg, int status, const std::string& reason, bool retrying) {
    listener_->OnRegistration(reg->config.name, reg->generation, status, reason, retrying);
  }

  void Fail(Registration* reg, int status, const std::string& reason, bool retry) {
    DestroyHandle(reg);
    if (retry && !shutting_down_) {
      ++reg->failures;
      double base = std::min<double>(
          config_.register_retry_max,
          config_.register_retry_min * std::pow(2.0, std::min(reg->failures - 1, 20)));
      double delay = base * absl::Uniform(bitgen_, 0.8, 1.2);
      CancelRetry(reg);
      reg->retry = su_timer_create(su_root_task(root_), 0);
      su_timer_set_interval(reg->retry, &Impl::OnRetry, reg,
                            static_cast<su_duration_t>(delay * 1000));
      spdlog::info("account {}: retrying registration in {:.1f} s", reg->config.name, delay);
    }
    Report(reg, status, reason, retry);
  }

  static void OnRetry(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
    auto* reg = static_cast<Registration*>(arg);
    Impl* self = reg->impl;
    self->CancelRetry(reg);
    if (self->shutting_down_ || reg->nh != nullptr) return;
    self->StartRegister(reg);
  }

  void OnRegisterResult(Registration* reg, int status, const char* phrase, const sip_t* sip) {
    if (status < 200) return;
    if (status == 401 || status == 407) {
      const msg_auth_t* challenge = ChallengeOf(status, sip);
      if (reg->challenges == 0 && challenge != nullptr) {
        ++reg->challenges;
        nua_authenticate(reg->nh, NUTAG_AUTH(AuthString(challenge, reg->config).c_str()),
                         TAG_END());
        return;
      }
      Fail(reg, status, phrase, /*retry=*/false);  // credentials rejected
      return;
    }
    if (status < 300) {
      reg->registered = true;
      reg->challenges = 0;
      reg->failures = 0;
      Report(reg, 200, phrase, false);
      return;
    }
    if (status == 904) {  // sofia: the same credentials were challenged again
      Fail(reg, 401, "Unauthorized", /*retry=*/false);
      return;
    }
    if (status >= 700) {  // sofia-internal errors (transport, bad URI ...)
      Fail(reg, 503, phrase, /*retry=*/true);
      return;
    }
    Fail(reg, status, phrase, !IsPermanentFailure(status));
  }

  void OnUnregisterResult(Registration* reg, int status) {
    if (status < 200) return;
    DestroyHandle(reg);
    if (reg->pending_register) {
      reg->pending_register = false;
      StartRegister(reg);
      return;
    }
    Forget(reg, "Logged out");
  }

  static void OnNuaEvent(nua_event_t event, int status, char const* phrase, nua_t*,
                         nua_magic_t* magic, nua_handle_t* nh, nua_hmagic_t* hmagic,
                         sip_t const* sip, tagi_t tags[]) {
    auto* self = static_cast<Impl*>(magic);
    auto* owner = static_cast<HandleOwner*>(hmagic);
    const char* reason = phrase != nullptr ? phrase : "";
    if (owner != nullptr && owner->kind == HandleOwner::Kind::kCall) {
      auto* leg = static_cast<CallLeg*>(owner);
      if (leg->nh == nh) self->OnCallEvent(leg, event, status, reason, sip, tags);
      return;
    }
    auto* reg = static_cast<Registration*>(owner);
    switch (event) {
      case nua_r_register:
        if (reg != nullptr && reg->nh == nh) self->OnRegisterResult(reg, status, reason, sip);
        return;
      case nua_r_unregister:
        if (reg != nullptr && reg->nh == nh) self->OnUnregisterResult(reg, status);
        return;
      case nua_r_shutdown:
        if (status >= 200) {
          spdlog::info("SIP user agent shut down ({} {})", status, reason);
          su_root_break(self->root_);
        }
        return;
      case nua_i_invite:
        if (owner == nullptr) self->OnIncomingInvite(nh, sip);
        return;
      case nua_i_options:
      case nua_i_message:
      case nua_i_info:
      case nua_i_notify:
      case nua_i_subscribe:
      case nua_i_refer:
      case nua_i_publish:
        // Requests on handles the stack created (OPTIONS is answered by
        // sofia); the application must free these handles.
        if (owner == nullptr) nua_handle_destroy(nh);
        return;
      default:
        return;
    }
  }

  // ------------------------------------------------------------------ calls

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
  // (the same test as sofia's: application/sdp, or no type and "v=0").
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

  CallLeg* FindLeg(int64_t call_id) {
    auto it = calls_.find(call_id);
    return it == calls_.end() ? nullptr : it->second.get();
  }

  // Ends a leg that never reached sofia (or whose handle is gone).
  // `reason` by value: callers pass the leg's own end_reason, which dies
  // with the leg before the listener is told.
  void EndLeg(int64_t call_id, int code, std::string reason) {
    auto it = calls_.find(call_id);
    bool reported = false;
    if (it != calls_.end()) {
      CallLeg* leg = it->second.get();
      reported = leg->end_reported;
      DestroyTimer(leg->cancel_timer);
      if (leg->local_port != 0) media_->Close(call_id);
      if (leg->nh != nullptr) {
        nua_handle_bind(leg->nh, nullptr);
        nua_handle_destroy(leg->nh);
      }
      calls_.erase(it);
    }
    if (!reported) listener_->OnCallEnded(call_id, code, reason);
  }

  // No final answer to the INVITE we cancelled (the proxy or the far end
  // is gone): the call is over for the application now; its RTP ports are
  // freed. sofia's transaction runs out on its own (64 x T1).
  static void OnCancelTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
    auto* leg = static_cast<CallLeg*>(arg);
    Impl* self = leg->impl;
    DestroyTimer(leg->cancel_timer);
    if (leg->established || leg->end_reported) return;
    spdlog::warn("call {}: no answer to CANCEL in {} s; reported as ended", leg->id,
                 absl::ToInt64Seconds(kCancelWait));
    leg->end_reported = true;
    if (leg->local_port != 0) {
      self->media_->Close(leg->id);
      leg->local_port = 0;
    }
    self->listener_->OnCallEnded(leg->id, 487, "No answer to CANCEL");
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
    std::string aor = absl::StrCat("sip:", account.user, "@", account.server);
    std::string from = account.display_name.empty()
                           ? absl::StrCat("<", aor, ">")
                           : absl::StrCat("\"", account.display_name, "\" <", aor, ">");
    const bool target_in_domain =
        !absl::StartsWith(number, "sip:") && !absl::StartsWith(number, "sips:");
    std::string target =
        target_in_domain ? absl::StrCat("sip:", number, "@", account.server) : number;
    leg->nh = nua_handle(nua_, leg, SIPTAG_FROM_STR(from.c_str()),
                         SIPTAG_TO_STR(absl::StrCat("<", target, ">").c_str()), TAG_END());
    if (leg->nh == nullptr) {
      EndLeg(call_id, 500, "Cannot create a SIP handle");
      return;
    }
    // Credentials from the account's last challenge, for a target in the
    // account's own domain only (never a digest for a foreign server).
    su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
    const sip_header_t* credentials =
        target_in_domain ? PreemptiveCredentials(account, target, scratch) : nullptr;
    std::string sdp = LocalSdp(leg, sdp_writer_->OfferBody(leg->local_port, /*hold=*/false));
    nua_invite(leg->nh, NUTAG_M_USERNAME(account.user.c_str()), SIPTAG_CONTENT_TYPE_STR(kSdpType),
               SIPTAG_PAYLOAD_STR(sdp.c_str()),
               TAG_IF(credentials != nullptr, SIPTAG_HEADER(credentials)), TAG_END());
    su_home_deinit(scratch);
  }

  // The cached INVITE challenge of `account`, if it was made with the
  // account's current credentials; else forgets it and returns null.
  InviteAuth* CachedInviteAuth(const AccountConfig& account) {
    auto it = invite_auth_.find(account.name);
    if (it == invite_auth_.end()) return nullptr;
    InviteAuth* auth = it->second.get();
    if (auth->user != account.user || auth->password != account.password ||
        auth->server != account.server) {
      invite_auth_.erase(it);
      return nullptr;
    }
    return auth;
  }

  // An Authorization/Proxy-Authorization header for an INVITE to `target`
  // from the account's cached challenge (nonce count advanced by sofia),
  // allocated in `home`; null when there is none.
  const sip_header_t* PreemptiveCredentials(const AccountConfig& account, const std::string& target,
                                            su_home_t* home) {
    InviteAuth* auth = CachedInviteAuth(account);
    if (auth == nullptr || auc_has_authorization(&auth->clients) != 1) return nullptr;
    url_t* url = url_make(home, target.c_str());
    if (url == nullptr) return nullptr;
    msg_header_t* headers = nullptr;
    if (auc_authorization_headers(&auth->clients, home, "INVITE", url, nullptr, &headers) != 1) {
      return nullptr;
    }
    return reinterpret_cast<const sip_header_t*>(headers);
  }

  // Remembers the challenge of an account's INVITE and the credentials
  // that answer it.
  void CacheInviteChallenge(const AccountConfig& account, const msg_auth_t* challenge, bool proxy) {
    InviteAuth* auth = CachedInviteAuth(account);
    if (auth == nullptr) {
      auto owned = std::make_unique<InviteAuth>();
      auth = owned.get();
      auth->user = account.user;
      auth->password = account.password;
      auth->server = account.server;
      invite_auth_[account.name] = std::move(owned);
    }
    msg_hclass_t* credential_class =
        proxy ? sip_proxy_authorization_class : sip_authorization_class;
    if (auc_challenge(&auth->clients, auth->home, challenge, credential_class) < 0 ||
        auc_credentials(&auth->clients, auth->home, AuthString(challenge, account).c_str()) < 0) {
      invite_auth_.erase(account.name);
    }
  }

  void OnIncomingInvite(nua_handle_t* nh, const sip_t* sip) {
    Registration* reg = sip != nullptr ? AccountFor(sip) : nullptr;
    if (reg == nullptr || shutting_down_) {
      nua_respond(nh, shutting_down_ ? 503 : 404,
                  shutting_down_ ? "Service Unavailable" : "Not Found", TAG_END());
      nua_handle_destroy(nh);
      return;
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
        nua_respond(nh, 488, "Not Acceptable Here", SIPTAG_WARNING_STR(WarningFor(usable).c_str()),
                    TAG_END());
        nua_handle_destroy(nh);
        return;
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
    if (call_id < 0) {
      nua_respond(nh, 480, "Temporarily Unavailable", TAG_END());
      nua_handle_destroy(nh);
      return;
    }
    auto owned = std::make_unique<CallLeg>(this);
    CallLeg* leg = owned.get();
    leg->id = call_id;
    leg->account = reg->config;
    leg->nh = nh;
    leg->offer = std::move(offer);
    calls_[call_id] = std::move(owned);
    nua_handle_bind(nh, leg);
    // Reserve the RTP ports now: if there are none, refuse at once.
    if (!OpenMedia(leg)) {
      leg->end_code = 503;
      nua_respond(nh, 503, "Service Unavailable", TAG_END());
      return;
    }
    nua_respond(nh, 180, "Ringing", TAG_END());
  }

  void AnswerCall(int64_t call_id) {
    CallLeg* leg = FindLeg(call_id);
    if (leg == nullptr || leg->outgoing || leg->established || leg->answering ||
        leg->hangup_requested) {
      return;
    }
    leg->answering = true;
    absl::StatusOr<std::string> sdp =
        ResponseSdp(leg, leg->offer.has_value() ? &*leg->offer : nullptr);
    leg->offer.reset();
    if (!sdp.ok()) {  // checked when the INVITE came: not expected
      leg->end_code = 488;
      leg->end_reason = std::string(sdp.status().message());
      nua_respond(leg->nh, 488, "Not Acceptable Here", TAG_END());
      return;
    }
    nua_respond(leg->nh, 200, "OK", SIPTAG_CONTENT_TYPE_STR(kSdpType),
                SIPTAG_PAYLOAD_STR(sdp->c_str()), TAG_END());
  }

  void HangupCall(int64_t call_id) {
    CallLeg* leg = FindLeg(call_id);
    if (leg == nullptr || leg->hangup_requested) return;
    leg->hangup_requested = true;
    if (leg->end_reason.empty()) leg->end_reason = "Hung up";
    if (leg->established) {
      nua_bye(leg->nh, TAG_END());
    } else if (leg->outgoing) {
      nua_cancel(leg->nh, TAG_END());
      leg->cancel_timer = su_timer_create(su_root_task(root_), 0);
      su_timer_set_interval(leg->cancel_timer, &Impl::OnCancelTimeout, leg,
                            static_cast<su_duration_t>(absl::ToInt64Milliseconds(kCancelWait)));
    } else {
      nua_respond(leg->nh, 486, "Busy Here", TAG_END());
    }
  }

  void HoldCall(int64_t call_id, bool hold) {
    CallLeg* leg = FindLeg(call_id);
    if (leg == nullptr || !leg->established || leg->hangup_requested) return;
    leg->local_hold = hold;
    leg->hold_requests.push_back(hold);
    std::string sdp = LocalSdp(leg, sdp_writer_->OfferBody(leg->local_port, hold));
    nua_invite(leg->nh, SIPTAG_CONTENT_TYPE_STR(kSdpType), SIPTAG_PAYLOAD_STR(sdp.c_str()),
               TAG_END());
  }

  void OnRtpTimeout(int64_t call_id) {
    CallLeg* leg = FindLeg(call_id);
    if (leg == nullptr || leg->hangup_requested) return;
    spdlog::warn("call {}: no RTP received for {} s, hanging up", call_id, rtp_.rtp_timeout);
    leg->end_reason = "RTP timeout";
    leg->hangup_requested = true;
    if (leg->established) {
      nua_bye(leg->nh, TAG_END());
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

  // A call that cannot have audio: hung up (BYE once it is established),
  // ended with 488 and `why`.
  void RefuseMedia(CallLeg* leg, std::string why) {
    spdlog::warn("call {}: {}; hanging up", leg->id, why);
    leg->end_code = 488;
    leg->end_reason = std::move(why);
    leg->hangup_requested = true;
    leg->media_refused = true;
    if (leg->established) nua_bye(leg->nh, TAG_END());
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

  // An offer (or none) in a re-INVITE or UPDATE of an established call:
  // answered now, with our answer or, to an offerless re-INVITE, our offer.
  void OnReoffer(CallLeg* leg, const sip_t* sip, bool is_update) {
    const sip_payload_t* body = SdpOf(sip);
    if (body == nullptr && is_update) {
      nua_respond(leg->nh, 200, "OK", NUTAG_WITH_THIS(nua_), TAG_END());
      return;
    }
    absl::StatusOr<RemoteSdp> offer = body != nullptr ? ParseBody(body) : RemoteSdp();
    absl::StatusOr<std::string> sdp =
        offer.ok() ? ResponseSdp(leg, body != nullptr ? &*offer : nullptr) : offer.status();
    if (!sdp.ok()) {
      // Refused: the call goes on as it was.
      spdlog::warn("call {}: re-offer refused: {}", leg->id, std::string(sdp.status().message()));
      nua_respond(leg->nh, 488, "Not Acceptable Here", NUTAG_WITH_THIS(nua_),
                  SIPTAG_WARNING_STR(WarningFor(sdp.status()).c_str()), TAG_END());
      return;
    }
    nua_respond(leg->nh, 200, "OK", NUTAG_WITH_THIS(nua_), SIPTAG_CONTENT_TYPE_STR(kSdpType),
                SIPTAG_PAYLOAD_STR(sdp->c_str()), TAG_END());
  }

  // A Warning header value (RFC 3261 20.43, code 305: incompatible media
  // format) carrying `status`'s message.
  std::string WarningFor(const absl::Status& status) const {
    std::string text(status.message());
    absl::StrReplaceAll({{"\\", "\\\\"}, {"\"", "\\\""}}, &text);
    return absl::StrCat("305 ", HostPort(config_.bind, port_), " \"", text, "\"");
  }

  void OnCallEvent(CallLeg* leg, nua_event_t event, int status, const char* phrase,
                   const sip_t* sip, tagi_t tags[]) {
    if (leg->end_reported) {
      // Already over for the application: only finish the SIP side.
      if ((event == nua_i_invite || event == nua_i_update) && status < 200) {
        nua_respond(leg->nh, 481, "Call Does Not Exist", NUTAG_WITH_THIS(nua_), TAG_END());
      } else if (event == nua_i_state) {
        int callstate = nua_callstate_init;
        tl_gets(tags, NUTAG_CALLSTATE_REF(callstate), TAG_END());
        if (callstate == nua_callstate_terminated) {
          EndLeg(leg->id, 0, "");
        } else if (callstate == nua_callstate_ready && !leg->established) {
          leg->established = true;
          nua_bye(leg->nh, TAG_END());  // a 2xx after all: ACKed by sofia, BYE
        }
      }
      return;
    }
    switch (event) {
      case nua_r_invite:
        if (status == 401 || status == 407) {
          const msg_auth_t* challenge = ChallengeOf(status, sip);
          if (leg->challenges == 0 && challenge != nullptr) {
            ++leg->challenges;
            nua_authenticate(leg->nh, NUTAG_AUTH(AuthString(challenge, leg->account).c_str()),
                             TAG_END());
            if (leg->outgoing && !leg->established) {
              CacheInviteChallenge(leg->account, challenge, status == 407);
            }
            return;
          }
          // Rejected credentials: nothing more to wait for, and nothing to
          // send again with the next call.
          invite_auth_.erase(leg->account.name);
          EndLeg(leg->id, status, phrase);
          return;
        }
        if (status >= 200) leg->challenges = 0;  // a later re-INVITE starts afresh
        if (status >= 180 && status < 300) {
          // The answer to our offer (a 18x's is early media). The initial
          // INVITE's 2xx must have a usable one; a re-INVITE's may be off.
          const sip_payload_t* body = SdpOf(sip);
          const bool reinvite = leg->established && !leg->hold_requests.empty();
          const bool hold = reinvite ? leg->hold_requests.front() : leg->local_hold;
          if (body != nullptr || status >= 200) {
            OnAnswer(leg, body, hold, /*required=*/status >= 200 && !leg->established);
          }
        }
        if (status >= 180 && status < 200 && leg->outgoing && !leg->established &&
            !leg->ringing_reported) {
          leg->ringing_reported = true;
          listener_->OnCallRinging(leg->id, status);
        }
        if (status >= 200 && leg->established && !leg->hold_requests.empty()) {
          // The answer to a hold/resume re-INVITE; sofia sends them one at
          // a time, in order.
          bool hold = leg->hold_requests.front();
          leg->hold_requests.pop_front();
          if (status >= 300) {
            // Refused: the call goes on as it was.
            spdlog::warn("call {}: re-INVITE failed: {} {}", leg->id, status, phrase);
            if (leg->hold_requests.empty()) {
              leg->local_hold = !hold;
              UpdateMedia(leg);
            }
          }
          listener_->OnHoldResult(leg->id, hold, status, phrase);
          return;
        }
        if (status >= 300) {
          if (leg->established) {
            spdlog::warn("call {}: re-INVITE failed: {} {}", leg->id, status, phrase);
          } else if (leg->end_code == 0) {
            leg->end_code = status;
            if (!leg->hangup_requested || leg->end_reason == "Hung up") {
              leg->end_reason = phrase;
            }
          }
        }
        return;
      case nua_i_invite:  // a re-INVITE (the first INVITE made the leg)
      case nua_i_update:
        if (status < 200) OnReoffer(leg, sip, event == nua_i_update);
        return;
      case nua_i_ack:
        if (leg->offered_in_response) {
          // The answer to the offer of our 200 (delayed offer, offerless
          // re-INVITE): required to set up a new call.
          leg->offered_in_response = false;
          OnAnswer(leg, SdpOf(sip), leg->local_hold, /*required=*/!leg->established);
        }
        return;
      case nua_i_bye:
        leg->end_reason = "Remote hangup";
        return;
      case nua_i_cancel:
        leg->end_code = 487;
        leg->end_reason = "Cancelled by caller";
        return;
      case nua_i_error:
        spdlog::warn("call {}: {} {}", leg->id, status, phrase);
        return;
      case nua_i_state: {
        int callstate = nua_callstate_init;
        tl_gets(tags, NUTAG_CALLSTATE_REF(callstate), TAG_END());
        if (callstate == nua_callstate_terminated) {
          int code = leg->end_code != 0 ? leg->end_code : (status >= 300 ? status : 0);
          std::string reason = leg->end_reason.empty() ? phrase : leg->end_reason;
          EndLeg(leg->id, code, reason);  // destroys the leg and its handle
          return;
        }
        if (callstate == nua_callstate_ready && !leg->established) {
          leg->established = true;
          if (leg->media_refused) {
            nua_bye(leg->nh, TAG_END());
            return;
          }
          listener_->OnCallEstablished(leg->id);
          if (leg->remote_hold) listener_->OnCallHold(leg->id, leg->local_hold, true);
          if (leg->hangup_requested) nua_bye(leg->nh, TAG_END());  // 2xx crossed our CANCEL
        }
        return;
      }
      default:
        return;
    }
  }

  // The challenge of a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate).
  static const msg_auth_t* ChallengeOf(int status, const sip_t* sip) {
    if (sip == nullptr) return nullptr;
    return status == 401 ? sip->sip_www_authenticate : sip->sip_proxy_authenticate;
  }

  static std::string AuthString(const msg_auth_t* challenge, const AccountConfig& account) {
    const char* realm = msg_params_find(challenge->au_params, "realm=");
    std::string quoted = realm == nullptr  ? "\"\""
                         : realm[0] == '"' ? std::string(realm)
                                           : absl::StrCat("\"", realm, "\"");
    return absl::StrCat(challenge->au_scheme, ":", quoted, ":", account.user, ":",
                        account.password);
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
  nua_t* nua_ = nullptr;
  bool shutting_down_ = false;
  su_timer_t* shutdown_timer_ = nullptr;
  std::map<std::string, std::unique_ptr<Registration>> registrations_;
  std::map<int64_t, std::unique_ptr<CallLeg>> calls_;
  std::map<std::string, std::unique_ptr<InviteAuth>> invite_auth_;
  absl::BitGen bitgen_;
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

void SofiaSipStack::MakeCall(int64_t call_id, const AccountConfig& account,
                             const std::string& number) {
  bool posted = impl_->Post(
      [impl = impl_.get(), call_id, account, number] { impl->MakeCall(call_id, account, number); });
  if (!posted) impl_->EndUnstarted(call_id);
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

}  // namespace telestra::backend
