// Broadcast fan-out: with --clients native connections open on a gateway
// with two registered accounts (through a private Kamailio on loopback),
// one more connection sends make-call account-1 -> 3002; measured is the
// time from sending make-call until the broadcast call-incoming (for
// account-2) has reached each of the --clients connections.
//
// Per round: the latest arrival over all clients (the fan-out time), and
// every client's own latency. A client that has not received the event
// after --round_timeout_ms counts as lost. After each round the caller
// hangs up (CANCEL once it heard ringing) and both call-ended are awaited.
//
// The listening clients are plain non-blocking sockets read by one epoll
// thread (a recv per ready socket, a timestamp per recv), so that this
// process costs the gateway as little CPU as possible on a small machine.
// Run by bench/run-fanout.sh (which sets TEST_SRCDIR so that the gateway
// and examples/kamailio.cfg are found, and can swap in another gateway).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"

ABSL_FLAG(int, clients, 1000, "Listening native connections");
ABSL_FLAG(int, rounds, 100, "Measured rounds (make-call, fan-out, hang-up)");
ABSL_FLAG(int, warmup, 5, "Unmeasured rounds first");
ABSL_FLAG(double, max_seconds, 120, "Stop measuring after this long");
ABSL_FLAG(int, round_timeout_ms, 2000, "A client without the event after this long is lost");
ABSL_FLAG(std::string, label, "gateway", "Name printed with the figures");
ABSL_FLAG(std::vector<std::string>, gateway_flags, {}, "More flags for the gateway");
ABSL_FLAG(std::vector<std::string>, floor_senders, {},
          "Also measure the floor: the same readers fed one call-incoming frame per round by a "
          "bare TCP sender in this process with this many threads (e.g. 1,2); empty: skip");

namespace telestra::testing {
namespace {

using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// The floor: a plain TCP server in this process that the same Listeners
// connect to. It answers each client's get-status, then, per round, sends
// one call-incoming frame to every connection from `senders` threads (each
// its share of the connections, woken like the gateway's delivery threads).
// Measured the same way as the gateway: from the round's start until the
// frame has been read on every connection. No SIP, no JSON, no queues: what
// the loopback sends and reads alone cost on this machine.
class FloorServer {
 public:
  ~FloorServer() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    for (std::thread& t : senders_) t.join();
    if (acceptor_.joinable()) acceptor_.join();
    for (int fd : fds_) ::close(fd);
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  // Listens on 127.0.0.1 (any port) and accepts `count` connections in
  // the background, answering each one's get-status.
  bool Listen(int count) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(listen_fd_, count + 16) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return false;
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this, count] {
      const char kReply[] = "{\"event\":\"status\",\"account\":\"account-1\"}";
      for (int i = 0; i < count; ++i) {
        int fd = accept(listen_fd_, nullptr, nullptr);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char c;
        while (recv(fd, &c, 1, 0) == 1 && c != '\0') {
        }
        send(fd, kReply, sizeof(kReply), MSG_NOSIGNAL);  // with its NUL
        fds_.push_back(fd);
      }
    });
    return true;
  }
  int port() const { return port_; }

  // Once the Listeners are connected: starts `senders` threads.
  void StartSenders(int senders) {
    acceptor_.join();
    for (int t = 0; t < senders; ++t) {
      const size_t begin = fds_.size() * t / senders, end = fds_.size() * (t + 1) / senders;
      senders_.emplace_back([this, begin, end] { SendLoop(begin, end); });
    }
  }

  // One round: every sender writes the frame to its connections.
  void Send() {
    absl::MutexLock lock(&mu_);
    ++round_;
  }

 private:
  void SendLoop(size_t begin, size_t end) {
    const std::string frame =
        std::string(
            "{\"event\":\"call-incoming\",\"account\":\"account-2\",\"call_id\":1234,"
            "\"caller\":\"3001\",\"caller_name\":\"\"}") +
        '\0';
    uint64_t done = 0;
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || round_ > done; };
        mu_.Await(absl::Condition(&ready));
        if (stop_) return;
        done = round_;
      }
      for (size_t i = begin; i < end; ++i) {
        send(fds_[i], frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::vector<int> fds_;  // the acceptor's until StartSenders, then read-only
  std::thread acceptor_;
  std::vector<std::thread> senders_;
  absl::Mutex mu_;  // leaf
  uint64_t round_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

// The listening clients: one epoll thread reads them all and records, per
// client, when a call-incoming frame arrived (0: not in this round).
// Thread: Connect/Arm/Arrivals on the main thread; Run on its own.
class Listeners {
 public:
  ~Listeners() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (Client& c : clients_) ::close(c.fd);
    if (epoll_ >= 0) ::close(epoll_);
  }

  bool Connect(int port, int count) {
    epoll_ = epoll_create1(0);
    clients_.resize(count);
    arrival_ = std::make_unique<std::atomic<int64_t>[]>(count);
    frames_ = std::make_unique<std::atomic<int>[]>(count);
    for (int i = 0; i < count; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(port));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        std::fprintf(stderr, "connect %d: %s\n", i, std::strerror(errno));
        return false;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      // One command each: its reply proves the connection has joined.
      const char kStatus[] = "{\"cmd\":\"get-status\",\"account\":\"account-1\"}";
      if (send(fd, kStatus, sizeof(kStatus), MSG_NOSIGNAL) != sizeof(kStatus)) return false;
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      clients_[i].fd = fd;
      arrival_[i] = 0;
      frames_[i] = 0;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(i);
      epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    }
    thread_ = std::thread([this] { Run(); });
    // Every client has had its reply: all are attached to the gateway.
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
      int ready = 0;
      for (int i = 0; i < count; ++i) ready += frames_[i].load() > 0 ? 1 : 0;
      if (ready == count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // setup only, not measured
    }
    std::fprintf(stderr, "not every client got its get-status reply\n");
    return false;
  }

  void Arm() {
    for (size_t i = 0; i < clients_.size(); ++i) arrival_[i].store(0);
    arrived_.store(0);
    absl::MutexLock lock(&mu_);
    all_arrived_ = false;
  }

  // Blocks (no spinning: the gateway needs the CPU) until every client has
  // the event or `timeout` has passed.
  void AwaitAll(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&all_arrived_), timeout);
  }

  // Waits (sleeping: setup, not measured) until every client has read at
  // least `frames` frames in all, or `timeout`; false at the timeout.
  bool AwaitFrames(int frames, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      bool all = true;
      for (size_t i = 0; i < clients_.size() && all; ++i) all = frames_[i].load() >= frames;
      if (all) return true;
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
  }

  // Adds a round that started at `start` (NowNs): its fan-out time (the
  // latest arrival) to `round_ms`, each client's latency to `client_ms`,
  // the clients without the event to `lost`.
  void Collect(int64_t start, std::vector<double>* round_ms, std::vector<double>* client_ms,
               int64_t* lost) const {
    int64_t latest = 0;
    for (size_t i = 0; i < clients_.size(); ++i) {
      const int64_t at = arrival_[i].load();
      if (at == 0) {
        ++*lost;
        continue;
      }
      latest = std::max(latest, at - start);
      client_ms->push_back(static_cast<double>(at - start) / 1e6);
    }
    round_ms->push_back(static_cast<double>(latest) / 1e6);
  }

  int arrived() const { return arrived_.load(); }
  int64_t arrival(size_t i) const { return arrival_[i].load(); }
  size_t size() const { return clients_.size(); }
  int closed() const { return closed_.load(); }

 private:
  struct Client {
    int fd = -1;
    std::string partial;  // the unfinished frame
    bool open = true;
  };

  void Run() {
    std::vector<epoll_event> events(1024);
    char buffer[65536];
    while (!stop_) {
      int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 50);
      for (int e = 0; e < n; ++e) {
        const uint32_t i = events[e].data.u32;
        Client& c = clients_[i];
        for (;;) {
          ssize_t got = recv(c.fd, buffer, sizeof(buffer), 0);
          if (got > 0) {
            const int64_t now = NowNs();
            Scan(i, c, absl::string_view(buffer, static_cast<size_t>(got)), now);
            if (static_cast<size_t>(got) < sizeof(buffer)) break;
            continue;
          }
          if (got < 0 && errno == EINTR) continue;
          if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          if (c.open) {
            c.open = false;
            closed_++;
            epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
          }
          break;
        }
      }
    }
  }

  void Scan(uint32_t i, Client& c, absl::string_view bytes, int64_t now) {
    size_t start = 0;
    for (;;) {
      size_t end = bytes.find('\0', start);
      if (end == absl::string_view::npos) {
        c.partial.append(bytes.data() + start, bytes.size() - start);
        return;
      }
      absl::string_view frame = bytes.substr(start, end - start);
      std::string joined;
      if (!c.partial.empty()) {
        joined = c.partial;
        joined.append(frame.data(), frame.size());
        c.partial.clear();
        frame = joined;
      }
      frames_[i]++;
      if (frame.find("\"call-incoming\"") != absl::string_view::npos) {
        int64_t expected = 0;
        if (arrival_[i].compare_exchange_strong(expected, now) &&
            arrived_.fetch_add(1) + 1 == static_cast<int>(clients_.size())) {
          absl::MutexLock lock(&mu_);
          all_arrived_ = true;
        }
      }
      start = end + 1;
    }
  }

  int epoll_ = -1;
  std::vector<Client> clients_;
  std::unique_ptr<std::atomic<int64_t>[]> arrival_;
  std::unique_ptr<std::atomic<int>[]> frames_;
  std::atomic<int> arrived_{0};
  absl::Mutex mu_;  // leaf
  bool all_arrived_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int> closed_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Prints one line of figures (fan-out per round, each client's latency).
void PrintFigures(const std::string& label, int count, const std::vector<double>& round_ms,
                  const std::vector<double>& client_ms, int64_t lost, int closed, int failures) {
  std::printf(
      "%-8s clients %d  rounds %zu  fan-out (all clients): median %.3f ms  p90 %.3f ms  p99 %.3f "
      "ms  max %.3f ms | per client: median %.3f ms  p99 %.3f ms | lost %lld  closed %d  "
      "failures %d\n",
      label.c_str(), count, round_ms.size(), Percentile(round_ms, 0.5), Percentile(round_ms, 0.9),
      Percentile(round_ms, 0.99),
      round_ms.empty() ? 0.0 : *std::max_element(round_ms.begin(), round_ms.end()),
      Percentile(client_ms, 0.5), Percentile(client_ms, 0.99), static_cast<long long>(lost), closed,
      failures);
  std::fflush(stdout);
}

// The floor with `senders` threads (FloorServer); 0 when every frame
// arrived in every round.
int RunFloor(int count, int senders, int rounds, int warmup, absl::Duration timeout) {
  FloorServer server;
  if (!server.Listen(count)) return 1;
  Listeners listeners;
  if (!listeners.Connect(server.port(), count)) return 1;
  server.StartSenders(senders);
  std::vector<double> round_ms, client_ms;
  int64_t lost = 0;
  for (int round = 0; round < warmup + rounds; ++round) {
    listeners.Arm();
    const int64_t start = NowNs();
    server.Send();
    listeners.AwaitAll(timeout);
    if (round >= warmup) {
      listeners.Collect(start, &round_ms, &client_ms, &lost);
    }
    // About as far apart as the gateway's rounds (set-up, hang-up).
    absl::SleepFor(absl::Milliseconds(5));
  }
  PrintFigures(absl::StrCat("floor-", senders), count, round_ms, client_ms, lost,
               listeners.closed(), 0);
  return lost == 0 ? 0 : 1;
}

int Main() {
  // 1,000 clients need more than the usual 1,024 descriptors, here and in
  // the gateway (which inherits the limit).
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);

  const int count = absl::GetFlag(FLAGS_clients);
  auto kamailio = KamailioProcess::Start();
  if (!kamailio.ok()) {
    std::fprintf(stderr, "kamailio: %s\n", kamailio.status().ToString().c_str());
    return 1;
  }
  GatewayOptions options = TwoAccounts((*kamailio)->server());
  options.tcp_settings = {absl::StrCat("max-clients = ", count + 16)};
  options.extra_args = {"--log_level=warn", "--mutex_deadlock_detection=false"};
  for (const std::string& flag : absl::GetFlag(FLAGS_gateway_flags)) {
    options.extra_args.push_back(flag);
  }
  auto gateway = GatewayProcess::Start(options);
  if (!gateway.ok()) {
    std::fprintf(stderr, "gateway: %s\n", gateway.status().ToString().c_str());
    return 1;
  }
  auto caller = NativeClient::Connect((*gateway)->native_port());
  if (!caller.ok()) return 1;
  NativeClient& a = **caller;
  a.Send(R"({"cmd":"subscribe","extended":true})");  // call-ringing
  if (WaitForAccountStatus(a, "account-1", 200) != 200 ||
      WaitForAccountStatus(a, "account-2", 200) != 200) {
    std::fprintf(stderr, "gateway accounts did not register\n");
    return 1;
  }
  Listeners listeners;
  if (!listeners.Connect((*gateway)->native_port(), count)) return 1;

  const int rounds = absl::GetFlag(FLAGS_rounds);
  const int warmup = absl::GetFlag(FLAGS_warmup);
  const auto timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_round_timeout_ms));
  const Clock::time_point stop_at =
      Clock::now() +
      std::chrono::microseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_max_seconds) * 1e6));
  // CPU time of each gateway thread over the measured rounds (utime +
  // stime, clock ticks), to see which thread pays for the fan-out.
  auto cpu_ticks = [&] {
    std::map<std::string, int64_t> ticks;
    for (const auto& [name, fields] : ThreadStats((*gateway)->process().pid())) {
      if (fields.size() > 12) ticks[name] += std::stoll(fields[11]) + std::stoll(fields[12]);
    }
    return ticks;
  };
  std::map<std::string, int64_t> cpu_before;
  std::vector<double> round_ms, client_ms;
  int64_t lost = 0;
  int failures = 0;
  int unsettled = 0;
  for (int round = 0; round < warmup + rounds && Clock::now() < stop_at; ++round) {
    listeners.Arm();
    const int64_t start = NowNs();
    a.Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
    listeners.AwaitAll(absl::FromChrono(timeout));
    auto reply = a.WaitFor([](const NativeEvent& e) { return e.event() == "call-return"; });
    auto incoming = a.WaitFor([](const NativeEvent& e) {
      return e.event() == "call-incoming" && e.Str("account") == "account-2";
    });
    if (!reply || !incoming) {
      std::fprintf(stderr, "round %d: no call-return or call-incoming\n", round);
      ++failures;
      break;
    }
    const int64_t caller_id = reply->Int("call_id");
    const int64_t callee_id = incoming->Int("call_id");
    if (round == warmup) cpu_before = cpu_ticks();
    if (round >= warmup) {
      listeners.Collect(start, &round_ms, &client_ms, &lost);
    }
    if (!a.WaitFor([&](const NativeEvent& e) {
          return e.event() == "call-ringing" && e.Int("call_id") == caller_id;
        })) {
      std::fprintf(stderr, "round %d: no call-ringing\n", round);
      ++failures;
      break;
    }
    a.Send(
        absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", caller_id, "}"));
    if (!a.WaitForAll({[&](const NativeEvent& e) {
                         return e.event() == "call-ended" && e.Int("call_id") == caller_id;
                       },
                       [&](const NativeEvent& e) {
                         return e.event() == "call-ended" && e.Int("call_id") == callee_id;
                       }})) {
      std::fprintf(stderr, "round %d: the calls did not both end\n", round);
      ++failures;
      break;
    }
    // The next round starts once this one's events (call-incoming and the
    // two call-ended) have reached every client, and the machine has been
    // quiet for a moment (as in the floor's rounds): each round measures
    // one broadcast, not the tail of the previous one.
    if (!listeners.AwaitFrames(1 + 3 * (round + 1), absl::Seconds(2))) ++unsettled;
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (unsettled > 0) std::fprintf(stderr, "%d rounds did not settle in 2 s\n", unsettled);
  PrintFigures(absl::GetFlag(FLAGS_label), count, round_ms, client_ms, lost, listeners.closed(),
               failures);
  const double tick_ms = 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::string cpu;
  for (const auto& [name, ticks] : cpu_ticks()) {
    const int64_t used = ticks - cpu_before[name];
    if (used > 0 && !round_ms.empty()) {
      absl::StrAppend(
          &cpu, "  ", name, " ",
          absl::StrFormat("%.2f", used * tick_ms / static_cast<double>(round_ms.size())));
    }
  }
  std::printf("%-8s gateway CPU per round (ms, by thread):%s\n", absl::GetFlag(FLAGS_label).c_str(),
              cpu.c_str());
  std::fflush(stdout);
  int floor_failures = 0;
  for (const std::string& senders : absl::GetFlag(FLAGS_floor_senders)) {
    int n = 0;
    if (!absl::SimpleAtoi(senders, &n) || n < 1 || n > 16) {
      std::fprintf(stderr, "--floor_senders: %s is not 1..16\n", senders.c_str());
      return 1;
    }
    floor_failures += RunFloor(count, n, rounds, warmup, absl::FromChrono(timeout));
  }
  return failures == 0 && lost == 0 && floor_failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace telestra::testing

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return telestra::testing::Main();
}
