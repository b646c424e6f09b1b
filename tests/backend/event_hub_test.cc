#include "backend/event_hub.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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

TEST(EventHubTest, CallQualityIsDeliveredButNotKeptForResumingClients) {
  EventHub hub(/*history_capacity=*/2);
  RecordingListener a;
  hub.Attach(&a);
  hub.Broadcast(StatusEvent("1"));  // seq 1
  for (int i = 0; i < 5; ++i) {     // seq 2..6: would evict seq 1 if kept
    telestra::v1::Event quality;
    quality.mutable_call_quality()->set_call_id(7);
    hub.Broadcast(std::move(quality));
  }
  hub.Broadcast(StatusEvent("7"));  // seq 7
  EXPECT_EQ(a.events.size(), 7u);  // every one delivered
  EventHub::Replay replay = hub.EventsAfter(0);
  EXPECT_TRUE(replay.complete);
  ASSERT_EQ(replay.events.size(), 2u);
  EXPECT_EQ(replay.events[0]->seq(), 1u);
  EXPECT_EQ(replay.events[1]->seq(), 7u);
}

// Records what a hub delivers from other threads: the events, the thread
// that delivered each, and whether seq was increasing.
class ThreadedListener : public EventListener {
 public:
  void OnEvent(const EventPtr& event) override {
    absl::MutexLock lock(&mu_);
    if (event->seq() <= last_seq_) out_of_order_ = true;
    last_seq_ = event->seq();
    threads_.push_back(std::this_thread::get_id());
    ++count_;
  }
  // Waits (with a deadline) until `n` events have arrived.
  bool AwaitCount(size_t n) {
    absl::MutexLock lock(&mu_);
    auto done = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10));
  }
  std::vector<std::thread::id> threads() {
    absl::MutexLock lock(&mu_);
    return threads_;
  }
  bool out_of_order() {
    absl::MutexLock lock(&mu_);
    return out_of_order_;
  }

 private:
  absl::Mutex mu_;
  size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool out_of_order_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread::id> threads_ ABSL_GUARDED_BY(mu_);
};

TEST(EventHubTest, DeliveryThreadDeliversBroadcastsOffThePublishingThread) {
  EventHub hub;
  hub.StartDeliveryThread();
  ThreadedListener a, b;
  hub.Attach(&a);
  hub.Attach(&b);
  hub.Broadcast(StatusEvent("x"));
  ASSERT_TRUE(a.AwaitCount(1));
  ASSERT_TRUE(b.AwaitCount(1));
  EXPECT_NE(a.threads()[0], std::this_thread::get_id());
  EXPECT_EQ(hub.delivery_stats().by_delivery_thread, 1u);
}

// A listener may take the hub's lock (here through last_seq): with
// delivery under the lock this would deadlock.
TEST(EventHubTest, ListenersAreCalledWithoutTheHubLock) {
  EventHub hub;
  struct Reentrant : EventListener {
    explicit Reentrant(EventHub* hub) : hub(hub) {}
    void OnEvent(const EventPtr& event) override { seen_last = hub->last_seq(); }
    EventHub* hub;
    uint64_t seen_last = 0;
  } listener(&hub);
  hub.Attach(&listener);
  hub.Broadcast(StatusEvent("x"));
  EXPECT_EQ(listener.seen_last, 1u);
}

TEST(EventHubTest, ReplyScopeDeliversItsRepliesOnItsOwnThreadAtItsEnd) {
  EventHub hub;
  hub.StartDeliveryThread();
  ThreadedListener a;
  ClientId id = hub.Attach(&a);
  {
    EventHub::ReplyScope scope(&hub);
    hub.Reply(id, StatusEvent("x"));
  }
  // Delivered synchronously by the scope, not by the delivery thread.
  ASSERT_EQ(a.threads().size(), 1u);
  EXPECT_EQ(a.threads()[0], std::this_thread::get_id());
  EXPECT_EQ(hub.delivery_stats().by_reply_scope, 1u);
}

TEST(EventHubTest, ReplyScopeDeliversABroadcastToAFewClientsItselfWhenItEnds) {
  EventHub hub;
  hub.StartDeliveryThread();
  std::vector<std::unique_ptr<ThreadedListener>> listeners;
  for (size_t i = 0; i < EventHub::kInlineBroadcastUpTo; ++i) {
    listeners.push_back(std::make_unique<ThreadedListener>());
    hub.Attach(listeners.back().get());
  }
  ClientId first = 1;
  {
    EventHub::ReplyScope scope(&hub);
    hub.Broadcast(StatusEvent("b"));
    hub.Reply(first, StatusEvent("r"));
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_EQ(listeners[0]->threads().size(), 0u) << "delivered before the scope ended";
  }
  for (auto& listener : listeners) {
    ASSERT_TRUE(listener->AwaitCount(1));
    for (std::thread::id thread : listener->threads()) {
      EXPECT_EQ(thread, std::this_thread::get_id()) << "handed over to another thread";
    }
  }
  ASSERT_TRUE(listeners[0]->AwaitCount(2));
  EXPECT_FALSE(listeners[0]->out_of_order());
  EXPECT_EQ(hub.delivery_stats().by_delivery_thread, 0u);
  EXPECT_EQ(hub.delivery_stats().by_reply_scope, 2u);
}

TEST(EventHubTest, ReplyScopeLeavesABroadcastToManyClientsToTheDeliveryThread) {
  EventHub hub;
  hub.StartDeliveryThread();
  std::vector<std::unique_ptr<ThreadedListener>> listeners;
  for (size_t i = 0; i < EventHub::kInlineBroadcastUpTo + 1; ++i) {
    listeners.push_back(std::make_unique<ThreadedListener>());
    hub.Attach(listeners.back().get());
  }
  {
    EventHub::ReplyScope scope(&hub);
    hub.Broadcast(StatusEvent("b"));
    hub.Reply(1, StatusEvent("r"));
  }
  for (auto& listener : listeners) {
    ASSERT_TRUE(listener->AwaitCount(1));
    EXPECT_NE(listener->threads()[0], std::this_thread::get_id());  // the broadcast
  }
  ASSERT_TRUE(listeners[0]->AwaitCount(2));
  EXPECT_FALSE(listeners[0]->out_of_order());
}

TEST(EventHubTest, ANestedReplyScopeLeavesTheDeliveryToTheOuterOne) {
  EventHub hub;
  hub.StartDeliveryThread();
  ThreadedListener a;
  ClientId id = hub.Attach(&a);
  {
    EventHub::ReplyScope outer(&hub);
    {
      EventHub::ReplyScope inner(&hub);
      hub.Reply(id, StatusEvent("r"));
    }
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_EQ(a.threads().size(), 0u) << "the inner scope delivered";
    hub.Broadcast(StatusEvent("b"));
  }
  ASSERT_TRUE(a.AwaitCount(2));
  EXPECT_FALSE(a.out_of_order());
  for (std::thread::id thread : a.threads()) EXPECT_EQ(thread, std::this_thread::get_id());
}

TEST(EventHubTest, EveryClientSeesRepliesAndBroadcastsInSeqOrder) {
  EventHub hub;
  hub.StartDeliveryThread();
  constexpr int kClients = 8;
  constexpr int kPerThread = 512;  // a multiple of kClients
  std::vector<std::unique_ptr<ThreadedListener>> listeners;
  std::vector<ClientId> ids;
  for (int i = 0; i < kClients; ++i) {
    listeners.push_back(std::make_unique<ThreadedListener>());
    ids.push_back(hub.Attach(listeners.back().get()));
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&hub, &ids, t] {
      for (int i = 0; i < kPerThread; ++i) {
        EventHub::ReplyScope scope(&hub);
        hub.Reply(ids[(t + i) % ids.size()], StatusEvent("r"));
        if (i % 3 == 0) hub.Broadcast(StatusEvent("b"));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const size_t broadcasts = 4 * ((kPerThread + 2) / 3);
  const size_t replies_each = 4 * kPerThread / kClients;
  for (auto& listener : listeners) {
    ASSERT_TRUE(listener->AwaitCount(broadcasts + replies_each));
    EXPECT_FALSE(listener->out_of_order());
  }
}

TEST(EventHubTest, EncodingsAreMadeOnceAndSharedByEveryListener) {
  EventHub hub;
  int encoded = 0;
  std::vector<const std::string*> seen;
  struct Encoding : EventListener {
    Encoding(int* encoded, std::vector<const std::string*>* seen) : encoded(encoded), seen(seen) {}
    void OnEvent(const EventPtr&) override {}
    void OnDelivery(const EventPtr& event, const EncodingsPtr& encodings) override {
      seen->push_back(&encodings->Get(0, [&] {
        ++*encoded;
        return std::string("encoded");
      }));
    }
    int* encoded;
    std::vector<const std::string*>* seen;
  };
  std::vector<std::unique_ptr<Encoding>> listeners;
  for (int i = 0; i < 100; ++i) {
    listeners.push_back(std::make_unique<Encoding>(&encoded, &seen));
    hub.Attach(listeners.back().get());
  }
  hub.Broadcast(StatusEvent("x"));
  EXPECT_EQ(encoded, 1);
  ASSERT_EQ(seen.size(), 100u);
  for (const std::string* bytes : seen) EXPECT_EQ(bytes, seen[0]);
  hub.Broadcast(StatusEvent("y"));  // a new event: encoded anew
  EXPECT_EQ(encoded, 2);
}

TEST(EventHubTest, ListenerAttachedAfterPublishingDoesNotGetThatBroadcast) {
  EventHub hub;
  hub.StartDeliveryThread();
  ThreadedListener early, late;
  hub.Attach(&early);
  {
    EventHub::ReplyScope scope(&hub);  // keeps nothing: broadcasts are queued
    hub.Broadcast(StatusEvent("1"));
    hub.Attach(&late);
    hub.Broadcast(StatusEvent("2"));
  }
  ASSERT_TRUE(early.AwaitCount(2));
  ASSERT_TRUE(late.AwaitCount(1));
  EXPECT_EQ(late.threads().size(), 1u);
}

TEST(EventHubTest, DetachWaitsForTheDeliveryInProgress) {
  EventHub hub;
  hub.StartDeliveryThread();
  absl::Notification entered, release;
  std::atomic<bool> returned{false};
  struct Blocking : EventListener {
    void OnEvent(const EventPtr&) override {
      entered->Notify();
      release->WaitForNotificationWithTimeout(absl::Seconds(10));
      returned->store(true);
    }
    absl::Notification* entered;
    absl::Notification* release;
    std::atomic<bool>* returned;
  } listener;
  listener.entered = &entered;
  listener.release = &release;
  listener.returned = &returned;
  ClientId id = hub.Attach(&listener);
  hub.Broadcast(StatusEvent("x"));
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::atomic<bool> returned_when_detached{false};
  std::thread detacher([&] {
    hub.Detach(id);
    returned_when_detached = returned.load();
  });
  release.Notify();
  detacher.join();
  EXPECT_TRUE(returned_when_detached);
}

// ---- The instance, Restore and the history sink (the journal's API)

telestra::v1::Event Stamped(uint64_t seq, const std::string& account) {
  telestra::v1::Event event = StatusEvent(account);
  event.set_seq(seq);
  return event;
}

TEST(EventHubTest, InstanceIsSixteenHexDigitsAndEveryHubHasItsOwn) {
  EventHub a, b;
  ASSERT_EQ(a.instance().size(), 16u);
  for (char c : a.instance()) EXPECT_TRUE(absl::ascii_isxdigit(c)) << a.instance();
  EXPECT_NE(a.instance(), b.instance());
}

TEST(EventHubTest, RestoreContinuesTheInstanceTheSeqAndTheHistory) {
  EventHub hub(/*history_capacity=*/10);
  hub.Restore("0123456789abcdef", 8, {Stamped(5, "a"), Stamped(7, "b"), Stamped(9, "c")});
  EXPECT_EQ(hub.instance(), "0123456789abcdef");
  EXPECT_EQ(hub.last_seq(), 9u);  // the last event's seq beats last_seq
  RecordingListener listener;
  hub.Attach(&listener);
  hub.Broadcast(StatusEvent("d"));
  ASSERT_EQ(listener.events.size(), 1u);
  EXPECT_EQ(listener.events[0]->seq(), 10u);
  EventHub::Replay replay = hub.EventsAfter(4);
  EXPECT_TRUE(replay.complete);
  ASSERT_EQ(replay.events.size(), 4u);
  EXPECT_EQ(replay.events[0]->seq(), 5u);
  EXPECT_EQ(replay.events[0]->status().account(), "a");
  EXPECT_EQ(replay.events[3]->seq(), 10u);
  // What came before the first restored event is not known any more.
  EXPECT_FALSE(hub.EventsAfter(3).complete);
}

TEST(EventHubTest, RestoreWithoutHistoryContinuesAfterLastSeq) {
  EventHub hub;
  const std::string random = hub.instance();
  hub.Restore("", 100, {});
  EXPECT_EQ(hub.instance(), random);  // none given: the random one stays
  EXPECT_EQ(hub.last_seq(), 100u);
  hub.Broadcast(StatusEvent("x"));
  EXPECT_EQ(hub.last_seq(), 101u);
  EXPECT_TRUE(hub.EventsAfter(100).complete);
  EXPECT_FALSE(hub.EventsAfter(99).complete);
}

TEST(EventHubTest, RestoreKeepsTheNewestCapacityEvents) {
  EventHub hub(/*history_capacity=*/2);
  std::vector<telestra::v1::Event> history;
  for (uint64_t seq = 1; seq <= 5; ++seq) history.push_back(Stamped(seq, "x"));
  hub.Restore("i", 5, std::move(history));
  EXPECT_FALSE(hub.EventsAfter(2).complete);
  EventHub::Replay replay = hub.EventsAfter(3);
  EXPECT_TRUE(replay.complete);
  ASSERT_EQ(replay.events.size(), 2u);
  EXPECT_EQ(replay.events[0]->seq(), 4u);
}

TEST(EventHubDeathTest, RestoreAfterPublishingOrOutOfOrderAborts) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        EventHub hub;
        hub.Broadcast(StatusEvent("x"));
        hub.Restore("i", 0, {});
      },
      "Restore must come once");
  EXPECT_DEATH(
      {
        EventHub hub;
        hub.Restore("i", 0, {Stamped(4, "a"), Stamped(4, "b")});
      },
      "seqs must increase");
}

TEST(EventHubTest, HistorySinkGetsEveryKeptEventOnceInSeqOrder) {
  std::vector<uint64_t> sunk;  // under the hub's lock: no lock of its own needed
  RecordingListener unused;
  EventHub hub(/*history_capacity=*/16);
  hub.Restore("i", 0, {Stamped(1, "restored")});
  hub.SetHistorySink([&sunk](const EventPtr& event) { sunk.push_back(event->seq()); });
  hub.StartDeliveryThread();
  const ClientId id = hub.Attach(&unused);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&hub, id] {
      for (int i = 0; i < 250; ++i) {
        hub.Broadcast(StatusEvent("x"));
        hub.Reply(id, StatusEvent("private"));  // not kept: not sunk
        telestra::v1::Event quality;
        quality.mutable_call_quality()->set_call_id(1);
        hub.Broadcast(std::move(quality));  // not kept either
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  hub.Detach(id);
  ASSERT_EQ(sunk.size(), 1000u);  // the broadcasts, not the restored event
  for (size_t i = 1; i < sunk.size(); ++i) EXPECT_GT(sunk[i], sunk[i - 1]);
  EXPECT_GT(sunk.front(), 1u);
}

// ---- Resuming: one decision (PlanResume) and its place in a client's
// stream (Resume)

std::vector<uint64_t> Seqs(const std::vector<EventPtr>& events) {
  std::vector<uint64_t> seqs;
  for (const EventPtr& event : events) seqs.push_back(event->seq());
  return seqs;
}

TEST(EventHubTest, PlanResumeDecidesEachOutcome) {
  using Outcome = ResumePoint::Outcome;
  EventHub hub(/*history_capacity=*/3);
  hub.Restore("inst", 0, {});
  for (int i = 0; i < 6; ++i) hub.Broadcast(StatusEvent("x"));  // 1..6, keeps 4..6

  ResumePoint fresh = hub.PlanResume(std::nullopt, "");
  EXPECT_EQ(fresh.outcome, Outcome::kFresh);
  EXPECT_EQ(fresh.last_seq, 6u);
  EXPECT_EQ(fresh.instance, "inst");
  EXPECT_TRUE(fresh.events.empty());
  EXPECT_FALSE(fresh.gap());

  ResumePoint complete = hub.PlanResume(4, "inst");
  EXPECT_EQ(complete.outcome, Outcome::kComplete);
  EXPECT_EQ(Seqs(complete.events), (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(hub.PlanResume(3, "").outcome, Outcome::kComplete);  // no instance: trusted
  EXPECT_TRUE(hub.PlanResume(6, "inst").events.empty());         // nothing missed

  ResumePoint evicted = hub.PlanResume(1, "inst");
  EXPECT_EQ(evicted.outcome, Outcome::kEvicted);
  EXPECT_TRUE(evicted.gap());
  EXPECT_EQ(evicted.replay_after, 1u);
  EXPECT_EQ(Seqs(evicted.events), (std::vector<uint64_t>{4, 5, 6}));  // what is left
  EXPECT_EQ(evicted.lost_from(), 2u);
  EXPECT_EQ(evicted.lost_to(), 6u);

  ResumePoint other = hub.PlanResume(5, "another");
  EXPECT_EQ(other.outcome, Outcome::kOtherInstance);
  EXPECT_EQ(other.client_instance, "another");
  EXPECT_EQ(other.replay_after, 0u);  // the whole history
  EXPECT_EQ(Seqs(other.events), (std::vector<uint64_t>{4, 5, 6}));
  EXPECT_EQ(other.lost_from(), 1u);
  EXPECT_EQ(other.lost_to(), 6u);

  ResumePoint ahead = hub.PlanResume(7, "inst");
  EXPECT_EQ(ahead.outcome, Outcome::kAhead);
  EXPECT_EQ(ahead.lost_from(), 1u);
  EXPECT_EQ(ahead.lost_to(), 6u);
}

// Records a client's stream: events and resume answers, in order.
class StreamListener : public EventListener {
 public:
  struct Entry {
    EventPtr event;                    // or
    std::optional<ResumePoint> point;  // a resume answer
    std::string token;
  };
  void OnEvent(const EventPtr& event) override {
    absl::MutexLock lock(&mu_);
    entries_.push_back(Entry{event, std::nullopt, ""});
  }
  void OnResume(const ResumePoint& point, const std::string& token) override {
    absl::MutexLock lock(&mu_);
    entries_.push_back(Entry{nullptr, point, token});
  }
  // Waits (with a deadline) until an event with seq >= `seq` has come.
  bool AwaitSeq(uint64_t seq) {
    absl::MutexLock lock(&mu_);
    auto done = [this, seq]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const Entry& entry : entries_) {
        if (entry.event != nullptr && entry.event->seq() >= seq) return true;
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10));
  }
  // Waits (with a deadline) until a resume answer has come.
  bool AwaitAnswer() {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const Entry& entry : entries_) {
        if (entry.point.has_value()) return true;
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10));
  }
  std::vector<Entry> entries() {
    absl::MutexLock lock(&mu_);
    return entries_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// What the client sees from the resume answer on: the replay, then what
// came live.
std::vector<uint64_t> StreamAfterResume(const std::vector<StreamListener::Entry>& entries,
                                        const ResumePoint** point) {
  std::vector<uint64_t> seqs;
  *point = nullptr;
  for (const StreamListener::Entry& entry : entries) {
    if (entry.point.has_value()) {
      *point = &*entry.point;
      for (const EventPtr& event : entry.point->events) seqs.push_back(event->seq());
    } else if (*point != nullptr) {
      seqs.push_back(entry.event->seq());
    }
  }
  return seqs;
}

TEST(EventHubTest, ResumeAnswersAfterWhatTheClientAlreadyGotWithItsToken) {
  EventHub hub;
  StreamListener listener;
  const ClientId id = hub.Attach(&listener);
  hub.Broadcast(StatusEvent("1"));
  hub.Broadcast(StatusEvent("2"));
  hub.Resume(id, /*after_seq=*/std::nullopt, "", "t-1");
  hub.Broadcast(StatusEvent("3"));
  std::vector<StreamListener::Entry> entries = listener.entries();
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[1].event->seq(), 2u);
  ASSERT_TRUE(entries[2].point.has_value());
  EXPECT_EQ(entries[2].point->outcome, ResumePoint::Outcome::kFresh);
  EXPECT_EQ(entries[2].point->last_seq, 2u);
  EXPECT_EQ(entries[2].point->instance, hub.instance());
  EXPECT_EQ(entries[2].token, "t-1");
  EXPECT_EQ(entries[3].event->seq(), 3u);
}

TEST(EventHubTest, ResumeOfAClientThatIsGoneDoesNothing) {
  EventHub hub;
  StreamListener listener;
  const ClientId id = hub.Attach(&listener);
  hub.Detach(id);
  hub.Resume(id, 0, "", "");
  EXPECT_TRUE(listener.entries().empty());
  EXPECT_EQ(hub.undeliverable_replies(), 0u);
}

// Broadcasts still queued for the client when it resumes are skipped: the
// replay holds them, and nothing comes twice after the answer.
TEST(EventHubTest, ResumeSkipsTheQueuedBroadcastsItsReplayHolds) {
  absl::Notification entered, release;
  struct Blocking : EventListener {
    void OnEvent(const EventPtr& event) override {
      if (event->seq() != 1) return;
      entered->Notify();
      release->WaitForNotificationWithTimeout(absl::Seconds(10));
    }
    absl::Notification* entered;
    absl::Notification* release;
  } blocking;
  blocking.entered = &entered;
  blocking.release = &release;
  StreamListener resuming;
  EventHub hub;  // after the listeners: its delivery thread stops before they go
  hub.StartDeliveryThread();
  const ClientId id = hub.Attach(&resuming);  // before `blocking`: gets seq 1 first
  hub.Attach(&blocking);
  hub.Broadcast(StatusEvent("1"));
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  hub.Broadcast(StatusEvent("2"));  // queued behind the blocked delivery
  hub.Broadcast(StatusEvent("3"));
  hub.Resume(id, /*after_seq=*/0, hub.instance(), "");
  hub.Broadcast(StatusEvent("4"));
  release.Notify();
  ASSERT_TRUE(resuming.AwaitSeq(4));
  std::vector<StreamListener::Entry> entries = resuming.entries();
  ASSERT_EQ(entries.size(), 3u);  // 1 (before), the answer, 4
  EXPECT_EQ(entries[0].event->seq(), 1u);
  ASSERT_TRUE(entries[1].point.has_value());
  EXPECT_EQ(entries[1].point->outcome, ResumePoint::Outcome::kComplete);
  EXPECT_EQ(Seqs(entries[1].point->events), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(entries[2].event->seq(), 4u);
}

TEST(EventHubTest, ResumeWhilePublishingGivesEveryLaterEventExactlyOnceInOrder) {
  StreamListener resuming;
  EventHub hub(/*history_capacity=*/100000);  // stops delivering before `resuming` goes
  hub.StartDeliveryThread();
  const ClientId id = hub.Attach(&resuming);
  constexpr uint64_t kEvents = 3000;
  std::thread publisher([&hub] {
    for (uint64_t i = 0; i < kEvents; ++i) hub.Broadcast(StatusEvent("x"));
  });
  // Resume in the middle of the stream, from a seq already published.
  while (hub.last_seq() < 500) std::this_thread::yield();
  const uint64_t after_seq = hub.last_seq() / 2;
  {
    EventHub::ReplyScope scope(&hub);  // as a native session runs its commands
    hub.Resume(id, after_seq, hub.instance(), "");
  }
  publisher.join();
  // Everything handed over: the answer and what came live after it.
  ASSERT_TRUE(hub.AwaitDelivered(absl::Now() + absl::Seconds(10)));
  ASSERT_TRUE(resuming.AwaitAnswer());
  const ResumePoint* point = nullptr;
  std::vector<StreamListener::Entry> entries = resuming.entries();
  std::vector<uint64_t> seqs = StreamAfterResume(entries, &point);
  ASSERT_NE(point, nullptr);
  EXPECT_EQ(point->outcome, ResumePoint::Outcome::kComplete);
  ASSERT_EQ(seqs.size(), kEvents - after_seq);
  for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], after_seq + 1 + i) << i;
}

TEST(EventHubTest, ALongReplayIsLeftToTheDeliveryThreadEvenInAReplyScope) {
  struct ThreadOfAnswer : EventListener {
    void OnEvent(const EventPtr&) override {}
    void OnResume(const ResumePoint& point, const std::string&) override {
      absl::MutexLock lock(&mu);
      replayed = point.events.size();
      thread = std::this_thread::get_id();
    }
    absl::Mutex mu;
    size_t replayed ABSL_GUARDED_BY(mu) = 0;
    std::thread::id thread ABSL_GUARDED_BY(mu);
  } listener;
  EventHub hub;
  const ClientId id = hub.Attach(&listener);
  for (size_t i = 0; i <= EventHub::kInlineReplayUpTo; ++i) hub.Broadcast(StatusEvent("x"));
  hub.StartDeliveryThread();
  {
    EventHub::ReplyScope scope(&hub);
    hub.Resume(id, 0, "", "");
  }
  ASSERT_TRUE(hub.AwaitDelivered(absl::Now() + absl::Seconds(10)));
  absl::MutexLock lock(&listener.mu);
  auto answered = [&listener]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(listener.mu) {
    return listener.replayed > 0;
  };
  ASSERT_TRUE(listener.mu.AwaitWithTimeout(absl::Condition(&answered), absl::Seconds(10)));
  EXPECT_EQ(listener.replayed, EventHub::kInlineReplayUpTo + 1);
  EXPECT_NE(listener.thread, std::this_thread::get_id());
}

TEST(EventHubTest, ResumeInAReplyScopeIsAnsweredByTheScopesThread) {
  struct ThreadOfAnswer : EventListener {
    void OnEvent(const EventPtr&) override {}
    void OnResume(const ResumePoint&, const std::string&) override {
      thread = std::this_thread::get_id();
    }
    std::thread::id thread;
  } listener;
  EventHub hub;
  hub.StartDeliveryThread();
  const ClientId id = hub.Attach(&listener);
  {
    EventHub::ReplyScope scope(&hub);
    hub.Resume(id, std::nullopt, "", "");
  }
  EXPECT_EQ(listener.thread, std::this_thread::get_id());
}

}  // namespace
}  // namespace telestra::backend
