#include "cli/interrupt.h"

#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <utility>

namespace telestra::cli {
namespace {

sigset_t WatchedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

InterruptWatcher::InterruptWatcher() {
  sigset_t set = WatchedSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this] { Watch(); });
}

InterruptWatcher::~InterruptWatcher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    callback_ = nullptr;
  }
  // Wakes the sigwait; stopping_ tells it that this is no interrupt.
  pthread_kill(thread_.native_handle(), SIGTERM);
  thread_.join();
}

void InterruptWatcher::Watch() {
  const sigset_t set = WatchedSignals();
  while (true) {
    int signal = 0;
    if (sigwait(&set, &signal) != 0) continue;
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    // A second Ctrl-C while the first one's clean end hangs: leave now.
    if (interrupted_) std::_Exit(128 + signal);
    interrupted_ = true;
    if (callback_) callback_();
  }
}

void InterruptWatcher::OnInterrupt(std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  callback_ = std::move(callback);
  if (interrupted_ && callback_) callback_();
}

bool InterruptWatcher::interrupted() const {
  absl::MutexLock lock(&mu_);
  return interrupted_;
}

}  // namespace telestra::cli
