#include "backend/histogram.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(HistogramTest, CountsEachValueInTheFirstBucketWhoseBoundHoldsIt) {
  Histogram histogram{1, 2, 5};
  for (double value : {0.5, 1.0, 1.5, 2.0, 4.0, 5.0, 7.0, 100.0}) histogram.Observe(value);
  Histogram::Snapshot s = histogram.snapshot();
  EXPECT_EQ(s.upper_bounds, (std::vector<double>{1, 2, 5}));
  // le=1: 0.5 1; le=2: 1.5 2; le=5: 4 5; +Inf: 7 100.
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{2, 2, 2, 2}));
  EXPECT_EQ(s.count, 8u);
  EXPECT_DOUBLE_EQ(s.sum, 121.0);
}

TEST(HistogramTest, ObservationsFromManyThreadsAreAllCounted) {
  Histogram histogram{0.5};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&histogram, t] {
      for (int i = 0; i < 1000; ++i) histogram.Observe(t % 2);
    });
  }
  for (std::thread& thread : threads) thread.join();
  Histogram::Snapshot s = histogram.snapshot();
  EXPECT_EQ(s.count, 4000u);
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{2000, 2000}));
  EXPECT_DOUBLE_EQ(s.sum, 2000.0);
}

}  // namespace
}  // namespace telestra::backend
