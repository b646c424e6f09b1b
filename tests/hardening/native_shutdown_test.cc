// Shutdown and native clients that are behind (issue 17, section 5;
// docs/reliability.md): on SIGTERM the gateway writes out the events already
// queued for a slow native client, its call-ended among them, before it
// closes the connection; a client that does not read at all holds the
// shutdown no longer than --shutdown_seconds.
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/hardening/hardening_support.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"

namespace telestra::testing {
namespace {

// get-status with an 8 KiB token: each reply is about as large.
std::string BigGetStatus(int i) {
  return absl::StrCat(R"({"cmd":"get-status","account":"account-1","token":")", i, "-",
                      std::string(8192, 't'), R"("})", std::string(1, '\0'));
}

// The gateway's side of the TCP connection whose client end is `client_port`
// (/proc/net/tcp): bytes in its send queue, and bytes received that it has
// not read yet; -1 when not found.
struct GatewaySide {
  int64_t unsent = -1;
  int64_t unread = -1;
};
GatewaySide GatewaySideOf(int native_port, int client_port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  const std::string local =
      absl::StrCat(":", absl::AsciiStrToUpper(absl::StrFormat("%04x", native_port)));
  const std::string remote =
      absl::StrCat(":", absl::AsciiStrToUpper(absl::StrFormat("%04x", client_port)));
  while (std::getline(in, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 5 || !absl::EndsWith(fields[1], local) ||
        !absl::EndsWith(fields[2], remote)) {
      continue;
    }
    std::vector<std::string> queues = absl::StrSplit(fields[4], ':');
    GatewaySide side;
    if (queues.size() != 2 || !absl::SimpleHexAtoi(queues[0], &side.unsent) ||
        !absl::SimpleHexAtoi(queues[1], &side.unread)) {
      return GatewaySide();
    }
    return side;
  }
  return GatewaySide();
}

int LocalPort(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) return -1;
  return ntohs(address.sin_port);
}

// Puts `slow` (which does not read) behind: sends it big get-status in
// batches until the gateway's socket send buffer is full (its send queue
// stops growing), then `extra` more, whose replies (about 8 KiB each) wait in
// the gateway's own queue for that client. Returns how many it sent.
int FallBehind(RawConnection& slow, int native_port, int extra) {
  constexpr int kBatch = 16;
  const int client_port = LocalPort(slow.fd());
  int sent = 0;
  int64_t unsent_before = -1;
  int extra_left = -1;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    for (int i = 0; i < kBatch; ++i) {
      if (!slow.Send(BigGetStatus(sent))) return -1;
      ++sent;
    }
    // Until the gateway has read (and so answered) every request.
    GatewaySide side;
    for (;;) {
      int in_flight = -1;
      ioctl(slow.fd(), SIOCOUTQ, &in_flight);
      side = GatewaySideOf(native_port, client_port);
      if ((in_flight == 0 && side.unread == 0) || absl::Now() > deadline) break;
      absl::SleepFor(absl::Milliseconds(5));
    }
    if (side.unsent < 0) return -1;
    if (extra_left >= 0) {
      extra_left -= kBatch;
      if (extra_left <= 0) return sent;
    } else if (side.unsent == unsent_before) {
      extra_left = extra;  // the kernel takes no more: the rest queues in the gateway
    }
    unsent_before = side.unsent;
  }
  return -1;
}

// A call is up; a second client does not read: its socket buffers are full
// and 1.3 MB more of replies wait in the gateway's queue for it. SIGTERM:
// the call ends (call-ended is queued behind those replies); once
// the gateway closes the up-to-date client (the native port's shutdown has
// begun), the slow one starts reading and still gets everything, call-ended
// for both legs last, and then the end of the stream. Before the fix the
// slow client's queue was dropped at that point: it read only what the
// kernel's socket buffers held, without call-ended.
TEST(NativeShutdownTest, ASlowClientStillGetsItsQueuedEventsAndCallEnded) {
  GatewayOptions options;
  options.extra_args = {"--shutdown_seconds=5"};
  auto started = StartWithOwnRegistrar(options);
  ASSERT_TRUE(started.ok()) << started.status();
  auto& gateway = started->gateway;
  auto client = NativeClient::Connect(gateway->native_port());
  ASSERT_TRUE(client.ok()) << client.status();
  int64_t caller = -1, callee = -1;
  absl::Status call = EstablishCall(**client, &caller, &callee);
  ASSERT_TRUE(call.ok()) << call << gateway->ReadLog();

  RawConnection::Options small;
  small.receive_buffer = 4096;
  auto slow = RawConnection::Connect(gateway->native_port(), small);
  ASSERT_TRUE(slow.ok()) << slow.status();
  const int requests = FallBehind(**slow, gateway->native_port(), 160);
  ASSERT_GT(requests, 0) << "could not fill the slow client's buffers";
  // The other client is served: the slow one's backlog is its own.
  (*client)->Send(R"({"cmd":"get-status","account":"account-1","token":"ok"})");
  ASSERT_TRUE((*client)->WaitFor([](const NativeEvent& e) { return e.Str("token") == "ok"; }));

  const absl::Time start = absl::Now();
  ASSERT_EQ(kill(gateway->process().pid(), SIGTERM), 0);
  auto ended = [](const std::string& account, int64_t id) {
    return [account, id](const NativeEvent& e) {
      return e.event() == "call-ended" && e.Str("account") == account && e.Int("call_id") == id;
    };
  };
  ASSERT_TRUE((*client)->WaitForAll({ended("account-1", caller), ended("account-2", callee)},
                                    absl::Seconds(6)))
      << gateway->ReadLog();
  // The up-to-date client is closed as soon as the native port shuts down.
  EXPECT_FALSE((*client)->Next(absl::Seconds(6)).has_value());
  ASSERT_TRUE((*client)->closed());

  // Now the slow client reads.
  bool closed = false;
  const std::string bytes = (*slow)->ReadUntilClosed(absl::Seconds(10), &closed);
  EXPECT_TRUE(closed);
  const std::vector<std::string> events = SplitEvents(bytes);
  int statuses = 0;
  std::vector<std::string> calls_ended;
  for (const std::string& event : events) {
    if (absl::StartsWith(event, R"({"event":"status")")) ++statuses;
    if (absl::StartsWith(event, R"({"event":"call-ended")")) calls_ended.push_back(event);
  }
  EXPECT_EQ(statuses, requests);
  EXPECT_EQ(calls_ended.size(), 2u)
      << "read " << bytes.size() << " bytes, " << events.size() << " events\n"
      << gateway->ReadLog();
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(absl::StartsWith(events.back(), R"({"event":"call-ended")")) << events.back();

  auto exit_status = gateway->process().WaitForExit(start + absl::Seconds(7));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);
  std::cout << "SIGTERM with a client " << requests << " replies behind: it read " << bytes.size()
            << " bytes, " << events.size() << " events (call-ended last); the gateway exited after "
            << absl::Now() - start << "\n";
}

// Clients that are up to date do not make the shutdown wait for its
// deadline: --shutdown_seconds=8, an idle client and one that just got its
// reply; the gateway exits well before 8 s. (An idle client's session, read
// on the SIP thread, ends with that thread's watches; the native port once
// waited for it until the deadline.)
TEST(NativeShutdownTest, UpToDateClientsDoNotHoldShutdownUntilTheDeadline) {
  GatewayOptions options = OneIdleAccount();
  options.extra_args = {"--shutdown_seconds=8"};
  auto gateway = GatewayProcess::Start(options);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  auto idle = NativeClient::Connect((*gateway)->native_port());
  ASSERT_TRUE(idle.ok()) << idle.status();
  auto active = NativeClient::Connect((*gateway)->native_port());
  ASSERT_TRUE(active.ok()) << active.status();
  (*active)->Send(R"({"cmd":"get-status","account":"account-1"})");
  ASSERT_TRUE((*active)->Next().has_value());

  const absl::Time start = absl::Now();
  ASSERT_EQ(kill((*gateway)->process().pid(), SIGTERM), 0);
  auto exit_status = (*gateway)->process().WaitForExit(start + absl::Seconds(10));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);
  const absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Seconds(6)) << (*gateway)->ReadLog();
  EXPECT_FALSE(absl::StrContains((*gateway)->ReadLog(), "still had events to write"));
  EXPECT_FALSE((*idle)->Next(absl::Seconds(1)).has_value());
  EXPECT_TRUE((*idle)->closed());
  std::cout << "SIGTERM with two up-to-date clients, --shutdown_seconds=8: exit 0 after " << took
            << "\n";
}

// A client that never reads: the gateway gives up on it at the shutdown
// deadline (--shutdown_seconds=2 from the signal) and exits 0.
TEST(NativeShutdownTest, AClientThatNeverReadsHoldsShutdownNoLongerThanTheDeadline) {
  GatewayOptions options = OneIdleAccount();
  options.extra_args = {"--shutdown_seconds=2"};
  auto gateway = GatewayProcess::Start(options);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  RawConnection::Options small;
  small.receive_buffer = 4096;
  auto slow = RawConnection::Connect((*gateway)->native_port(), small);
  ASSERT_TRUE(slow.ok()) << slow.status();
  ASSERT_GT(FallBehind(**slow, (*gateway)->native_port(), 160), 0);

  const absl::Time start = absl::Now();
  ASSERT_EQ(kill((*gateway)->process().pid(), SIGTERM), 0);
  // The native port gives up on the client at the deadline (and says so).
  absl::Duration gave_up = absl::InfiniteDuration();
  while (absl::Now() - start < absl::Seconds(5)) {
    const std::string log = (*gateway)->ReadLog();
    if (absl::StrContains(log, "still unwritten at the close deadline") ||
        absl::StrContains(log, "clients still had events to write")) {
      gave_up = absl::Now() - start;
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GT(gave_up, absl::Seconds(1.5)) << (*gateway)->ReadLog();  // it waited for the client ...
  EXPECT_LT(gave_up, absl::Seconds(2.5)) << (*gateway)->ReadLog();  // ... until the deadline
  // (The process then takes up to 2 s more: the metrics server's teardown.)
  auto exit_status = (*gateway)->process().WaitForExit(start + absl::Seconds(6));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);
  std::cout << "SIGTERM with a client that never reads, --shutdown_seconds=2: the native port "
               "closed it after "
            << gave_up << "; exit 0 after " << absl::Now() - start << "\n";
}

}  // namespace
}  // namespace telestra::testing
