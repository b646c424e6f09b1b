#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace telestra::backend {

// Remembers which thread owns some state, and checks that the code touching
// that state runs there. The check is on in builds with assertions (tests,
// the ASan and TSan builds) and compiled out of `-c opt` (NDEBUG), so the
// service pays nothing for it.
//
//   ThreadOwner owner_;              // a member beside the state it guards
//   owner_.Bind();                   // first thing on the owning thread
//   TELESTRA_ASSERT_ON(owner_);      // in every function of that thread
//
// A failed check prints the function's name and aborts: a broken thread
// contract is a bug, never input to handle.
// Thread: any (Bind on the owning thread).
class ThreadOwner {
 public:
  // Makes the calling thread the owner.
  void Bind() { owner_.store(std::this_thread::get_id(), std::memory_order_release); }
  // No thread owns the state any more (its thread ended).
  void Release() { owner_.store(std::thread::id(), std::memory_order_release); }

  // True on the owning thread; false elsewhere and before Bind.
  bool IsCurrent() const {
    return owner_.load(std::memory_order_acquire) == std::this_thread::get_id();
  }

  void Check(const char* function) const {
#ifndef NDEBUG
    if (!IsCurrent()) {
      std::fprintf(stderr, "thread check failed: %s runs off its owning thread\n", function);
      std::abort();
    }
#else
    (void)function;
#endif
  }

 private:
  std::atomic<std::thread::id> owner_{};
};

}  // namespace telestra::backend

// Asserts (in builds with assertions) that the calling function runs on the
// thread that owns `owner` (a ThreadOwner).
#define TELESTRA_ASSERT_ON(owner) (owner).Check(__func__)
