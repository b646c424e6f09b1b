#include "backend/sip/sofia_sip_stack_impl.h"

// The SIP thread: start, its task queue and eventfd wake-up, the polling loop
// (answer-poll), the FdLoop other parts borrow, deferred work, shutdown.

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

// Thread: any.
absl::Status SofiaSipStack::Impl::Start(SipStackListener* listener) {
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
bool SofiaSipStack::Impl::Post(std::function<void()> task) {
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
void SofiaSipStack::Impl::Shutdown(absl::Duration deadline) {
  if (!thread_.joinable()) return;
  int64_t millis = absl::ToInt64Milliseconds(deadline);
  if (!Post([this, millis] { BeginShutdown(millis); })) return;
  thread_.join();
}

// Thread: any. FdLoop::Watch: registers `fd` with su_root on the SIP
// thread.
FdLoop::WatchId SofiaSipStack::Impl::Watch(int fd, std::function<bool()> on_readable) {
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
void SofiaSipStack::Impl::Unwatch(FdLoop::WatchId id) {
  if (id == 0) return;
  Post([this, id] { EndWatch(id); });
}

// Thread: any. SipStack::MakeCall. On the SIP thread itself (a native
// command read there) the INVITE goes out at once and a call that cannot
// start is reported ended before this returns (the backend calls with no
// lock held and has answered call-return already). Elsewhere it is posted.
bool SofiaSipStack::Impl::StartCall(int64_t call_id, const AccountConfig& account,
                                    const std::string& number) {
  if (std::this_thread::get_id() != sip_thread_.load(std::memory_order_relaxed)) {
    return Post([this, call_id, account, number] { MakeCall(call_id, account, number); });
  }
  {
    absl::MutexLock lock(&mu_);
    if (!accepting_) return false;
  }
  MakeCall(call_id, account, number);
  return true;
}

// ----------------------------------------------------------- the thread

void SofiaSipStack::Impl::Run(std::promise<absl::Status>& started) {
  sip_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  owner_.Bind();
  pthread_setname_np(pthread_self(), "telestra-sip");  // for top -H, perf, gdb
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
  RunPolling();

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
    if (leg->state != CallState::kTerminated) listener_->OnCallEnded(id, 0, "Service stopped");
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
  owner_.Release();
}

// su_root_run's loop, except that the thread keeps polling (zero-timeout
// steps) instead of waiting until answer_poll_until_ after it sent a
// request (AwaitAnswer). Ends when stopping_ is set.
void SofiaSipStack::Impl::RunPolling() {
  TELESTRA_ASSERT_ON(owner_);
  while (!stopping_) {
    // 0: something was done (or a timer is due within the millisecond).
    su_duration_t next = su_root_step(root_, 0);
    if (next == 0) continue;
    if (absl::Now() < answer_poll_until_) {
      sched_yield();  // a runnable thread of this CPU goes first
    } else {
      su_root_step(root_, next);  // sleeps until work or the next timer
    }
  }
}

// A watched descriptor is readable: its callback runs; false ends it.
int SofiaSipStack::Impl::OnFdReadable(su_root_magic_t*, su_wait_t*, su_wakeup_arg_t* arg) {
  auto* watch = static_cast<FdWatch*>(static_cast<void*>(arg));
  if (!watch->on_readable()) watch->self->EndWatch(watch->id);
  return 0;
}

// Stops waiting for a watch's descriptor and destroys its callback.
void SofiaSipStack::Impl::EndWatch(FdLoop::WatchId id) {
  TELESTRA_ASSERT_ON(owner_);
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  su_root_deregister(root_, it->second->index);
  watches_.erase(it);
}

int SofiaSipStack::Impl::OnWake(su_root_magic_t* magic, su_wait_t*, su_wakeup_arg_t*) {
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
void SofiaSipStack::Impl::BeginShutdown(int64_t deadline_ms) {
  TELESTRA_ASSERT_ON(owner_);
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
    if (leg == nullptr || leg->state == CallState::kTerminated) continue;
    if (leg->state == CallState::kIncoming) {
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
    if (reg->state == RegistrationState::kRegistered ||
        reg->state == RegistrationState::kRefreshing) {
      StartUnregister(reg);
    } else if (reg->state != RegistrationState::kUnregistering) {
      ReleaseSip(reg);
      registrations_.erase(name);
    }
  }
  MaybeFinishShutdown();
}

void SofiaSipStack::Impl::MaybeFinishShutdown() {
  TELESTRA_ASSERT_ON(owner_);
  if (!shutting_down_ || stopping_) return;
  if (!registrations_.empty()) return;
  for (auto& [id, leg] : calls_) {
    if (leg->state != CallState::kTerminated) return;
  }
  stopping_ = true;
  spdlog::info("SIP user agent shut down");
  su_root_break(root_);
}

void SofiaSipStack::Impl::OnShutdownTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* self = static_cast<Impl*>(arg);
  spdlog::warn("SIP shutdown did not finish in time; stopping anyway");
  self->stopping_ = true;
  su_root_break(self->root_);
}

// Runs `task` once the current callback has returned (before the loop
// waits again): sofia objects must not be destroyed from their own
// callbacks.
void SofiaSipStack::Impl::Defer(std::function<void()> task) {
  TELESTRA_ASSERT_ON(owner_);
  deferred_.push_back(std::move(task));
  if (deferred_.size() == 1 && reaper_ != nullptr) {
    su_timer_set_interval(reaper_, &Impl::OnReap, this, 0);
  }
}

void SofiaSipStack::Impl::OnReap(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  static_cast<Impl*>(static_cast<void*>(arg))->RunDeferred();
}

void SofiaSipStack::Impl::RunDeferred() {
  TELESTRA_ASSERT_ON(owner_);
  while (!deferred_.empty()) {
    std::vector<std::function<void()>> tasks;
    tasks.swap(deferred_);
    for (auto& task : tasks) task();
  }
}

void SofiaSipStack::Impl::DestroyTimer(su_timer_t*& timer) {
  if (timer != nullptr) {
    su_timer_destroy(timer);
    timer = nullptr;
  }
}

void SofiaSipStack::Impl::DestroyOutgoing(nta_outgoing_t*& orq) {
  if (orq != nullptr) {
    nta_outgoing_destroy(orq);
    orq = nullptr;
  }
}

// A timer on the SIP thread calling `callback` with `arg` after `ms`.
su_timer_t* SofiaSipStack::Impl::StartTimer(su_timer_f callback, void* arg, int64_t ms) {
  TELESTRA_ASSERT_ON(owner_);
  su_timer_t* timer = su_timer_create(su_root_task(root_), 0);
  su_timer_set_interval(timer, callback, static_cast<su_timer_arg_t*>(arg),
                        static_cast<su_duration_t>(std::max<int64_t>(ms, 1)));
  return timer;
}

}  // namespace telestra::backend
