// Slow and hostile clients of the native port (issue 6, docs/reliability.md):
// more clients than max-clients, a client that never reads, a client that
// connects and sends nothing, a thousand connect/disconnect cycles, and
// running out of file descriptors. No registrar is needed: the account does
// not register.
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/hardening/hardening_support.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"

namespace telestra::testing {
namespace {

// One get-status round trip; its duration, or an infinite one on failure.
absl::Duration RoundTrip(NativeClient& client) {
  const absl::Time start = absl::Now();
  client.Send(R"({"cmd":"get-status","account":"account-1","token":"rt"})");
  auto status = client.WaitFor(
      [](const NativeEvent& e) { return e.event() == "status" && e.Str("token") == "rt"; },
      absl::Seconds(5));
  return status ? absl::Now() - start : absl::InfiniteDuration();
}

std::string Micros(absl::Duration d) { return absl::StrCat(absl::ToInt64Microseconds(d), " us"); }

TEST(SlowClientTest, ClientsOverMaxClientsGetFailThenCloseAndFreedSlotsAreReused) {
  GatewayOptions options = OneIdleAccount();
  options.tcp_settings = {"max-clients = 4"};
  auto gateway = StartGatewayProcess(options);
  ASSERT_NE(gateway, nullptr);
  std::vector<std::unique_ptr<NativeClient>> admitted;
  for (int i = 0; i < 4; ++i) {
    admitted.push_back(ConnectNative(*gateway));
    ASSERT_NE(admitted.back(), nullptr);
    ASSERT_LT(RoundTrip(*admitted.back()), absl::Seconds(5));  // accepted and served
  }
  for (int i = 0; i < 3; ++i) {
    auto extra = RawConnection::Connect(gateway->native_port());
    ASSERT_TRUE(extra.ok()) << extra.status();
    bool closed = false;
    std::string bytes = (*extra)->ReadUntilClosed(absl::Seconds(10), &closed);
    EXPECT_TRUE(closed) << "a refused client must be closed";
    EXPECT_EQ(
        SplitEvents(bytes),
        std::vector<std::string>{
            R"json({"event":"fail","account":"","error":"Too many clients (max-clients is 4)"})json"});
  }
  // The admitted clients are unaffected; closing one frees its slot.
  EXPECT_LT(RoundTrip(*admitted[0]), absl::Seconds(5));
  admitted.pop_back();
  std::unique_ptr<NativeClient> replacement;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    replacement = ConnectNative(*gateway);
    if (replacement != nullptr && RoundTrip(*replacement) < absl::Seconds(5)) break;
    replacement.reset();
  }
  EXPECT_NE(replacement, nullptr) << "the freed slot was not reused";
  EXPECT_EQ(Metric(*gateway, "telestra_native_refused_total"), 3);
  EXPECT_TRUE(absl::StrContains(gateway->ReadLog(), "refused a client, max-clients (4) reached"));
}

// A client that sends requests (each answered with an 8 KiB token echoed
// back) but never reads: once 4 MiB wait for it, it is disconnected, the
// events it lost are counted and logged. Another client's get-status round
// trip is measured before and while this happens.
TEST(SlowClientTest, ClientThatNeverReadsIsDroppedAndOthersStayFast) {
  auto gateway = StartGatewayProcess(OneIdleAccount());
  ASSERT_NE(gateway, nullptr);
  auto measured = ConnectNative(*gateway);
  ASSERT_NE(measured, nullptr);
  std::vector<absl::Duration> before;
  for (int i = 0; i < 300; ++i) before.push_back(RoundTrip(*measured));

  RawConnection::Options small;
  small.receive_buffer = 4096;
  auto slow = RawConnection::Connect(gateway->native_port(), small);
  ASSERT_TRUE(slow.ok()) << slow.status();
  const std::string request = absl::StrCat(R"({"cmd":"get-status","account":"account-1","token":")",
                                           std::string(8192, 't'), R"("})", std::string(1, '\0'));
  std::vector<absl::Duration> during;
  size_t sent_bytes = 0;
  bool dropped = false;
  std::string partial;  // what is left of a request the socket took in part
  const absl::Time start = absl::Now();
  while (!dropped && absl::Now() - start < absl::Seconds(60)) {
    // Send what the socket takes, then measure the other client once.
    for (int i = 0; i < 64; ++i) {
      if (partial.empty()) partial = request;
      ssize_t n = (*slow)->SendSome(partial);
      if (n < 0) {
        dropped = true;
        break;
      }
      if (n == 0) break;
      sent_bytes += static_cast<size_t>(n);
      partial.erase(0, static_cast<size_t>(n));
    }
    during.push_back(RoundTrip(*measured));
    if (absl::StrContains(gateway->ReadLog(), "is not reading")) dropped = true;
  }
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(dropped) << "sent " << sent_bytes << " bytes without being dropped";
  const std::string log = gateway->ReadLog();
  EXPECT_TRUE(absl::StrContains(log, "is not reading")) << log;
  EXPECT_TRUE(absl::StrContains(log, "undelivered; disconnecting it")) << log;
  EXPECT_EQ(Metric(*gateway, "telestra_native_slow_disconnects_total"), 1);
  EXPECT_GT(Metric(*gateway, "telestra_native_undelivered_events_total"), 0);
  // The dropped connection is closed: a read ends.
  bool closed = false;
  (*slow)->ReadUntilClosed(absl::Seconds(10), &closed);
  EXPECT_TRUE(closed);

  const absl::Duration before_median = Percentile(before, 50);
  const absl::Duration before_p99 = Percentile(before, 99);
  const absl::Duration during_median = Percentile(during, 50);
  const absl::Duration during_p99 = Percentile(during, 99);
  const absl::Duration during_max = Percentile(during, 100);
  std::cout << "get-status round trip of another client: before median " << Micros(before_median)
            << ", p99 " << Micros(before_p99) << " (" << before.size()
            << " samples); while the slow client filled its queue median " << Micros(during_median)
            << ", p99 " << Micros(during_p99) << ", max " << Micros(during_max) << " ("
            << during.size() << " samples over " << took << ", " << sent_bytes
            << " bytes sent by the slow client)\n";
  RecordProperty("before_median_us", absl::ToInt64Microseconds(before_median));
  RecordProperty("before_p99_us", absl::ToInt64Microseconds(before_p99));
  RecordProperty("during_median_us", absl::ToInt64Microseconds(during_median));
  RecordProperty("during_p99_us", absl::ToInt64Microseconds(during_p99));
  // Generous bounds: a slow client must not stall the others.
  EXPECT_LT(during_median, absl::Milliseconds(50));
  EXPECT_LT(during_p99, absl::Milliseconds(250));
  EXPECT_LT(RoundTrip(*measured), absl::Seconds(1));
}

// No idle timeout on the native port: legacy clients may stay silent for
// hours and still get broadcasts. An idle connection costs one descriptor
// and no CPU, and counts against max-clients (docs/reliability.md).
TEST(SlowClientTest, ClientThatSendsNothingStaysConnectedHarmlessly) {
  auto gateway = StartGatewayProcess(OneIdleAccount());
  ASSERT_NE(gateway, nullptr);
  auto idle = ConnectNative(*gateway);
  ASSERT_NE(idle, nullptr);
  auto active = ConnectNative(*gateway);
  ASSERT_NE(active, nullptr);
  ASSERT_LT(RoundTrip(*active), absl::Seconds(5));
  const pid_t pid = gateway->process().pid();
  const absl::Duration cpu_before = CpuTime(pid);
  // Nothing arrives on the idle connection, and it is not closed.
  EXPECT_FALSE(idle->Next(absl::Seconds(4)).has_value());
  EXPECT_FALSE(idle->closed());
  const absl::Duration cpu_used = CpuTime(pid) - cpu_before;
  EXPECT_LT(cpu_used, absl::Milliseconds(500)) << "the gateway was busy while idle";
  EXPECT_EQ(Metric(*gateway, "telestra_native_clients"), 2);
  // Still served after the silence.
  EXPECT_LT(RoundTrip(*idle), absl::Seconds(5));
  EXPECT_LT(RoundTrip(*active), absl::Seconds(5));
}

// Rounds of 1000 connect/disconnect cycles of four kinds: close at once, one
// command then close, half a message then close, one command then reset.
// After each round (once the 3 s linger of half-closed clients is over) the
// gateway holds exactly the descriptors it held before, and no session or
// event-hub client is left. Resident memory grows in the first round
// (malloc arenas and fragmentation after ~700 sessions at once) and then
// levels off (14 rounds measured: +7 MiB, +2.5, +0.6, +0.3 ... +0.02 MiB);
// a leaked session (~20 KiB) per connection would add 20 MiB per round, so
// the two rounds after the first must add less than 6 MiB. (Under
// sanitizers, which quarantine freed memory, one round and no memory bound:
// LeakSanitizer checks the heap at exit.)
TEST(SlowClientTest, ThousandConnectCyclesLeakNoDescriptorsNorMemory) {
  auto gateway = StartGatewayProcess(OneIdleAccount());
  ASSERT_NE(gateway, nullptr);
  const pid_t pid = gateway->process().pid();
  const std::string command =
      std::string(R"({"cmd":"get-status","account":"account-1"})") + std::string(1, '\0');
  auto cycle = [&](int i) {
    auto connection = RawConnection::Connect(gateway->native_port());
    if (!connection.ok()) return false;
    switch (i % 4) {
      case 0:
        return true;  // close at once
      case 1: {
        if (!(*connection)->Send(command)) return false;
        bool closed = false;
        std::string reply;
        const absl::Time deadline = absl::Now() + absl::Seconds(5);
        while (reply.find('\0') == std::string::npos && !closed && absl::Now() < deadline) {
          reply += (*connection)->ReadUntilClosed(absl::Milliseconds(5), &closed);
        }
        return absl::StartsWith(reply, R"({"event":"status")");
      }
      case 2:
        return (*connection)->Send(R"({"cmd":"get-st)");
      default:
        if (!(*connection)->Send(command)) return false;
        (*connection)->Reset();
        return true;
    }
  };
  // Waits until the gateway holds `want` descriptors or fewer (lingering
  // connections close 3 s after the client's FIN).
  auto settle = [&](int want) {
    int fds = CountOpenFds(pid);
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (fds > want && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
      fds = CountOpenFds(pid);
    }
    return fds;
  };
  absl::SleepFor(absl::Seconds(4));  // the harness's readiness probe lingers
  const int fds_before = CountOpenFds(pid);
  std::vector<int64_t> rss = {ResidentKib(pid)};
  int peak_fds = fds_before;
  const int rounds = kSanitized ? 1 : 3;
  const double api_clients_before = Metric(*gateway, "telestra_api_clients");
  absl::Duration took;
  for (int round = 0; round < rounds; ++round) {
    const absl::Time start = absl::Now();
    for (int i = 0; i < 1000; ++i) {
      ASSERT_TRUE(cycle(i)) << "round " << round << ", cycle " << i;
      if (i % 50 == 0) peak_fds = std::max(peak_fds, CountOpenFds(pid));
    }
    took += absl::Now() - start;
    EXPECT_EQ(settle(fds_before), fds_before) << "descriptors leaked in round " << round;
    rss.push_back(ResidentKib(pid));
  }
  std::cout << rounds << " x 1000 connect/disconnect cycles in " << took << ": descriptors "
            << fds_before << " before, peak " << peak_fds << ", " << CountOpenFds(pid)
            << " after; VmRSS (KiB) before and after each round:";
  for (int64_t kib : rss) std::cout << " " << kib;
  std::cout << "\n";
  RecordProperty("fds_before", fds_before);
  RecordProperty("fds_peak", peak_fds);
  RecordProperty("fds_after", CountOpenFds(pid));
  RecordProperty("rss_first_kib", rss.front());
  RecordProperty("rss_last_kib", rss.back());
  if (!kSanitized) {
    EXPECT_LT(rss[rounds] - rss[1], 6 * 1024) << "memory grows with every round";
  }
  EXPECT_EQ(Metric(*gateway, "telestra_native_clients"), 0);
  EXPECT_EQ(Metric(*gateway, "telestra_api_clients"), api_clients_before);
  auto client = ConnectNative(*gateway);
  ASSERT_NE(client, nullptr);
  EXPECT_LT(RoundTrip(*client), absl::Seconds(5));
}

// When the gateway runs out of descriptors (RLIMIT_NOFILE lowered with
// prlimit) accept() fails with EMFILE: the accept loop must back off rather
// than spin, and serve again once descriptors are free.
TEST(SlowClientTest, RunningOutOfDescriptorsNeitherSpinsNorStopsTheGateway) {
  auto gateway = StartGatewayProcess(OneIdleAccount());
  ASSERT_NE(gateway, nullptr);
  const pid_t pid = gateway->process().pid();
  auto first = ConnectNative(*gateway);
  ASSERT_NE(first, nullptr);
  ASSERT_LT(RoundTrip(*first), absl::Seconds(5));
  const int in_use = CountOpenFds(pid);
  ASSERT_GT(in_use, 0);
  rlimit old{};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, nullptr, &old), 0) << strerror(errno);
  const rlimit low{static_cast<rlim_t>(in_use + 8), old.rlim_max};  // the soft limit only
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0) << strerror(errno);
  // More connections than descriptors left: the kernel completes them (the
  // backlog), the gateway cannot accept the last ones.
  std::vector<std::unique_ptr<RawConnection>> crowd;
  for (int i = 0; i < 24; ++i) {
    auto connection = RawConnection::Connect(gateway->native_port());
    ASSERT_TRUE(connection.ok()) << connection.status();
    crowd.push_back(*std::move(connection));
  }
  absl::SleepFor(absl::Milliseconds(500));
  const absl::Duration cpu_before = CpuTime(pid);
  absl::SleepFor(absl::Seconds(2));
  const absl::Duration cpu_used = CpuTime(pid) - cpu_before;
  const std::string log = gateway->ReadLog();
  size_t failures = 0;
  for (size_t at = log.find("accept failed"); at != std::string::npos;
       at = log.find("accept failed", at + 1)) {
    ++failures;
  }
  std::cout << "out of descriptors: " << failures << " accept failures logged, " << cpu_used
            << " CPU in 2 s\n";
  EXPECT_GT(failures, 0u) << "the limit was not reached";
  EXPECT_LT(cpu_used, absl::Milliseconds(500)) << "the accept loop spins";
  EXPECT_LE(failures, 2u) << "the log is flooded";
  // The connected client is still served; after the crowd leaves and the
  // limit is restored, new clients are accepted again.
  EXPECT_LT(RoundTrip(*first), absl::Seconds(5));
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizers' vptr check opens a pipe to probe a vtable it has not
  // seen yet; with no descriptor free it reports every such object as
  // invalid (a false "does not point to an object of type"). Under them the
  // limit comes back before the crowd's sessions are destroyed
  // (tests/sanitizers/README.md).
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &old, nullptr), 0) << strerror(errno);
#endif
  for (auto& connection : crowd) connection->Reset();
  crowd.clear();
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &old, nullptr), 0) << strerror(errno);
  std::unique_ptr<NativeClient> later;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    later = ConnectNative(*gateway);
    if (later != nullptr && RoundTrip(*later) < absl::Seconds(2)) break;
    later.reset();
  }
  EXPECT_NE(later, nullptr) << "not serving after the descriptors came back; gateway log:\n"
                            << gateway->ReadLog();
}

}  // namespace
}  // namespace telestra::testing
