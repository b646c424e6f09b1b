// The native port's event delivery, against a real NativeServer and
// EventHub on loopback: order per client, broadcasts off the publishing
// thread, a slow client dropped and counted, the counters exported.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/event_hub.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "gateway/metrics/metrics.h"
#include "gateway/native/native_server.h"
#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

int Connect(int port, int receive_buffer = 0) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (receive_buffer > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return -1;
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

// Reads `count` null-terminated frames (or fewer at a timeout or close).
std::vector<std::string> ReadFrames(int fd, size_t count) {
  std::vector<std::string> frames;
  std::string partial;
  char buffer[65536];
  while (frames.size() < count) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buffer[i] == '\0') {
        frames.push_back(std::move(partial));
        partial.clear();
      } else {
        partial.push_back(buffer[i]);
      }
    }
  }
  return frames;
}

uint64_t SeqOf(const std::string& json) {
  size_t at = json.find("\"seq\":");
  if (at == std::string::npos) return 0;
  uint64_t seq = 0;
  size_t end = json.find_first_of(",}", at);
  absl::SimpleAtoi(json.substr(at + 6, end - at - 6), &seq);
  return seq;
}

template <typename F>
bool WaitUntil(F condition, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));  // polls a condition, with a deadline
  }
  return true;
}

telestra::v1::Event Incoming(int64_t call_id, const std::string& padding = "") {
  telestra::v1::Event event;
  auto* incoming = event.mutable_call_incoming();
  incoming->set_account("account-2");
  incoming->set_call_id(call_id);
  incoming->set_caller("3001" + padding);
  return event;
}

class NativeDeliveryTest : public ::testing::Test {
 protected:
  void StartServer(NativeServer::Options options) {
    hub_.StartDeliveryThread();
    options.bind = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<NativeServer>(options, io_, /*dispatcher=*/nullptr, &hub_);
    ASSERT_TRUE(server_->Start().ok());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) server_->Stop();
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    for (int fd : fds_) close(fd);
  }

  backend::EventHub hub_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::unique_ptr<NativeServer> server_;
  std::thread thread_;
  std::vector<int> fds_;
};

TEST_F(NativeDeliveryTest, EveryClientGetsEveryBroadcastInSeqOrder) {
  NativeServer::Options options;
  options.extended_events = true;  // frames carry their seq
  StartServer(options);
  constexpr int kClients = 20;
  constexpr int kEvents = 300;
  for (int i = 0; i < kClients; ++i) {
    fds_.push_back(Connect(server_->port()));
    ASSERT_GE(fds_.back(), 0);
  }
  ASSERT_TRUE(WaitUntil([&] { return hub_.client_count() == kClients; }));
  std::thread publisher([&] {
    for (int i = 0; i < kEvents; ++i) hub_.Broadcast(Incoming(i));
  });
  publisher.join();
  for (int fd : fds_) {
    std::vector<std::string> frames = ReadFrames(fd, kEvents);
    ASSERT_EQ(frames.size(), static_cast<size_t>(kEvents));
    uint64_t last = 0;
    for (const std::string& frame : frames) {
      EXPECT_TRUE(absl::StrContains(frame, "\"call-incoming\"")) << frame;
      const uint64_t seq = SeqOf(frame);
      EXPECT_GT(seq, last) << frame;
      last = seq;
    }
  }
  // Delivered by the hub's thread, not by the publisher.
  EXPECT_EQ(hub_.delivery_stats().by_publisher, 0u);
  EXPECT_GE(hub_.delivery_stats().by_delivery_thread, static_cast<uint64_t>(kEvents));
}

TEST_F(NativeDeliveryTest, AClientThatDoesNotReadIsDroppedAndItsLostEventsCounted) {
  NativeServer::Options options;
  options.max_queued_bytes = 64 * 1024;
  StartServer(options);
  const int reader = Connect(server_->port());
  const int stalled = Connect(server_->port(), /*receive_buffer=*/4096);
  fds_ = {reader, stalled};
  ASSERT_TRUE(WaitUntil([&] { return hub_.client_count() == 2; }));
  // The reading client reads all along.
  std::atomic<size_t> read_frames{0};
  std::thread reading([&] {
    char buffer[65536];
    for (;;) {
      ssize_t n = recv(reader, buffer, sizeof(buffer), 0);
      if (n <= 0) return;
      for (ssize_t i = 0; i < n; ++i) read_frames += buffer[i] == '\0' ? 1 : 0;
    }
  });
  const std::string padding(2000, '0');
  int published = 0;
  const bool dropped = WaitUntil([&] {
    // The reading client stays within 16 events (32 KB, half its bound) of
    // the publisher: it must never be the slow one, even on a loaded
    // machine (TSan, a parallel test run).
    for (int i = 0; i < 50 && published - static_cast<int>(read_frames.load()) < 16; ++i) {
      hub_.Broadcast(Incoming(published++, padding));
    }
    return server_->stats().slow_disconnects == 1;
  }, absl::Seconds(30));
  // The reading client is not affected: it gets every event.
  const bool all_read =
      WaitUntil([&] { return read_frames.load() == static_cast<size_t>(published); });
  shutdown(reader, SHUT_RDWR);
  reading.join();
  ASSERT_TRUE(dropped);
  EXPECT_TRUE(all_read) << read_frames.load() << " of " << published;
  EXPECT_GT(server_->stats().undelivered_events, 0u);
  // The shared counters reach /metrics, labelled with the front end.
  MetricsWriter out;
  server_->ExportMetrics(out);
  bool exported = false;
  for (const prometheus::MetricFamily& family : out.Take()) {
    if (family.name != "telestra_slow_disconnects_total") continue;
    ASSERT_EQ(family.metric.size(), 1u);
    EXPECT_EQ(family.metric[0].label[0].value, "native");
    EXPECT_EQ(family.metric[0].counter.value, 1);
    exported = true;
  }
  EXPECT_TRUE(exported);
}

TEST_F(NativeDeliveryTest, AdmitsUpToMaxClientsAndRefusesTheNextWithAFail) {
  NativeServer::Options options;
  options.max_clients = 2;
  StartServer(options);
  fds_ = {Connect(server_->port()), Connect(server_->port())};
  ASSERT_TRUE(WaitUntil([&] { return hub_.client_count() == 2; }));
  const int third = Connect(server_->port());
  fds_.push_back(third);
  std::vector<std::string> frames = ReadFrames(third, 1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(absl::StrContains(frames[0], "Too many clients")) << frames[0];
  EXPECT_EQ(server_->stats().refused, 1u);
  EXPECT_EQ(server_->stats().clients, 2u);
}

}  // namespace
}  // namespace telestra::gateway
