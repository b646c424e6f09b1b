#include "backend/event_hub.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

class RecordingListener : public EventListener {
 public:
  void OnEvent(const EventPtr& event) override { events.push_back(event); }
  std::vector<EventPtr> events;
};

telestra::v1::Event StatusEvent(const std::string& account) {
  telestra::v1::Event event;
  event.mutable_status()->set_account(account);
  return event;
}

TEST(EventHubTest, ReplyReachesOnlyItsClient) {
  EventHub hub;
  RecordingListener a, b;
  ClientId id_a = hub.Attach(&a);
  hub.Attach(&b);
  hub.Reply(id_a, StatusEvent("account-1"));
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_TRUE(b.events.empty());
}

TEST(EventHubTest, BroadcastReachesEveryClient) {
  EventHub hub;
  RecordingListener a, b;
  hub.Attach(&a);
  hub.Attach(&b);
  hub.Broadcast(StatusEvent("account-1"));
  EXPECT_EQ(a.events.size(), 1u);
  EXPECT_EQ(b.events.size(), 1u);
  EXPECT_EQ(a.events[0].get(), b.events[0].get());  // one shared copy
}

TEST(EventHubTest, SeqIsStrictlyIncreasingAndTimestamped) {
  EventHub hub;
  RecordingListener a;
  ClientId id = hub.Attach(&a);
  hub.Broadcast(StatusEvent("x"));
  hub.Reply(id, StatusEvent("y"));
  hub.Broadcast(StatusEvent("z"));
  ASSERT_EQ(a.events.size(), 3u);
  EXPECT_EQ(a.events[0]->seq(), 1u);
  EXPECT_EQ(a.events[1]->seq(), 2u);
  EXPECT_EQ(a.events[2]->seq(), 3u);
  EXPECT_GT(a.events[0]->time().seconds(), 1700000000);
  EXPECT_EQ(hub.last_seq(), 3u);
}

TEST(EventHubTest, DetachedListenerIsNeverCalledAgain) {
  EventHub hub;
  RecordingListener a;
  ClientId id = hub.Attach(&a);
  hub.Detach(id);
  hub.Broadcast(StatusEvent("x"));
  EXPECT_TRUE(a.events.empty());
  EXPECT_EQ(hub.client_count(), 0u);
}

TEST(EventHubTest, ReplyToGoneClientIsCounted) {
  EventHub hub;
  RecordingListener a;
  ClientId id = hub.Attach(&a);
  hub.Detach(id);
  hub.Reply(id, StatusEvent("x"));
  EXPECT_EQ(hub.undeliverable_replies(), 1u);
}

TEST(EventHubTest, ConcurrentPublishersDeliverInSeqOrder) {
  EventHub hub;
  RecordingListener a;
  hub.Attach(&a);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&hub] {
      for (int i = 0; i < 1000; ++i) hub.Broadcast(StatusEvent("x"));
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(a.events.size(), 4000u);
  for (size_t i = 0; i < a.events.size(); ++i) EXPECT_EQ(a.events[i]->seq(), i + 1);
}

TEST(EventHubTest, HistoryReplaysBroadcastsAfterSeqButNotReplies) {
  EventHub hub(/*history_capacity=*/10);
  RecordingListener a;
  ClientId id = hub.Attach(&a);
  hub.Broadcast(StatusEvent("1"));  // seq 1
  hub.Reply(id, StatusEvent("2"));  // seq 2, private
  hub.Broadcast(StatusEvent("3"));  // seq 3
  EventHub::Replay replay = hub.EventsAfter(1);
  EXPECT_TRUE(replay.complete);
  ASSERT_EQ(replay.events.size(), 1u);
  EXPECT_EQ(replay.events[0]->seq(), 3u);
}

TEST(EventHubTest, HistoryReportsAGapOnceEventsWereEvicted) {
  EventHub hub(/*history_capacity=*/2);
  for (int i = 0; i < 5; ++i) hub.Broadcast(StatusEvent("x"));  // seq 1..5, keeps 4,5
  EXPECT_FALSE(hub.EventsAfter(1).complete);
  EXPECT_TRUE(hub.EventsAfter(3).complete);
  EXPECT_EQ(hub.EventsAfter(3).events.size(), 2u);
}

}  // namespace
}  // namespace telestra::backend
