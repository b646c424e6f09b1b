#include "backend/call_audio_tap.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

using Direction = CallAudioTap::Direction;

// A frame whose every sample is `value`.
std::vector<int16_t> Frames(int count, int16_t value) {
  return std::vector<int16_t>(static_cast<size_t>(count) * kFrameSamples, value);
}

std::vector<int16_t> FrameOf(int16_t value) { return Frames(1, value); }

TEST(CallAudioTapTest, HeardFramesComeOutInOrderNumberedFromZero) {
  CallAudioTap tap(Direction::kListen);
  for (int16_t v = 1; v <= 3; ++v) tap.OnHeard(FrameOf(v).data());
  CallAudioTap::Heard heard;
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(tap.TakeHeard(&heard));
    EXPECT_EQ(heard.sequence, i);
    EXPECT_EQ(heard.pcm[0], static_cast<int16_t>(i + 1));
    EXPECT_EQ(heard.pcm[kFrameSamples - 1], static_cast<int16_t>(i + 1));
  }
  EXPECT_FALSE(tap.TakeHeard(&heard));
  EXPECT_EQ(tap.counters().frames_heard, 3u);
}

TEST(CallAudioTapTest, ASlowReaderLosesTheOldestFramesCountedAndSeesTheGap) {
  CallAudioTap tap(Direction::kListen);
  const int extra = 7;
  for (size_t i = 0; i < CallAudioTap::kHeardCapacity + extra; ++i) {
    tap.OnHeard(FrameOf(static_cast<int16_t>(i)).data());
  }
  EXPECT_EQ(tap.counters().frames_dropped, static_cast<uint64_t>(extra));
  CallAudioTap::Heard heard;
  ASSERT_TRUE(tap.TakeHeard(&heard));
  EXPECT_EQ(heard.sequence, static_cast<uint32_t>(extra));  // 0..6 were dropped
  EXPECT_EQ(heard.pcm[0], extra);
}

TEST(CallAudioTapTest, WakesOnlyWhenTheApplicationFoundNothingToTake) {
  CallAudioTap tap(Direction::kListen);
  EXPECT_TRUE(tap.OnAttached("PCMA"));
  EXPECT_EQ(tap.codec(), "PCMA");
  EXPECT_EQ(tap.state(), CallAudioTap::State::kAttached);
  // The application has not looked yet after the attach: no second wake.
  EXPECT_FALSE(tap.OnHeard(FrameOf(1).data()));
  CallAudioTap::Heard heard;
  ASSERT_TRUE(tap.TakeHeard(&heard));
  EXPECT_FALSE(tap.TakeHeard(&heard));  // found nothing: waits
  EXPECT_TRUE(tap.OnHeard(FrameOf(2).data()));
  EXPECT_FALSE(tap.OnHeard(FrameOf(3).data()));  // already woken
}

TEST(CallAudioTapTest, SpeakQueuesWholeFramesUpToTheBoundAndAsksForMoreWhenHalfIsPlayed) {
  CallAudioTap tap(Direction::kSpeak);
  const int offered = static_cast<int>(CallAudioTap::kSpokenCapacity) + 10;
  std::vector<int16_t> audio = Frames(offered, 5);
  size_t taken = tap.Speak(audio);
  EXPECT_EQ(taken, CallAudioTap::kSpokenCapacity * kFrameSamples);
  EXPECT_EQ(tap.spoken_queued(), CallAudioTap::kSpokenCapacity);

  int16_t frame[kFrameSamples] = {};
  bool wake = false;
  size_t played = 0;
  bool woken = false;
  while (tap.TakeSpoken(frame, &wake)) {
    ++played;
    EXPECT_EQ(frame[0], 5);
    if (wake) {
      woken = true;
      EXPECT_EQ(tap.spoken_queued(), CallAudioTap::kSpokenCapacity / 2);
      break;
    }
  }
  EXPECT_TRUE(woken);
  EXPECT_EQ(played, CallAudioTap::kSpokenCapacity / 2);
  EXPECT_EQ(tap.counters().frames_spoken, played);
}

TEST(CallAudioTapTest, NothingToSayIsAnUnderrunAndLeavesTheFrameAlone) {
  CallAudioTap tap(Direction::kBoth);
  int16_t frame[kFrameSamples];
  frame[0] = 1234;
  bool wake = true;
  EXPECT_FALSE(tap.TakeSpoken(frame, &wake));
  EXPECT_FALSE(wake);
  EXPECT_EQ(frame[0], 1234);
  EXPECT_EQ(tap.counters().underruns, 1u);
}

TEST(CallAudioTapTest, AMarkComesBackOnceTheAudioBeforeItWasPlayed) {
  CallAudioTap tap(Direction::kSpeak);
  tap.Speak(Frames(2, 1));
  tap.Mark("first");
  tap.Speak(Frames(1, 2));
  tap.Mark("second");
  CallAudioTap::Notice notice;
  EXPECT_FALSE(tap.TakeNotice(&notice));

  int16_t frame[kFrameSamples];
  bool wake = false;
  ASSERT_TRUE(tap.TakeSpoken(frame, &wake));
  EXPECT_FALSE(tap.TakeNotice(&notice));
  ASSERT_TRUE(tap.TakeSpoken(frame, &wake));
  EXPECT_TRUE(wake);  // the application waits (it found no notice)
  ASSERT_TRUE(tap.TakeNotice(&notice));
  EXPECT_EQ(notice.kind, CallAudioTap::Notice::Kind::kMark);
  EXPECT_EQ(notice.mark, "first");
  EXPECT_FALSE(tap.TakeNotice(&notice));
  ASSERT_TRUE(tap.TakeSpoken(frame, &wake));
  ASSERT_TRUE(tap.TakeNotice(&notice));
  EXPECT_EQ(notice.mark, "second");
}

TEST(CallAudioTapTest, AMarkWithNothingQueuedIsDueAtOnce) {
  CallAudioTap tap(Direction::kBoth);
  tap.Mark("now");
  CallAudioTap::Notice notice;
  ASSERT_TRUE(tap.TakeNotice(&notice));
  EXPECT_EQ(notice.mark, "now");
}

TEST(CallAudioTapTest, ClearDropsTheQueuedAudioAndReturnsTheWaitingMarksInOrder) {
  CallAudioTap tap(Direction::kSpeak);
  tap.Speak(Frames(3, 1));
  tap.Mark("a");
  tap.Speak(Frames(3, 1));
  tap.Mark("b");
  tap.Clear();
  EXPECT_EQ(tap.spoken_queued(), 0u);
  CallAudioTap::Notice notice;
  ASSERT_TRUE(tap.TakeNotice(&notice));
  EXPECT_EQ(notice.mark, "a");
  ASSERT_TRUE(tap.TakeNotice(&notice));
  EXPECT_EQ(notice.mark, "b");
  int16_t frame[kFrameSamples];
  bool wake = false;
  EXPECT_FALSE(tap.TakeSpoken(frame, &wake));
  // New audio after the clear plays normally.
  tap.Speak(Frames(1, 9));
  ASSERT_TRUE(tap.TakeSpoken(frame, &wake));
  EXPECT_EQ(frame[0], 9);
}

TEST(CallAudioTapTest, DtmfIsANoticeForListeners) {
  CallAudioTap tap(Direction::kListen);
  CallAudioTap::Notice notice;
  EXPECT_FALSE(tap.TakeNotice(&notice));
  EXPECT_TRUE(tap.OnDtmf('5', 120));
  ASSERT_TRUE(tap.TakeNotice(&notice));
  EXPECT_EQ(notice.kind, CallAudioTap::Notice::Kind::kDtmf);
  EXPECT_EQ(notice.digit, '5');
  EXPECT_EQ(notice.duration_ms, 120);
  CallAudioTap speaker(Direction::kSpeak);
  EXPECT_FALSE(speaker.OnDtmf('5', 120));
  EXPECT_FALSE(speaker.TakeNotice(&notice));
}

TEST(CallAudioTapTest, NoticesBeyondTheBoundDropTheOldestCounted) {
  CallAudioTap tap(Direction::kListen);
  for (size_t i = 0; i < CallAudioTap::kNoticeCapacity + 3; ++i) {
    tap.OnDtmf(static_cast<char>('0' + i % 10), static_cast<int>(i));
  }
  EXPECT_EQ(tap.counters().notices_dropped, 3u);
  CallAudioTap::Notice notice;
  ASSERT_TRUE(tap.TakeNotice(&notice));
  EXPECT_EQ(notice.duration_ms, 3);
  size_t rest = 1;
  while (tap.TakeNotice(&notice)) ++rest;
  EXPECT_EQ(rest, CallAudioTap::kNoticeCapacity);
}

TEST(CallAudioTapTest, DirectionsOnlyCarryTheirOwnAudio) {
  CallAudioTap listener(Direction::kListen);
  EXPECT_EQ(listener.Speak(Frames(1, 1)), 0u);
  CallAudioTap speaker(Direction::kSpeak);
  EXPECT_FALSE(speaker.OnHeard(FrameOf(1).data()));
  CallAudioTap::Heard heard;
  EXPECT_FALSE(speaker.TakeHeard(&heard));
}

TEST(CallAudioTapTest, TheFirstStopReasonWinsAndNothingIsTakenAfterIt) {
  CallAudioTap tap(Direction::kBoth);
  tap.Speak(Frames(2, 1));
  EXPECT_TRUE(tap.OnStopped("Call ended"));
  EXPECT_FALSE(tap.OnStopped("Gateway shutting down"));
  EXPECT_TRUE(tap.stopped());
  EXPECT_EQ(tap.stop_reason(), "Call ended");
  EXPECT_EQ(tap.Speak(Frames(1, 1)), 0u);
  EXPECT_FALSE(tap.OnHeard(FrameOf(1).data()));
  int16_t frame[kFrameSamples];
  bool wake = false;
  EXPECT_FALSE(tap.TakeSpoken(frame, &wake));
  EXPECT_FALSE(tap.OnAttached("PCMU"));
}

TEST(CallAudioTapTest, NoWakeupRunsAfterDetachReturns) {
  auto tap = std::make_shared<CallAudioTap>(CallAudioTap::Direction::kListen);
  std::atomic<int> wakeups{0};
  absl::Notification inside;
  absl::Notification release;
  tap->SetWakeup([&] {
    if (wakeups.fetch_add(1) == 0) {
      inside.Notify();
      release.WaitForNotificationWithTimeout(absl::Seconds(5));
    }
  });
  std::thread media([&] { tap->RunWakeup(); });
  ASSERT_TRUE(inside.WaitForNotificationWithTimeout(absl::Seconds(5)));
  std::atomic<bool> detached{false};
  std::thread application([&] {
    tap->Detach("Client went away");
    detached = true;
  });
  // Detach waits for the running wakeup.
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(detached.load());
  release.Notify();
  application.join();
  media.join();
  EXPECT_TRUE(detached.load());
  tap->RunWakeup();
  EXPECT_EQ(wakeups.load(), 1);
  EXPECT_EQ(tap->stop_reason(), "Client went away");
}

}  // namespace
}  // namespace telestra::backend

namespace telestra::backend {
namespace {

// Plays `ticks` ticks of the media thread; returns how many took a frame.
int Ticks(CallAudioTap& tap, int ticks) {
  int taken = 0;
  int16_t frame[kFrameSamples];
  bool wake = false;
  for (int i = 0; i < ticks; ++i) taken += tap.TakeSpoken(frame, &wake) ? 1 : 0;
  return taken;
}

TEST(CallAudioTapCatchUpTest, ALateFrameIsCaughtUpBySkippingOneWhenTwoWait) {
  CallAudioTap tap(CallAudioTap::Direction::kSpeak);
  // Talking in real time: a frame per tick.
  for (int i = 0; i < 5; ++i) {
    tap.Speak(Frames(1, 1));
    EXPECT_EQ(Ticks(tap, 1), 1);
  }
  EXPECT_EQ(Ticks(tap, 1), 0);  // a frame is late: an underrun
  tap.Speak(Frames(2, 2));      // it arrives with the next one
  EXPECT_EQ(Ticks(tap, 1), 1);  // the older is skipped, the newer plays
  EXPECT_EQ(tap.spoken_queued(), 0u) << "back in step";
  CallAudioTap::Counters counters = tap.counters();
  EXPECT_EQ(counters.frames_skipped, 1u);
  EXPECT_EQ(counters.underruns, 1u);
}

TEST(CallAudioTapCatchUpTest, APromptSentAheadAfterAPauseIsNeverSkipped) {
  CallAudioTap tap(CallAudioTap::Direction::kSpeak);
  EXPECT_EQ(Ticks(tap, 20), 0);  // nothing to say yet
  tap.Speak(Frames(100, 3));
  EXPECT_EQ(Ticks(tap, 100), 100);
  tap.Speak(Frames(1, 3));
  EXPECT_EQ(Ticks(tap, 1), 1);
  EXPECT_EQ(Ticks(tap, CallAudioTap::kPauseTicks), 0);  // the talkspurt ends: a pause
  tap.Speak(Frames(50, 4));
  EXPECT_EQ(Ticks(tap, 50), 50);
  EXPECT_EQ(tap.counters().frames_skipped, 0u);
}

TEST(CallAudioTapCatchUpTest, MarksBeyondTheBoundAreRefused) {
  CallAudioTap tap(CallAudioTap::Direction::kSpeak);
  tap.Speak(Frames(1, 1));
  for (size_t i = 0; i < CallAudioTap::kMaxPendingMarks; ++i) {
    ASSERT_TRUE(tap.Mark("m"));
  }
  EXPECT_FALSE(tap.Mark("one too many"));
  EXPECT_EQ(Ticks(tap, 1), 1);
  EXPECT_TRUE(tap.Mark("after"));
}

}  // namespace
}  // namespace telestra::backend

namespace telestra::backend {
namespace {

TEST(CallAudioTapCatchUpTest, AudioSentAheadAfterAnUnderrunIsNotSkipped) {
  CallAudioTap tap(CallAudioTap::Direction::kSpeak);
  tap.Speak(Frames(3, 1));
  EXPECT_EQ(Ticks(tap, 3), 3);
  EXPECT_EQ(Ticks(tap, 1), 0);  // the client fell behind once
  tap.Speak(Frames(50, 2));     // and then sends well ahead
  EXPECT_EQ(Ticks(tap, 50), 50);
  EXPECT_EQ(tap.counters().frames_skipped, 0u);
}

}  // namespace
}  // namespace telestra::backend
