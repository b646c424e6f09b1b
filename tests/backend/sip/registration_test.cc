// Registration (backend/sip/registration.cc) through SofiaSipStack's public
// face against a fake registrar on loopback: a UDP socket that answers each
// REGISTER as the test says.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "backend/sip/sofia_sip_stack.h"
#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

class NoMedia : public MediaEngine {
 public:
  absl::StatusOr<int> Open(int64_t, const MediaOptions&) override {
    return absl::ResourceExhaustedError("No RTP port available");
  }
  void Update(int64_t, const MediaParams&) override {}
  void Close(int64_t) override {}
  std::optional<MediaStats> Stats(int64_t) const override { return std::nullopt; }
  void SetTimeoutHandler(std::function<void(int64_t)>) override {}
  const std::string& local_address() const override { return address_; }
  size_t open_calls() const override { return 0; }

 private:
  std::string address_ = "127.0.0.1";
};

struct Report {
  int status;
  std::string reason;
  bool retrying;
};

// Records OnRegistration; the rest is unused here.
class RecordingListener : public SipStackListener {
 public:
  void OnRegistration(const std::string&, uint64_t, int status, const std::string& reason,
                      bool retrying) override {
    absl::MutexLock lock(&mu_);
    reports_.push_back({status, reason, retrying});
  }
  int64_t OnIncomingCall(const std::string&, const std::string&, const std::string&) override {
    return -1;
  }
  void OnCallRinging(int64_t, int) override {}
  void OnCallEstablished(int64_t) override {}
  void OnCallHold(int64_t, bool, bool) override {}
  void OnHoldResult(int64_t, bool, int, const std::string&) override {}
  void OnCallEnded(int64_t, int, const std::string&) override {}

  // Waits until a report with `status` came; returns it (status -1: none).
  Report WaitFor(int status, absl::Duration timeout = absl::Seconds(5)) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return Find(status) != nullptr; };
    mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
    const Report* r = Find(status);
    return r != nullptr ? *r : Report{-1, "", false};
  }
  std::vector<Report> reports() {
    absl::MutexLock lock(&mu_);
    return reports_;
  }

 private:
  const Report* Find(int status) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const Report& r : reports_) {
      if (r.status == status) return &r;
    }
    return nullptr;
  }
  absl::Mutex mu_;
  std::vector<Report> reports_ ABSL_GUARDED_BY(mu_);
};

// A registrar on 127.0.0.1 (UDP, any port). `answer` turns the n-th
// REGISTER (0-based) and its text into the status line plus extra headers
// of the response.
class FakeRegistrar {
 public:
  using Answer = std::function<std::string(int n, const std::string& request)>;

  explicit FakeRegistrar(Answer answer) : answer_(std::move(answer)) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeRegistrar() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }

  struct Request {
    std::string text;
    absl::Time at;
  };
  bool WaitForRequests(size_t n, absl::Duration timeout = absl::Seconds(5)) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return requests_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::vector<Request> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  void Serve() {
    char buffer[8192];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      ssize_t n =
          recvfrom(fd_, buffer, sizeof(buffer), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) continue;
      std::string request(buffer, static_cast<size_t>(n));
      if (!absl::StartsWith(request, "REGISTER ")) continue;
      int index;
      {
        absl::MutexLock lock(&mu_);
        index = static_cast<int>(requests_.size());
        requests_.push_back({request, absl::Now()});
      }
      std::string response = absl::StrCat("SIP/2.0 ", answer_(index, request), "\r\n");
      for (absl::string_view line : absl::StrSplit(request, "\r\n")) {
        for (const char* name : {"Via:", "v:", "From:", "f:", "Call-ID:", "i:", "CSeq:"}) {
          if (absl::StartsWithIgnoreCase(line, name)) absl::StrAppend(&response, line, "\r\n");
        }
        if (absl::StartsWithIgnoreCase(line, "To:") || absl::StartsWithIgnoreCase(line, "t:")) {
          absl::StrAppend(&response, line, absl::StrContains(line, "tag=") ? "" : ";tag=reg",
                          "\r\n");
        }
      }
      absl::StrAppend(&response, "Content-Length: 0\r\n\r\n");
      sendto(fd_, response.data(), response.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }

  Answer answer_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

constexpr char kChallenge[] =
    "401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"test\", nonce=\"n0nce\", "
    "algorithm=MD5, qop=\"auth\"";

bool HasAuthorization(const std::string& request) {
  return absl::StrContains(request, "\r\nAuthorization: Digest") &&
         absl::StrContains(request, "username=\"3001\"") &&
         absl::StrContains(request, "realm=\"test\"");
}

class RegistrationTest : public ::testing::Test {
 protected:
  void Start(FakeRegistrar::Answer answer, SipConfig config = SipConfig()) {
    registrar_ = std::make_unique<FakeRegistrar>(std::move(answer));
    config.port = 0;
    stack_ = std::make_unique<SofiaSipStack>(config, RtpConfig(), &media_);
    ASSERT_TRUE(stack_->Start(&listener_).ok());
    account_.name = "account-1";
    account_.user = "3001";
    account_.password = "secret";
    account_.server = absl::StrCat("127.0.0.1:", registrar_->port());
    stack_->Register(account_, 1);
  }
  void TearDown() override {
    stack_.reset();  // before the registrar: shutdown unregisters
    registrar_.reset();
  }

  NoMedia media_;
  RecordingListener listener_;
  AccountConfig account_;
  std::unique_ptr<FakeRegistrar> registrar_;
  std::unique_ptr<SofiaSipStack> stack_;
};

TEST_F(RegistrationTest, AChallengeIsAnsweredOnceThenTheAccountIsRegistered) {
  Start([](int, const std::string& request) {
    return HasAuthorization(request) ? std::string("200 OK\r\nExpires: 300") : kChallenge;
  });
  Report ok = listener_.WaitFor(200);
  ASSERT_EQ(ok.status, 200);
  std::vector<FakeRegistrar::Request> requests = registrar_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_FALSE(HasAuthorization(requests[0].text));
  EXPECT_TRUE(HasAuthorization(requests[1].text));
  EXPECT_EQ(listener_.reports().front().status, 100);  // "Registering" first
}

TEST_F(RegistrationTest, ASecondChallengeIsReportedAndNotRetried) {
  Start([](int, const std::string&) { return std::string(kChallenge); });
  Report failed = listener_.WaitFor(401);
  ASSERT_EQ(failed.status, 401);
  EXPECT_FALSE(failed.retrying);
  absl::SleepFor(absl::Milliseconds(500));  // nothing more may come
  EXPECT_EQ(registrar_->requests().size(), 2u);
}

TEST_F(RegistrationTest, TheBindingIsRefreshedAtHalfItsGrantedLifetime) {
  Start([](int, const std::string&) { return std::string("200 OK\r\nExpires: 2"); });
  ASSERT_TRUE(registrar_->WaitForRequests(2, absl::Seconds(4)));
  std::vector<FakeRegistrar::Request> requests = registrar_->requests();
  absl::Duration gap = requests[1].at - requests[0].at;
  EXPECT_GE(gap, absl::Milliseconds(900));
  EXPECT_LE(gap, absl::Milliseconds(1600));
}

TEST_F(RegistrationTest, ATransientFailureIsRetriedAfterTheBackoff) {
  SipConfig config;
  config.register_retry_min = 1;
  Start(
      [](int n, const std::string&) {
        return n == 0 ? std::string("503 Service Unavailable") : std::string("200 OK");
      },
      config);
  Report failed = listener_.WaitFor(503);
  ASSERT_EQ(failed.status, 503);
  EXPECT_TRUE(failed.retrying);
  ASSERT_EQ(listener_.WaitFor(200).status, 200);
  std::vector<FakeRegistrar::Request> requests = registrar_->requests();
  ASSERT_GE(requests.size(), 2u);
  absl::Duration gap = requests[1].at - requests[0].at;
  EXPECT_GE(gap, absl::Milliseconds(750));   // 1 s -20%
  EXPECT_LE(gap, absl::Milliseconds(1700));  // 1 s +20%, and scheduling
}

TEST_F(RegistrationTest, UnregisterSendsExpiresZeroAndReportsLoggedOut) {
  Start([](int, const std::string&) { return std::string("200 OK\r\nExpires: 300"); });
  ASSERT_EQ(listener_.WaitFor(200).status, 200);
  stack_->Unregister(account_.name, 2);
  Report out = listener_.WaitFor(0);
  ASSERT_EQ(out.status, 0);
  EXPECT_EQ(out.reason, "Logged out");
  std::vector<FakeRegistrar::Request> requests = registrar_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_TRUE(absl::StrContains(requests[1].text, "\r\nExpires: 0\r\n"));
}

}  // namespace
}  // namespace telestra::backend
