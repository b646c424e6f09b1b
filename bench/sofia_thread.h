// One thread that runs one su_root, with work posted to it from other
// threads through an eventfd (the way the gateway's SIP thread is driven).
// For the bare sofia-sip benchmarks (bench/bare_sofia.h, bench/bare_nta.h).
#pragma once

#include <sofia-sip/su_wait.h>
#include <sys/types.h>

#include <deque>
#include <functional>
#include <future>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace telestra::bench {

class SofiaThread {
 public:
  // Starts the thread (named `name`, at `nice`): su_init, a root, then
  // `init(root)` on the thread before its loop runs; after the loop has
  // stopped (destructor), `fini()` on the thread. The root is destroyed
  // after it unless `fini` returns false (something still attached to it
  // could not be stopped: left to the process's exit).
  SofiaThread(std::string name, int nice, std::function<void(su_root_t*)> init,
              std::function<bool()> fini);
  // Stops the loop and joins the thread.
  ~SofiaThread();
  SofiaThread(const SofiaThread&) = delete;
  SofiaThread& operator=(const SofiaThread&) = delete;

  // Any thread: runs `task` on the sofia thread (in order).
  void Post(std::function<void()> task);

 private:
  void Run(const std::string& name, int nice, const std::function<void(su_root_t*)>& init,
           const std::function<bool()>& fini);
  static int OnWake(su_root_magic_t*, su_wait_t* w, su_wakeup_arg_t* arg);

  const int wake_fd_;
  su_root_t* root_ = nullptr;  // sofia thread
  su_wait_t wait_[1] = {SU_WAIT_INIT};
  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Waits up to 10 s for what a flow's `init` reports through `started`:
// its status, or DeadlineExceeded with `timeout_error`.
absl::Status AwaitStart(std::future<absl::Status>& started, const std::string& timeout_error);

}  // namespace telestra::bench
