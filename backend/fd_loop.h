#pragma once

#include <cstdint>
#include <functional>

namespace telestra::backend {

// A thread that can also wait for file descriptors of others. The SIP
// stack's thread is one: the native port reads its clients' commands there
// (gateway/native/native_server.h), so that a command that leads to SIP
// wakes one thread, not two.
// Thread: every method may be called from any thread.
class FdLoop {
 public:
  using WatchId = uint64_t;

  virtual ~FdLoop() = default;

  // Calls `on_readable` on the loop's thread whenever `fd` is readable (or
  // at its end, or in error), until `on_readable` returns false or
  // Unwatch(id). Returns the watch's id, or 0 when the loop no longer takes
  // watches. `on_readable` is destroyed on the loop's thread once it will
  // never be called again (after it returned false, after Unwatch, or when
  // the loop stops); `fd` must stay open until then.
  virtual WatchId Watch(int fd, std::function<bool()> on_readable) = 0;

  // Ends a watch (an id already ended, or 0, is ignored).
  virtual void Unwatch(WatchId id) = 0;
};

}  // namespace telestra::backend
