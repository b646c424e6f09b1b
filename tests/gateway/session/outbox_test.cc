#include "gateway/session/outbox.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

Outbox::Frame Bytes(const std::string& text) { return std::make_shared<const std::string>(text); }

// Writes everything Gather returns into `*written`, `limit` bytes per
// "send" at most. All of it happens while the caller holds the writer's
// role (it ends when Gather returns 0).
void WriteInto(Outbox& outbox, std::string* written, size_t limit = SIZE_MAX) {
  iovec iov[8];
  bool drained_for_close = false;
  for (;;) {
    size_t n = outbox.Gather(iov, 8, &drained_for_close);
    if (n == 0) return;
    size_t budget = limit;
    size_t sent = 0;
    for (size_t i = 0; i < n && budget > 0; ++i) {
      size_t take = std::min(budget, iov[i].iov_len);
      written->append(static_cast<const char*>(iov[i].iov_base), take);
      budget -= take;
      sent += take;
    }
    outbox.Consume(sent);
  }
}

std::string WriteAll(Outbox& outbox, size_t limit = SIZE_MAX) {
  std::string written;
  WriteInto(outbox, &written, limit);
  return written;
}

TEST(OutboxTest, FirstFrameMakesTheCallerTheWriterAndLaterOnesQueueBehindIt) {
  Outbox outbox(1 << 20);
  EXPECT_EQ(outbox.Add(Bytes("a")), Outbox::Added::kWrite);
  EXPECT_EQ(outbox.Add(Bytes("b")), Outbox::Added::kQueued);
  EXPECT_EQ(outbox.Add(Bytes("c")), Outbox::Added::kQueued);
  EXPECT_EQ(WriteAll(outbox), "abc");
  // The writer's role ended with the queue: the next frame starts a new one.
  EXPECT_EQ(outbox.Add(Bytes("d")), Outbox::Added::kWrite);
}

TEST(OutboxTest, PartialWritesResumeWhereTheyStoppedInOrder) {
  Outbox outbox(1 << 20);
  outbox.Add(Bytes("hello"));
  outbox.Add(Bytes("-world"));
  outbox.Add(Bytes("-again"));
  EXPECT_EQ(WriteAll(outbox, /*limit=*/3), "hello-world-again");
  EXPECT_EQ(outbox.queued_bytes(), 0u);
}

TEST(OutboxTest, SharesFramesInsteadOfCopyingThem) {
  Outbox a(1 << 20), b(1 << 20);
  Outbox::Frame shared = Bytes("event");
  a.Add(shared);
  b.Add(shared);
  iovec iov[1];
  bool drained = false;
  ASSERT_EQ(a.Gather(iov, 1, &drained), 1u);
  EXPECT_EQ(iov[0].iov_base, shared->data());
  ASSERT_EQ(b.Gather(iov, 1, &drained), 1u);
  EXPECT_EQ(iov[0].iov_base, shared->data());
}

TEST(OutboxTest, OverflowClosesTheOutboxAndCountsEveryLostFrame) {
  Outbox outbox(/*max_queued_bytes=*/10);
  EXPECT_EQ(outbox.Add(Bytes("0123456789")), Outbox::Added::kWrite);  // 10: at the bound
  EXPECT_EQ(outbox.Add(Bytes("x")), Outbox::Added::kQueued);  // 11: over it now
  uint64_t lost = 0;
  EXPECT_EQ(outbox.Add(Bytes("y"), &lost), Outbox::Added::kOverflow);
  EXPECT_EQ(lost, 3u);  // the two queued and this one
  EXPECT_EQ(outbox.Add(Bytes("z")), Outbox::Added::kClosed);
  EXPECT_EQ(WriteAll(outbox), "");
}

TEST(OutboxTest, CloseWhenDrainedIsReportedByTheWriterOnceEmpty) {
  Outbox outbox(1 << 20);
  EXPECT_TRUE(outbox.CloseWhenDrained());  // nothing queued: close at once
  Outbox busy(1 << 20);
  busy.Add(Bytes("last"));
  EXPECT_FALSE(busy.CloseWhenDrained());
  iovec iov[4];
  bool drained_for_close = false;
  ASSERT_EQ(busy.Gather(iov, 4, &drained_for_close), 1u);
  EXPECT_FALSE(drained_for_close);
  busy.Consume(4);
  EXPECT_EQ(busy.Gather(iov, 4, &drained_for_close), 0u);
  EXPECT_TRUE(drained_for_close);
}

TEST(OutboxTest, CloseReportsTheUnsentFrames) {
  Outbox outbox(1 << 20);
  outbox.Add(Bytes("a"));
  outbox.Add(Bytes("b"));
  EXPECT_EQ(outbox.Close(), 2u);
  EXPECT_EQ(outbox.Add(Bytes("c")), Outbox::Added::kClosed);
}

// Many producers, one writer at a time: every frame is written exactly
// once and each producer's frames stay in its order.
TEST(OutboxTest, ConcurrentProducersKeepEachProducersOrder) {
  Outbox outbox(1 << 24);
  std::string written;  // only the current writer appends
  auto produce = [&](char tag) {
    for (int i = 0; i < 2000; ++i) {
      if (outbox.Add(Bytes(std::string(1, tag))) == Outbox::Added::kWrite) {
        WriteInto(outbox, &written);
      }
    }
  };
  std::vector<std::thread> threads;
  for (char tag : {'a', 'b', 'c', 'd'}) threads.emplace_back(produce, tag);
  for (auto& t : threads) t.join();
  EXPECT_EQ(written.size(), 8000u);
  for (char tag : {'a', 'b', 'c', 'd'}) {
    EXPECT_EQ(std::count(written.begin(), written.end(), tag), 2000);
  }
}

}  // namespace
}  // namespace telestra::gateway
