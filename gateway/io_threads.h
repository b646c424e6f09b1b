// The threads that run the API ports' io_context.
#pragma once

#include <thread>
#include <vector>

#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"

namespace telestra::gateway {

// The threads serving the API ports ("telestra-io-N"). Stop (or the
// destructor) lets the sessions finish what was posted, then ends the loop
// and joins them.
// Thread: the thread that built it (main).
class IoThreads {
 public:
  // Starts `count` threads running `io` (kept running while it has no work).
  IoThreads(boost::asio::io_context& io, int count);
  ~IoThreads() { Stop(); }
  // Idempotent.
  void Stop();

 private:
  boost::asio::io_context& io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

}  // namespace telestra::gateway
