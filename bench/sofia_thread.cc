#include "bench/sofia_thread.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <utility>

namespace telestra::bench {

SofiaThread::SofiaThread(std::string name, int nice, std::function<void(su_root_t*)> init,
                         std::function<bool()> fini)
    : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  thread_ = std::thread([this, name = std::move(name), nice, init = std::move(init),
                         fini = std::move(fini)] { Run(name, nice, init, fini); });
}

SofiaThread::~SofiaThread() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  close(wake_fd_);
}

void SofiaThread::Post(std::function<void()> task) {
  bool first;
  {
    absl::MutexLock lock(&mu_);
    first = tasks_.empty();
    tasks_.push_back(std::move(task));
  }
  if (first) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
}

void SofiaThread::Run(const std::string& name, int nice,
                      const std::function<void(su_root_t*)>& init,
                      const std::function<bool()>& fini) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  if (nice != 0) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice);
  su_init();
  root_ = su_root_create(this);
  su_root_threading(root_, 0);  // no extra nua stack thread
  su_wait_create(wait_, wake_fd_, SU_WAIT_IN);
  su_root_register(root_, wait_, &SofiaThread::OnWake, this, 0);
  init(root_);
  bool stop;
  {
    absl::MutexLock lock(&mu_);
    stop = stopping_;
  }
  if (!stop) su_root_run(root_);
  bool destroy = fini();
  su_root_unregister(root_, wait_, &SofiaThread::OnWake, this);
  if (!destroy) return;
  su_root_destroy(root_);
  su_deinit();
}

int SofiaThread::OnWake(su_root_magic_t*, su_wait_t* w, su_wakeup_arg_t* arg) {
  auto* self = static_cast<SofiaThread*>(arg);
  su_wait_events(w, self->wake_fd_);
  uint64_t value;
  while (read(self->wake_fd_, &value, sizeof(value)) > 0) {
  }
  std::deque<std::function<void()>> batch;
  bool stop;
  {
    absl::MutexLock lock(&self->mu_);
    batch.swap(self->tasks_);
    stop = self->stopping_;
  }
  for (auto& task : batch) task();
  if (stop) su_root_break(self->root_);
  return 0;
}

absl::Status AwaitStart(std::future<absl::Status>& started, const std::string& timeout_error) {
  if (started.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return absl::DeadlineExceededError(timeout_error);
  }
  return started.get();
}

}  // namespace telestra::bench
