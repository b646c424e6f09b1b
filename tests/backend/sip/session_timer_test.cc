#include "backend/sip/session_timer.h"

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(SessionTimerTest, OurInvitesAnswerDecidesWhoRefreshes) {
  SessionTimer timer = TimerFromAnswer(true, 1800, "uac");
  EXPECT_EQ(timer.interval, 1800);
  EXPECT_TRUE(timer.we_refresh);
  EXPECT_TRUE(TimerFromAnswer(true, 90, "").we_refresh) << "no refresher: the UAC";
  EXPECT_FALSE(TimerFromAnswer(true, 90, "UAS").we_refresh);
  EXPECT_EQ(TimerFromAnswer(false, 0, "").interval, 0) << "no Session-Expires: no timer";
}

TEST(SessionTimerTest, AFarEndsRequestIsAnsweredWithItsIntervalOrOurs) {
  // Their interval and refresher.
  TimerAnswer answer = AnswerTimer(1800, 90, true, 600, "uac", true);
  EXPECT_FALSE(answer.too_small);
  EXPECT_EQ(answer.timer.interval, 600);
  EXPECT_FALSE(answer.timer.we_refresh);
  EXPECT_EQ(answer.header, "600;refresher=uac");
  EXPECT_TRUE(answer.require_timer);
  // No refresher named: the UAC if it supports timers, else us.
  EXPECT_EQ(AnswerTimer(1800, 90, true, 600, "", true).header, "600;refresher=uac");
  answer = AnswerTimer(1800, 90, true, 600, "", false);
  EXPECT_EQ(answer.header, "600;refresher=uas");
  EXPECT_TRUE(answer.timer.we_refresh);
  EXPECT_FALSE(answer.require_timer);
  // No Session-Expires: ours, and we refresh.
  answer = AnswerTimer(1800, 90, false, 0, "", false);
  EXPECT_EQ(answer.timer.interval, 1800);
  EXPECT_TRUE(answer.timer.we_refresh);
  EXPECT_EQ(answer.header, "1800;refresher=uas");
  // Below our Min-SE: 422.
  answer = AnswerTimer(1800, 90, true, 60, "uac", true);
  EXPECT_TRUE(answer.too_small);
  EXPECT_EQ(answer.min_se, 90);
  // Timers off: nothing.
  answer = AnswerTimer(0, 90, true, 60, "uac", true);
  EXPECT_FALSE(answer.too_small);
  EXPECT_EQ(answer.timer.interval, 0);
  EXPECT_EQ(answer.header, "");
}

TEST(SessionTimerTest, RefreshAtHalfExpireBeforeTheEnd) {
  EXPECT_EQ(RefreshAfterMs(1800), 900000);
  EXPECT_EQ(ExpireAfterMs(1800), 1800000 - 32000);
  EXPECT_EQ(ExpireAfterMs(90), 60000);  // 90 - 90/3
  EXPECT_EQ(ExpireAfterMs(3), 2000);
}

}  // namespace
}  // namespace telestra::backend
