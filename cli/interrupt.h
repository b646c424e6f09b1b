// Ctrl-C (SIGINT) and SIGTERM as a callback, for the commands that run
// until interrupted (events --follow, audio): the callback cancels the
// stream, the command ends cleanly and telestra exits 0.
#pragma once

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace telestra::cli {

// Blocks SIGINT and SIGTERM in the constructing thread (and so in every
// thread it starts later: construct it before the gRPC channel) and waits
// for them with sigwait on a thread of its own.
// A second signal while the first one's clean end is still under way exits
// at once (128 + the signal).
// Thread: construct and destroy on the main thread; OnInterrupt and
// interrupted from any. The callback runs on the watcher's thread with mu_
// held, so that once OnInterrupt(nullptr) returns it runs no more (what it
// touches may then be destroyed): it must be quick (TryCancel) and must not
// call the watcher.
class InterruptWatcher {
 public:
  InterruptWatcher();
  ~InterruptWatcher();
  InterruptWatcher(const InterruptWatcher&) = delete;
  InterruptWatcher& operator=(const InterruptWatcher&) = delete;

  // Runs `callback` at the first signal (at once if one came already).
  // Replaces the previous callback; an empty function clears it.
  void OnInterrupt(std::function<void()> callback);

  bool interrupted() const;

 private:
  void Watch();

  // Lock order: held while the callback runs (gRPC's TryCancel takes only
  // gRPC's own locks); nothing else is called under it.
  mutable absl::Mutex mu_;
  std::function<void()> callback_ ABSL_GUARDED_BY(mu_);
  bool interrupted_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace telestra::cli
