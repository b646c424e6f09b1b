#include "gateway/io_threads.h"

#include <pthread.h>

#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"

namespace telestra::gateway {

IoThreads::IoThreads(boost::asio::io_context& io, int count) : io_(io), work_(io.get_executor()) {
  for (int i = 0; i < count; ++i) {
    threads_.emplace_back([&io, i] {
      // Thread names for top -H, perf and gdb (at most 15 characters).
      pthread_setname_np(pthread_self(), absl::StrCat("telestra-io-", i).substr(0, 15).c_str());
      io.run();
    });
  }
}

void IoThreads::Stop() {
  if (threads_.empty()) return;
  work_.reset();
  boost::asio::post(io_, [this] { io_.stop(); });
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

}  // namespace telestra::gateway
