#pragma once

// The SIP thread: the one thread of the service that touches sofia-sip.
// Private to backend/sip/ (it exposes sofia's su_root).

#include <sofia-sip/su_wait.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/fd_loop.h"
#include "backend/thread_owner.h"

namespace telestra::backend {

// A thread running sofia's event loop (su_root) and what other threads hand
// it:
//   - a task queue: Post from any thread; the first task of a burst writes
//     an eventfd, the ones after it only join the queue;
//   - descriptors of other parts of the service (FdLoop: the native port's
//     clients are read here by default);
//   - deferred work: sofia objects must not be destroyed inside their own
//     callbacks, so Defer runs a task once the current callback returned;
//   - timers (StartTimer);
//   - a short poll after a request went out (AwaitAnswer): a nearby proxy
//     answers within about a millisecond, and polling for that long costs
//     less than sleeping and being woken (docs/benchmarks.md).
// What runs on it (the SIP user agent) is SofiaSipStack::Impl.
//
// Thread: Start, Post, CloseQueue, Join, IsCurrent, accepting, Watch and
// Unwatch from any thread; every other method on the SIP thread only
// (checked: owner()).
class SipThread : public FdLoop {
 public:
  // After sending a request the loop polls this long for its answer instead
  // of sleeping.
  static constexpr absl::Duration kAnswerPoll = absl::Microseconds(1000);

  SipThread() = default;
  // Stops the loop if it still runs and waits for the thread.
  ~SipThread() override;
  SipThread(const SipThread&) = delete;
  SipThread& operator=(const SipThread&) = delete;

  // Starts the thread (named `name` for top -H, perf and gdb) and its
  // su_root, runs `setup` on it, and returns setup's status once it has
  // run; on an error the thread has ended. When the loop stops (Stop),
  // the queue is closed (what it holds is dropped), `teardown` runs on the
  // thread, then the watches end, the deferred work runs and the su_root
  // is destroyed.
  // `nice`: the thread's nice value (0: the process's priority); one it
  // may not take (a negative one without CAP_SYS_NICE) is logged and the
  // thread runs at the process's priority.
  absl::Status Start(const std::string& name, std::function<absl::Status(su_root_t*)> setup,
                     std::function<void()> teardown, int nice = 0);

  // Runs `task` on the SIP thread, after the tasks posted before it; false
  // (and `task` is dropped) once the queue is closed.
  bool Post(std::function<void()> task);
  // Posts are refused from now on (Post returns false); what is queued
  // still runs.
  void CloseQueue();
  bool accepting() const;
  // Waits until the thread has ended (not from the SIP thread). Returns at
  // once when it never started or was joined already.
  void Join();
  // True on the SIP thread (in every build).
  bool IsCurrent() const { return owner_.IsCurrent(); }
  // The SIP thread, for TELESTRA_ASSERT_ON in the code that runs on it.
  const ThreadOwner& owner() const { return owner_; }

  // FdLoop: the SIP thread waits for `fd` too.
  WatchId Watch(int fd, std::function<bool()> on_readable) override;
  void Unwatch(WatchId id) override;

  // ---- SIP thread only.
  su_root_t* root() const { return root_; }
  // The loop ends once the current callback returns.
  void Stop();
  // Stop was called (or the destructor is stopping the thread).
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  // A request went out: poll for its answer for kAnswerPoll.
  void AwaitAnswer() { answer_poll_until_ = absl::Now() + kAnswerPoll; }
  // Runs `task` once the current callback has returned, before the loop
  // waits again.
  void Defer(std::function<void()> task);
  // Runs what Defer queued (also at the end of teardown).
  void RunDeferred();
  // A timer calling `callback(…, arg)` once, after `ms` (at least 1).
  su_timer_t* StartTimer(su_timer_f callback, void* arg, int64_t ms);
  // Destroys `timer` (if any) and clears it. Thread: the SIP thread.
  static void DestroyTimer(su_timer_t*& timer);

 private:
  struct FdWatch {
    SipThread* self = nullptr;
    WatchId id = 0;
    su_wait_t wait{};
    int index = 0;  // su_root's registration
    std::function<bool()> on_readable;
  };

  void Run(const std::string& name, int nice, const std::function<absl::Status(su_root_t*)>& setup,
           const std::function<void()>& teardown, std::promise<absl::Status>& started);
  // su_root_run's loop, polling instead of sleeping until
  // answer_poll_until_; ends once stopping_ is set.
  void Loop();
  void EndWatch(WatchId id);
  static int OnWake(su_root_magic_t* magic, su_wait_t*, su_wakeup_arg_t*);
  static int OnFdReadable(su_root_magic_t*, su_wait_t*, su_wakeup_arg_t* arg);
  static void OnReap(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg);

  std::thread thread_;

  // The task queue from other threads.
  // Lock order: a leaf. Held only to push or swap the queue and its flags;
  // nothing is called with it held (no task, no sofia call, no write to the
  // eventfd).
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  // The eventfd was written and OnWake has not yet taken the queue.
  bool wake_pending_ ABSL_GUARDED_BY(mu_) = false;
  int wake_fd_ = -1;

  // SIP thread only.
  su_root_t* root_ = nullptr;
  su_wait_t wait_{};
  su_timer_t* reaper_ = nullptr;  // runs deferred_
  std::vector<std::function<void()>> deferred_;
  std::map<WatchId, std::unique_ptr<FdWatch>> watches_;
  absl::Time answer_poll_until_ = absl::InfinitePast();
  // Set on the SIP thread by Stop, from elsewhere by the destructor.
  std::atomic<bool> stopping_{false};
  std::atomic<WatchId> next_watch_id_{1};
  ThreadOwner owner_;
};

}  // namespace telestra::backend
