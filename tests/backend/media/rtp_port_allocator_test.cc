#include "backend/media/rtp_port_allocator.h"

#include <set>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(RtpPortAllocatorTest, HandsOutEvenPortsWhoseRtcpPortIsInRange) {
  RtpPortAllocator ports(20001, 20010);  // pairs 20002/3 ... 20008/9
  EXPECT_EQ(ports.pair_count(), 4);
  std::set<int> seen;
  for (int i = 0; i < 4; ++i) {
    std::optional<int> port = ports.Acquire();
    ASSERT_TRUE(port.has_value());
    EXPECT_EQ(*port % 2, 0);
    EXPECT_GE(*port, 20002);
    EXPECT_LE(*port + 1, 20010);
    seen.insert(*port);
  }
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_FALSE(ports.Acquire().has_value());
  EXPECT_EQ(ports.in_use(), 4);
}

TEST(RtpPortAllocatorTest, ExhaustedRangeFreesOnRelease) {
  RtpPortAllocator ports(30000, 30003);
  std::optional<int> a = ports.Acquire();
  std::optional<int> b = ports.Acquire();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(ports.Acquire().has_value());
  ports.Release(*a);
  EXPECT_EQ(ports.Acquire(), a);
  EXPECT_FALSE(ports.Acquire().has_value());
}

TEST(RtpPortAllocatorTest, NextFitReusesAFreedPairLast) {
  RtpPortAllocator ports(40000, 40005);  // three pairs
  int first = *ports.Acquire();
  ports.Release(first);
  EXPECT_NE(*ports.Acquire(), first);
  EXPECT_NE(*ports.Acquire(), first);
  EXPECT_EQ(*ports.Acquire(), first);
}

TEST(RtpPortAllocatorTest, RangesWithoutAPair) {
  EXPECT_EQ(RtpPortAllocator(20001, 20002).pair_count(), 0);  // 20002 but no 20003
  EXPECT_EQ(RtpPortAllocator(20010, 20000).pair_count(), 0);
  EXPECT_EQ(RtpPortAllocator(65534, 70000).pair_count(), 1);  // 65534/65535
  EXPECT_FALSE(RtpPortAllocator(5, 5).Acquire().has_value());
}

TEST(RtpPortAllocatorTest, ReleaseIgnoresUnknownPorts) {
  RtpPortAllocator ports(20000, 20001);
  ports.Release(20000);  // not handed out
  ports.Release(12345);
  ports.Release(20001);  // odd
  EXPECT_EQ(ports.in_use(), 0);
  EXPECT_EQ(ports.Acquire(), 20000);
  EXPECT_EQ(ports.IndexOf(20000), 0);
  EXPECT_EQ(ports.IndexOf(20001), 0);
  EXPECT_EQ(ports.IndexOf(20002), -1);
}

}  // namespace
}  // namespace telestra::backend
