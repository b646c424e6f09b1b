// SofiaSipStack as an FdLoop (backend/fd_loop.h): the SIP thread waits for
// other parts' descriptors too (the native port's clients).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "backend/sip/sofia_sip_stack.h"
#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

// The stack needs a media engine; nothing here opens a call.
class NoMedia : public MediaEngine {
 public:
  absl::StatusOr<int> Open(int64_t, const MediaOptions&) override {
    return absl::ResourceExhaustedError("No RTP port available");
  }
  void Update(int64_t, const MediaParams&) override {}
  void Close(int64_t) override {}
  std::optional<MediaStats> Stats(int64_t) const override { return std::nullopt; }
  void SetTimeoutHandler(std::function<void(int64_t)>) override {}
  const std::string& local_address() const override { return address_; }
  size_t open_calls() const override { return 0; }

 private:
  std::string address_ = "127.0.0.1";
};

class NoListener : public SipStackListener {
 public:
  void OnRegistration(const std::string&, uint64_t, int, const std::string&, bool) override {}
  int64_t OnIncomingCall(const std::string&, const std::string&, const std::string&) override {
    return -1;
  }
  void OnCallRinging(int64_t, int) override {}
  void OnCallEstablished(int64_t) override {}
  void OnCallHold(int64_t, bool, bool) override {}
  void OnHoldResult(int64_t, bool, int, const std::string&) override {}
  void OnCallEnded(int64_t, int, const std::string&) override {}
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

class SofiaFdLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SipConfig config;
    config.port = 0;
    stack_ = std::make_unique<SofiaSipStack>(config, RtpConfig(), &media_);
    ASSERT_TRUE(stack_->Start(&listener_).ok());
    ASSERT_EQ(pipe2(pipe_, O_NONBLOCK | O_CLOEXEC), 0);
  }
  void TearDown() override {
    stack_.reset();
    close(pipe_[0]);
    close(pipe_[1]);
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

  NoMedia media_;
  NoListener listener_;
  std::unique_ptr<SofiaSipStack> stack_;
  int pipe_[2] = {-1, -1};
};

TEST_F(SofiaFdLoopTest, CallsTheWatchOnTheSipThreadEachTimeItIsReadable) {
  Probe probe;
  FdLoop::WatchId id = stack_->Watch(pipe_[0], Reader(&probe, true));
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
  stack_->Unwatch(id);
  EXPECT_TRUE(probe.WaitDestroyed());
  Poke();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(probe.Calls(), 2) << "called after Unwatch";
}

TEST_F(SofiaFdLoopTest, AWatchThatReturnsFalseEndsAtOnce) {
  Probe probe;
  FdLoop::WatchId id = stack_->Watch(pipe_[0], Reader(&probe, false));
  ASSERT_NE(id, 0u);
  Poke();
  ASSERT_TRUE(probe.WaitFor(1));
  EXPECT_TRUE(probe.WaitDestroyed());
  Poke();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(probe.Calls(), 1);
  stack_->Unwatch(id);  // already ended: ignored
  stack_->Unwatch(0);
}

TEST_F(SofiaFdLoopTest, WatchesOfOneDescriptorEndIndependently) {
  // A descriptor's number comes back after close: the watch of the new one
  // must not be ended by a late Unwatch of the old (ids, not descriptors).
  Probe first, second;
  FdLoop::WatchId a = stack_->Watch(pipe_[0], Reader(&first, false));
  Poke();
  ASSERT_TRUE(first.WaitDestroyed());
  FdLoop::WatchId b = stack_->Watch(pipe_[0], Reader(&second, true));
  ASSERT_NE(a, b);
  stack_->Unwatch(a);
  Poke();
  EXPECT_TRUE(second.WaitFor(1));
  stack_->Unwatch(b);
  EXPECT_TRUE(second.WaitDestroyed());
}

TEST_F(SofiaFdLoopTest, ShutdownDestroysTheWatchesAndRefusesNewOnes) {
  Probe probe;
  ASSERT_NE(stack_->Watch(pipe_[0], Reader(&probe, true)), 0u);
  Poke();
  ASSERT_TRUE(probe.WaitFor(1));
  stack_->Shutdown(absl::Seconds(1));
  {
    absl::MutexLock lock(&probe.mu);
    EXPECT_TRUE(probe.destroyed) << "the watch outlived the SIP thread";
  }
  Probe late;
  EXPECT_EQ(stack_->Watch(pipe_[0], Reader(&late, true)), 0u);
  EXPECT_TRUE(late.WaitDestroyed());
}

}  // namespace
}  // namespace telestra::backend
