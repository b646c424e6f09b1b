// Measures the native port's round trip get-status -> status against a
// running gateway: N concurrent clients, each sending one request at a time.
//
//   bench/native_roundtrip --port=3550 --clients=1 --requests=20000
//
// Loopback only; bounded by --requests per client and --max_seconds.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(int, port, 3550, "Native port of the gateway (on 127.0.0.1)");
ABSL_FLAG(int, clients, 1, "Concurrent clients");
ABSL_FLAG(int, requests, 20000, "Requests per client");
ABSL_FLAG(int, warmup, 500, "Unmeasured requests per client first");
ABSL_FLAG(std::string, account, "account-1", "Account to ask about");
ABSL_FLAG(double, max_seconds, 60, "Stop measuring after this long");

namespace {

using Clock = std::chrono::steady_clock;

int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Sends one request and reads up to its NUL terminator.
bool RoundTrip(int fd, const std::string& request, std::string& buffer) {
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return false;
  }
  for (;;) {
    size_t nul = buffer.find('\0');
    if (nul != std::string::npos) {
      bool ok = buffer.compare(0, 18, "{\"event\":\"status\",") == 0;
      buffer.erase(0, nul + 1);
      return ok;
    }
    char chunk[4096];
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

double Percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(p * (sorted.size() - 1));
  return sorted[index];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int clients = absl::GetFlag(FLAGS_clients);
  const int requests = absl::GetFlag(FLAGS_requests);
  const int warmup = absl::GetFlag(FLAGS_warmup);
  const std::string request =
      absl::StrCat(R"({"cmd":"get-status","account":")", absl::GetFlag(FLAGS_account), R"("})",
                   std::string(1, '\0'));
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(absl::GetFlag(FLAGS_max_seconds)));

  std::vector<std::vector<double>> samples(clients);
  std::atomic<int> errors{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      int fd = ConnectLoopback(absl::GetFlag(FLAGS_port));
      if (fd < 0) {
        errors++;
        ready++;
        return;
      }
      std::string buffer;
      for (int i = 0; i < warmup; ++i) {
        if (!RoundTrip(fd, request, buffer)) errors++;
      }
      ready++;
      while (!go) std::this_thread::yield();
      samples[c].reserve(requests);
      for (int i = 0; i < requests && Clock::now() < deadline; ++i) {
        auto start = Clock::now();
        if (!RoundTrip(fd, request, buffer)) {
          errors++;
          break;
        }
        samples[c].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - start).count());
      }
      close(fd);
    });
  }
  while (ready < clients) std::this_thread::yield();
  auto start = Clock::now();
  go = true;
  for (auto& thread : threads) thread.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> all;
  for (auto& s : samples) all.insert(all.end(), s.begin(), s.end());
  std::sort(all.begin(), all.end());
  std::printf(
      "clients=%d requests=%zu errors=%d median_us=%.1f p99_us=%.1f p999_us=%.1f "
      "max_us=%.1f throughput_rps=%.0f\n",
      clients, all.size(), errors.load(), Percentile(all, 0.5), Percentile(all, 0.99),
      Percentile(all, 0.999), all.empty() ? 0 : all.back(), all.size() / seconds);
  return errors == 0 && !all.empty() ? 0 : 1;
}
