// The SIP thread (backend/sip/sip_thread.h): its task queue, the
// descriptors it waits for on behalf of others (FdLoop), deferred work,
// timers, and its stop.
#include "backend/sip/sip_thread.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

// A one-shot signal between threads, on absl::Mutex (which the TSan build
// teaches TSan about; Signal synchronizes inside Abseil's
// uninstrumented library, so TSan would not see it).
class Signal {
 public:
  void Notify() {
    absl::MutexLock lock(&mu_);
    set_ = true;
  }
  bool WaitForNotificationWithTimeout(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&set_), timeout);
  }
  void WaitForNotification() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&set_));
  }

 private:
  absl::Mutex mu_;
  bool set_ ABSL_GUARDED_BY(mu_) = false;
};

// What a watch saw: how often it was called, on which thread, and whether
// its callback has been destroyed.
struct Probe {
  absl::Mutex mu;
  int calls ABSL_GUARDED_BY(mu) = 0;
  std::thread::id thread ABSL_GUARDED_BY(mu);
  bool destroyed ABSL_GUARDED_BY(mu) = false;

  bool WaitFor(int want) {
    absl::MutexLock lock(&mu);
    auto reached = [this, want]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return calls >= want; };
    return mu.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(5));
  }
  bool WaitDestroyed() {
    absl::MutexLock lock(&mu);
    return mu.AwaitWithTimeout(absl::Condition(&destroyed), absl::Seconds(5));
  }
  int Calls() {
    absl::MutexLock lock(&mu);
    return calls;
  }
};

// Marks the probe when the callback holding it is destroyed.
struct DestroyMark {
  explicit DestroyMark(Probe* p) : probe(p) {}
  ~DestroyMark() {
    absl::MutexLock lock(&probe->mu);
    probe->destroyed = true;
  }
  Probe* probe;
};

class SipThreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pipe2(pipe_, O_NONBLOCK | O_CLOEXEC), 0);
    ASSERT_TRUE(StartThread().ok());
  }
  void TearDown() override {
    thread_.reset();
    close(pipe_[0]);
    close(pipe_[1]);
  }

  absl::Status StartThread() {
    thread_ = std::make_unique<SipThread>();
    SipThread* thread = thread_.get();  // thread_ is null while reset() destroys it
    return thread->Start(
        "test-sip",
        [this, thread](su_root_t* root) {
          setup_root_ = root;
          setup_on_thread_ = thread->IsCurrent();
          return absl::OkStatus();
        },
        [this, thread] { torn_down_on_thread_ = thread->IsCurrent(); });
  }

  // Runs `task` on the SIP thread and waits for it.
  void RunOnThread(std::function<void()> task) {
    Signal done;
    ASSERT_TRUE(thread_->Post([&] {
      task();
      done.Notify();
    }));
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  }

  // Stops the loop from the SIP thread and waits for the thread's end.
  void StopAndJoin() {
    thread_->Post([this] { thread_->Stop(); });
    thread_->Join();
  }

  // A callback that reads what the pipe holds, counts the call, and keeps
  // watching while `keep` says so.
  std::function<bool()> Reader(Probe* probe, bool keep) {
    auto mark = std::make_shared<DestroyMark>(probe);
    int fd = pipe_[0];
    return [probe, keep, fd, mark] {
      char buffer[64];
      while (read(fd, buffer, sizeof(buffer)) > 0) {
      }
      absl::MutexLock lock(&probe->mu);
      ++probe->calls;
      probe->thread = std::this_thread::get_id();
      return keep;
    };
  }

  void Poke() { ASSERT_EQ(write(pipe_[1], "x", 1), 1); }

  std::unique_ptr<SipThread> thread_;
  int pipe_[2] = {-1, -1};
  su_root_t* setup_root_ = nullptr;
  std::atomic<bool> setup_on_thread_{false};
  std::atomic<bool> torn_down_on_thread_{false};
};

TEST_F(SipThreadTest, SetupRunsOnTheThreadWithItsRootAndTeardownRunsThereAtTheEnd) {
  EXPECT_TRUE(setup_on_thread_);
  EXPECT_NE(setup_root_, nullptr);
  EXPECT_FALSE(thread_->IsCurrent());
  su_root_t* root = nullptr;
  RunOnThread([&] { root = thread_->root(); });
  EXPECT_EQ(root, setup_root_);
  StopAndJoin();
  EXPECT_TRUE(torn_down_on_thread_);
}

TEST_F(SipThreadTest, AFailedSetupIsWhatStartReturns) {
  thread_.reset();
  SipThread failing;
  bool torn_down = false;
  absl::Status status = failing.Start(
      "test-sip", [](su_root_t*) { return absl::UnavailableError("port in use"); },
      [&] { torn_down = true; });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "port in use");
  EXPECT_FALSE(torn_down) << "teardown of what was never set up";
  EXPECT_FALSE(failing.Post([] {})) << "a thread that never ran takes no tasks";
}

TEST_F(SipThreadTest, PostedTasksRunOnTheThreadInTheOrderTheyWerePosted) {
  // Four threads post 500 tasks each at once; each one's tasks run in order.
  constexpr int kThreads = 4, kTasks = 500;
  std::vector<std::vector<int>> seen(kThreads);
  std::atomic<int> off_thread{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kTasks; ++i) {
        ASSERT_TRUE(thread_->Post([&, t, i] {
          if (!thread_->IsCurrent()) off_thread++;
          seen[t].push_back(i);  // only the SIP thread touches seen
        }));
      }
    });
  }
  for (std::thread& poster : posters) poster.join();
  RunOnThread([] {});  // everything posted before has run
  EXPECT_EQ(off_thread.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<size_t>(kTasks));
    for (int i = 0; i < kTasks; ++i) ASSERT_EQ(seen[t][i], i) << "poster " << t;
  }
}

TEST_F(SipThreadTest, ATaskPostedFromTheThreadRunsAfterTheCurrentOne) {
  std::vector<std::string> order;
  Signal done;
  thread_->Post([&] {
    thread_->Post([&] {
      order.push_back("inner");
      done.Notify();
    });
    order.push_back("outer");
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(order, (std::vector<std::string>{"outer", "inner"}));
}

TEST_F(SipThreadTest, DeferredWorkRunsAfterTheCallbackThatDeferredIt) {
  std::vector<std::string> order;
  Signal done;
  thread_->Post([&] {
    thread_->Defer([&] {
      order.push_back("deferred");
      done.Notify();
    });
    order.push_back("callback");
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(order, (std::vector<std::string>{"callback", "deferred"}));
}

TEST_F(SipThreadTest, DeferredWorkLeftAtTheStopStillRuns) {
  std::atomic<bool> ran{false};
  thread_->Post([&] {
    thread_->Defer([&] { ran = true; });
    thread_->Stop();
  });
  thread_->Join();
  EXPECT_TRUE(ran);
}

struct TimerProbe {
  Signal fired;
  absl::Time at;
  bool on_thread = false;
  SipThread* thread = nullptr;
  su_timer_t* timer = nullptr;
};

void OnTimer(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* probe = static_cast<TimerProbe*>(static_cast<void*>(arg));
  probe->at = absl::Now();
  probe->on_thread = probe->thread->IsCurrent();
  SipThread::DestroyTimer(probe->timer);
  probe->fired.Notify();
}

TEST_F(SipThreadTest, ATimerFiresOnTheThreadAfterItsDelay) {
  TimerProbe probe;
  probe.thread = thread_.get();
  const absl::Time start = absl::Now();
  RunOnThread([&] { probe.timer = thread_->StartTimer(&OnTimer, &probe, 50); });
  ASSERT_TRUE(probe.fired.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_GE(probe.at - start, absl::Milliseconds(45));
  EXPECT_TRUE(probe.on_thread);
  EXPECT_EQ(probe.timer, nullptr);
}

TEST_F(SipThreadTest, AClosedQueueRefusesTasksButRunsWhatItHolds) {
  std::atomic<int> ran{0};
  Signal release;
  // Hold the thread so that the next tasks wait in the queue.
  thread_->Post([&] { release.WaitForNotification(); });
  ASSERT_TRUE(thread_->Post([&] { ran++; }));
  thread_->CloseQueue();
  EXPECT_FALSE(thread_->accepting());
  EXPECT_FALSE(thread_->Post([&] { ran += 100; }));
  release.Notify();
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (ran.load() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(ran.load(), 1) << "the queued task runs, the refused one never";
  thread_.reset();  // a closed queue cannot carry Stop: the destructor stops it
}

TEST_F(SipThreadTest, TheDestructorStopsARunningThread) {
  std::atomic<bool> torn_down{false};
  auto thread = std::make_unique<SipThread>();
  ASSERT_TRUE(
      thread
          ->Start(
              "test-sip", [](su_root_t*) { return absl::OkStatus(); }, [&] { torn_down = true; })
          .ok());
  thread.reset();  // would hang if the loop did not notice
  EXPECT_TRUE(torn_down);
}

TEST_F(SipThreadTest, TheThreadTakesItsNiceValueAndOnlyIt) {
  thread_.reset();
  SipThread nice;
  std::atomic<int> seen{-100};
  ASSERT_TRUE(nice.Start(
                      "test-sip",
                      [&](su_root_t*) {
                        seen = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
                        return absl::OkStatus();
                      },
                      [] {}, /*nice=*/getpriority(PRIO_PROCESS, 0) + 3)
                  .ok());
  EXPECT_EQ(seen.load(), getpriority(PRIO_PROCESS, 0) + 3);
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), getpriority(PRIO_PROCESS, 0))
      << "the starting thread changed too";
  nice.Post([&] { nice.Stop(); });
  nice.Join();
}

// ---- FdLoop

TEST_F(SipThreadTest, CallsTheWatchOnTheThreadEachTimeItIsReadable) {
  Probe probe;
  FdLoop::WatchId id = thread_->Watch(pipe_[0], Reader(&probe, true));
  ASSERT_NE(id, 0u);
  Poke();
  ASSERT_TRUE(probe.WaitFor(1));
  Poke();
  ASSERT_TRUE(probe.WaitFor(2));
  {
    absl::MutexLock lock(&probe.mu);
    EXPECT_NE(probe.thread, std::this_thread::get_id());
    EXPECT_FALSE(probe.destroyed);
  }
  // Not readable: not called.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(probe.Calls(), 2);
  thread_->Unwatch(id);
  EXPECT_TRUE(probe.WaitDestroyed());
  Poke();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(probe.Calls(), 2) << "called after Unwatch";
}

TEST_F(SipThreadTest, AWatchThatReturnsFalseEndsAtOnce) {
  Probe probe;
  FdLoop::WatchId id = thread_->Watch(pipe_[0], Reader(&probe, false));
  ASSERT_NE(id, 0u);
  Poke();
  ASSERT_TRUE(probe.WaitFor(1));
  EXPECT_TRUE(probe.WaitDestroyed());
  Poke();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(probe.Calls(), 1);
  thread_->Unwatch(id);  // already ended: ignored
  thread_->Unwatch(0);
}

TEST_F(SipThreadTest, WatchesOfOneDescriptorEndIndependently) {
  // A descriptor's number comes back after close: the watch of the new one
  // must not be ended by a late Unwatch of the old (ids, not descriptors).
  Probe first, second;
  FdLoop::WatchId a = thread_->Watch(pipe_[0], Reader(&first, false));
  Poke();
  ASSERT_TRUE(first.WaitDestroyed());
  FdLoop::WatchId b = thread_->Watch(pipe_[0], Reader(&second, true));
  ASSERT_NE(a, b);
  thread_->Unwatch(a);
  Poke();
  EXPECT_TRUE(second.WaitFor(1));
  thread_->Unwatch(b);
  EXPECT_TRUE(second.WaitDestroyed());
}

TEST_F(SipThreadTest, StoppingDestroysTheWatchesAndRefusesNewOnes) {
  Probe probe;
  ASSERT_NE(thread_->Watch(pipe_[0], Reader(&probe, true)), 0u);
  Poke();
  ASSERT_TRUE(probe.WaitFor(1));
  StopAndJoin();
  {
    absl::MutexLock lock(&probe.mu);
    EXPECT_TRUE(probe.destroyed) << "the watch outlived the SIP thread";
  }
  Probe late;
  EXPECT_EQ(thread_->Watch(pipe_[0], Reader(&late, true)), 0u);
  EXPECT_TRUE(late.WaitDestroyed());
}

}  // namespace
}  // namespace telestra::backend
