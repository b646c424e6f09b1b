#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "backend/call_audio_tap.h"

namespace telestra::backend {

// Runs call audio taps' wakeups on a thread of its own (`telestra-audio`),
// so that what a wakeup does (a gRPC CallAudio stream starts its write, which
// gRPC performs on the calling thread, TCP send included; a WebSocket
// session posts to its strand) never delays the media thread's ticks. The
// media thread hands over a tick's wakeups with one lock and one notify.
//
// Thread: Post from any thread; the wakeups run on this object's thread, in
// the order posted. The destructor runs what is pending, then joins.
class TapWakeupThread {
 public:
  TapWakeupThread();
  ~TapWakeupThread();
  TapWakeupThread(const TapWakeupThread&) = delete;
  TapWakeupThread& operator=(const TapWakeupThread&) = delete;

  // Moves the taps out of `taps` (left empty, its capacity kept) to be woken.
  void Post(std::vector<std::shared_ptr<CallAudioTap>>* taps);

 private:
  void Run();

  // Lock order: a leaf (the wakeups run with it released).
  absl::Mutex mu_;
  std::vector<std::shared_ptr<CallAudioTap>> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace telestra::backend
