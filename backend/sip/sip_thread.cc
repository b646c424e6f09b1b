#include "backend/sip/sip_thread.h"

#include <pthread.h>
#include <sched.h>
#include <sofia-sip/su_log.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "spdlog/spdlog.h"

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

}  // namespace

SipThread::~SipThread() {
  if (thread_.joinable()) {
    stopping_.store(true);
    uint64_t one = 1;
    ssize_t n = write(wake_fd_, &one, sizeof(one));  // the loop sees stopping_
    (void)n;
    thread_.join();
  }
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status SipThread::Start(const std::string& name,
                              std::function<absl::Status(su_root_t*)> setup,
                              std::function<void()> teardown, int nice) {
  std::promise<absl::Status> started;
  std::future<absl::Status> result = started.get_future();
  thread_ = std::thread([this, name, nice, setup = std::move(setup), teardown = std::move(teardown),
                         &started] { Run(name, nice, setup, teardown, started); });
  absl::Status status = result.get();
  if (!status.ok()) thread_.join();
  return status;
}

void SipThread::Run(const std::string& name, int nice,
                    const std::function<absl::Status(su_root_t*)>& setup,
                    const std::function<void()>& teardown, std::promise<absl::Status>& started) {
  owner_.Bind();
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  if (nice != 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) != 0) {
    spdlog::warn("{}: cannot set nice {} ({}); running at the process's priority", name, nice,
                 std::strerror(errno));
  }
  su_init();
  RedirectSofiaLogs();
  root_ = su_root_create(static_cast<su_root_magic_t*>(nullptr));
  if (root_ == nullptr) {
    su_deinit();
    owner_.Release();
    started.set_value(absl::InternalError("su_root_create failed"));
    return;
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  su_wait_create(&wait_, wake_fd_, SU_WAIT_IN);
  su_root_register(root_, &wait_, &SipThread::OnWake, reinterpret_cast<su_wakeup_arg_t*>(this), 0);
  reaper_ = su_timer_create(su_root_task(root_), 0);

  absl::Status status = setup(root_);
  if (status.ok()) {
    started.set_value(absl::OkStatus());
    Loop();
  }
  // Stopped: no more posts are accepted; what was left is dropped, before
  // teardown releases what the tasks would use.
  {
    absl::MutexLock lock(&mu_);
    accepting_ = false;
    posted_.clear();
  }
  if (status.ok()) teardown();
  while (!watches_.empty()) EndWatch(watches_.begin()->first);
  RunDeferred();
  DestroyTimer(reaper_);
  su_root_unregister(root_, &wait_, &SipThread::OnWake, reinterpret_cast<su_wakeup_arg_t*>(this));
  su_root_destroy(root_);
  root_ = nullptr;
  su_deinit();
  owner_.Release();
  if (!status.ok()) started.set_value(status);
  // wake_fd_ stays open until the object goes: a late Post may still
  // write it (harmlessly).
}

void SipThread::Loop() {
  TELESTRA_ASSERT_ON(owner_);
  while (!stopping_.load(std::memory_order_relaxed)) {
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

bool SipThread::Post(std::function<void()> task) {
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

void SipThread::CloseQueue() {
  absl::MutexLock lock(&mu_);
  accepting_ = false;
}

bool SipThread::accepting() const {
  absl::MutexLock lock(&mu_);
  return accepting_;
}

void SipThread::Join() {
  if (thread_.joinable()) thread_.join();
}

int SipThread::OnWake(su_root_magic_t*, su_wait_t*, su_wakeup_arg_t* arg) {
  auto* self = reinterpret_cast<SipThread*>(arg);
  uint64_t count;
  ssize_t n = read(self->wake_fd_, &count, sizeof(count));
  (void)n;
  std::deque<std::function<void()>> tasks;
  {
    absl::MutexLock lock(&self->mu_);
    tasks.swap(self->posted_);
    self->wake_pending_ = false;  // a later Post writes the eventfd again
  }
  for (auto& task : tasks) task();
  return 0;
}

void SipThread::Stop() {
  TELESTRA_ASSERT_ON(owner_);
  stopping_.store(true, std::memory_order_relaxed);
  su_root_break(root_);
}

FdLoop::WatchId SipThread::Watch(int fd, std::function<bool()> on_readable) {
  const WatchId id = next_watch_id_.fetch_add(1, std::memory_order_relaxed);
  bool posted = Post([this, id, fd, on_readable = std::move(on_readable)]() mutable {
    auto watch = std::make_unique<FdWatch>();
    watch->self = this;
    watch->id = id;
    watch->on_readable = std::move(on_readable);
    su_wait_create(&watch->wait, fd, SU_WAIT_IN);
    watch->index = su_root_register(root_, &watch->wait, &SipThread::OnFdReadable,
                                    reinterpret_cast<su_wakeup_arg_t*>(watch.get()), 0);
    if (watch->index <= 0) {
      spdlog::error("SIP thread: cannot wait for descriptor {}", fd);
      return;  // on_readable is destroyed without being called
    }
    watches_[id] = std::move(watch);
  });
  return posted ? id : 0;
}

void SipThread::Unwatch(WatchId id) {
  if (id == 0) return;
  Post([this, id] { EndWatch(id); });
}

// A watched descriptor is readable: its callback runs; false ends it.
int SipThread::OnFdReadable(su_root_magic_t*, su_wait_t*, su_wakeup_arg_t* arg) {
  auto* watch = reinterpret_cast<FdWatch*>(arg);
  if (!watch->on_readable()) watch->self->EndWatch(watch->id);
  return 0;
}

// Stops waiting for a watch's descriptor and destroys its callback.
void SipThread::EndWatch(WatchId id) {
  TELESTRA_ASSERT_ON(owner_);
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  su_root_deregister(root_, it->second->index);
  watches_.erase(it);
}

void SipThread::Defer(std::function<void()> task) {
  TELESTRA_ASSERT_ON(owner_);
  deferred_.push_back(std::move(task));
  if (deferred_.size() == 1 && reaper_ != nullptr) {
    su_timer_set_interval(reaper_, &SipThread::OnReap, reinterpret_cast<su_timer_arg_t*>(this), 0);
  }
}

void SipThread::OnReap(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  reinterpret_cast<SipThread*>(arg)->RunDeferred();
}

void SipThread::RunDeferred() {
  TELESTRA_ASSERT_ON(owner_);
  while (!deferred_.empty()) {
    std::vector<std::function<void()>> tasks;
    tasks.swap(deferred_);
    for (auto& task : tasks) task();
  }
}

su_timer_t* SipThread::StartTimer(su_timer_f callback, void* arg, int64_t ms) {
  TELESTRA_ASSERT_ON(owner_);
  su_timer_t* timer = su_timer_create(su_root_task(root_), 0);
  su_timer_set_interval(timer, callback, static_cast<su_timer_arg_t*>(arg),
                        static_cast<su_duration_t>(std::max<int64_t>(ms, 1)));
  return timer;
}

void SipThread::DestroyTimer(su_timer_t*& timer) {
  if (timer != nullptr) {
    su_timer_destroy(timer);
    timer = nullptr;
  }
}

}  // namespace telestra::backend
