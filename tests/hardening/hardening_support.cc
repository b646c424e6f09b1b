#include "tests/hardening/hardening_support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/support/loopback_socket.h"

namespace telestra::testing {

absl::StatusOr<std::unique_ptr<RawConnection>> RawConnection::Connect(int port,
                                                                      const Options& options) {
  absl::StatusOr<int> fd = ConnectLoopback(port, {options.source, options.receive_buffer});
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<RawConnection>(new RawConnection(*fd));
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) close(fd_);
}

bool RawConnection::Send(const std::string& bytes) { return SendAll(fd_, bytes); }

ssize_t RawConnection::SendSome(const std::string& bytes) {
  ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n >= 0) return n;
  return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
}

std::string RawConnection::ReadUntilClosed(absl::Duration timeout, bool* closed) {
  std::string out;
  *closed = false;
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const ReadResult read = ReadSome(fd_, deadline, &out);
    if (read == ReadResult::kTimedOut) return out;
    if (read == ReadResult::kClosed) {
      *closed = true;
      return out;
    }
  }
}

void RawConnection::Reset() {
  linger option{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
  close(fd_);
  fd_ = -1;
}

std::vector<std::string> SplitEvents(const std::string& bytes) {
  std::vector<std::string> events;
  size_t start = 0;
  for (size_t nul = bytes.find('\0'); nul != std::string::npos; nul = bytes.find('\0', start)) {
    events.push_back(bytes.substr(start, nul - start));
    start = nul + 1;
  }
  return events;
}

int CountOpenFds(pid_t pid) {
  DIR* dir = opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count;
}

int64_t ResidentKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "VmRSS:")) {
      rest = absl::StripAsciiWhitespace(rest);
      absl::ConsumeSuffix(&rest, "kB");
      int64_t kib = -1;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kib)) return kib;
    }
  }
  return -1;
}

absl::Duration CpuTime(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which is in parentheses): utime is the
  // 14th field of the line, stime the 15th.
  const size_t close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return absl::ZeroDuration();
  std::vector<std::string> fields =
      absl::StrSplit(text.substr(close_paren + 2), ' ', absl::SkipEmpty());
  if (fields.size() < 13) return absl::ZeroDuration();
  int64_t utime = 0, stime = 0;
  if (!absl::SimpleAtoi(fields[11], &utime) || !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::ZeroDuration();
  }
  const long ticks = sysconf(_SC_CLK_TCK);
  return absl::Milliseconds((utime + stime) * 1000 / (ticks > 0 ? ticks : 100));
}

bool SendUdp(int port, const std::string& payload) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ssize_t n = sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr),
                     sizeof(addr));
  close(fd);
  return n == static_cast<ssize_t>(payload.size());
}

std::string PseudoRandomBytes(size_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

std::string UniqueString(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return absl::StrCat(prefix, getpid(), "x", absl::ToUnixMicros(absl::Now()) % 1000000007, "n",
                      counter++);
}

absl::Duration Percentile(std::vector<absl::Duration>& samples, double percentile) {
  if (samples.empty()) return absl::ZeroDuration();
  std::sort(samples.begin(), samples.end());
  size_t index = static_cast<size_t>(percentile / 100.0 * (samples.size() - 1) + 0.5);
  return samples[std::min(index, samples.size() - 1)];
}

absl::Status EstablishCall(NativeClient& client, int64_t* caller_id, int64_t* callee_id) {
  if (WaitForAccountStatus(client, "account-1", 200) != 200 ||
      WaitForAccountStatus(client, "account-2", 200) != 200) {
    return absl::UnavailableError("the accounts did not register");
  }
  const std::string token = UniqueString("call-");
  client.Send(absl::StrCat(R"({"cmd":"make-call","account":"account-1","num":"3002","token":")",
                           token, R"("})"));
  auto call_return = client.WaitFor(
      [&](const NativeEvent& e) { return e.event() == "call-return" && e.Str("token") == token; });
  if (!call_return) return absl::UnavailableError("no call-return");
  *caller_id = call_return->Int("call_id");
  auto incoming = client.WaitFor([](const NativeEvent& e) {
    return e.event() == "call-incoming" && e.Str("account") == "account-2";
  });
  if (!incoming) return absl::UnavailableError("no call-incoming");
  *callee_id = incoming->Int("call_id");
  client.Send(
      absl::StrCat(R"({"cmd":"answer-call","account":"account-2","call_id":)", *callee_id, "}"));
  auto is_answered = [](const std::string& account, int64_t id) {
    return [account, id](const NativeEvent& e) {
      return e.event() == "call-answered" && e.Str("account") == account && e.Int("call_id") == id;
    };
  };
  if (!client.WaitForAll(
          {is_answered("account-1", *caller_id), is_answered("account-2", *callee_id)})) {
    return absl::UnavailableError("the call was not answered");
  }
  return absl::OkStatus();
}

void ExpectReplies(const std::vector<NativeEvent>& got, const std::vector<ExpectedReply>& expect,
                   bool want_seq) {
  ASSERT_EQ(got.size(), expect.size()) << [&] {
    std::string all;
    for (const NativeEvent& e : got) absl::StrAppend(&all, e.json, "\n");
    return all;
  }();
  for (size_t i = 0; i < got.size(); ++i) {
    const ExpectedReply& want = expect[i];
    const NativeEvent& e = got[i];
    EXPECT_EQ(e.event(), want.event) << e.json;
    if (want_seq) EXPECT_TRUE(e.Has("seq")) << e.json;
    if (want.event == "fail") {
      if (want.prefix) {
        EXPECT_TRUE(absl::StartsWith(e.Str("error"), want.error)) << e.json;
      } else {
        EXPECT_EQ(e.Str("error"), want.error) << e.json;
      }
    }
    if (want.account) {
      EXPECT_EQ(e.Str("account"), *want.account) << e.json;
    }
    if (want.token) {
      EXPECT_EQ(e.Str("token"), *want.token) << e.json;
    }
  }
}

void PrintLogTail(GatewayProcess& gateway) {
  std::string log = gateway.ReadLog();
  std::cerr << "gateway log (tail):\n" << log.substr(log.size() > 8000 ? log.size() - 8000 : 0);
}

}  // namespace telestra::testing
