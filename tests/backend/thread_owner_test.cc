#include "backend/thread_owner.h"

#include <thread>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(ThreadOwnerTest, OnlyTheBoundThreadIsCurrent) {
  ThreadOwner owner;
  EXPECT_FALSE(owner.IsCurrent());  // nobody owns it before Bind
  owner.Bind();
  EXPECT_TRUE(owner.IsCurrent());
  bool other_is_current = true;
  std::thread([&] { other_is_current = owner.IsCurrent(); }).join();
  EXPECT_FALSE(other_is_current);
  owner.Release();
  EXPECT_FALSE(owner.IsCurrent());
}

TEST(ThreadOwnerTest, CheckPassesOnTheOwningThread) {
  ThreadOwner owner;
  owner.Bind();
  TELESTRA_ASSERT_ON(owner);  // does not abort
}

#ifndef NDEBUG
TEST(ThreadOwnerDeathTest, CheckAbortsOffTheOwningThreadNamingTheFunction) {
  ThreadOwner owner;
  owner.Bind();
  EXPECT_DEATH(std::thread([&] { TELESTRA_ASSERT_ON(owner); }).join(),
               "thread check failed: .* runs off its owning thread");
}
#endif

}  // namespace
}  // namespace telestra::backend
