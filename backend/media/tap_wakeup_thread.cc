#include "backend/media/tap_wakeup_thread.h"

#include <pthread.h>

#include <utility>

namespace telestra::backend {

TapWakeupThread::TapWakeupThread() : thread_([this] { Run(); }) {}

TapWakeupThread::~TapWakeupThread() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void TapWakeupThread::Post(std::vector<std::shared_ptr<CallAudioTap>>* taps) {
  if (taps->empty()) return;
  absl::MutexLock lock(&mu_);
  if (pending_.empty()) {
    pending_.swap(*taps);  // the usual case: no copy
  } else {
    for (std::shared_ptr<CallAudioTap>& tap : *taps) pending_.push_back(std::move(tap));
    taps->clear();
  }
}

void TapWakeupThread::Run() {
  pthread_setname_np(pthread_self(), "telestra-audio");
  std::vector<std::shared_ptr<CallAudioTap>> batch;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this] {
        mu_.AssertHeld();
        return stopping_ || !pending_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (pending_.empty()) return;  // stopping, nothing left
      batch.swap(pending_);
    }
    for (const std::shared_ptr<CallAudioTap>& tap : batch) tap->RunWakeup();
    batch.clear();  // releases the taps; the capacity goes back on the next swap
  }
}

}  // namespace telestra::backend
