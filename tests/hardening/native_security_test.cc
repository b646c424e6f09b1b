// The native port against a hostile network (issue 17, section 2;
// docs/reliability.md "Security (issue 17)"): HTTP requests (a browser page's
// cross-site POST) are closed at once, counted and logged and their body
// never runs; `[tcp-settings] token` makes every connection authenticate
// first; TLS; `idle-timeout`. No registrar is needed: the account does not
// register.
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/asio/write.hpp"
#include "gtest/gtest.h"
#include "tests/hardening/hardening_support.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_certificate.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

namespace asio = boost::asio;

GatewayOptions OneIdleAccountWith(std::vector<std::string> tcp_settings) {
  GatewayOptions options = OneIdleAccount();
  options.tcp_settings = std::move(tcp_settings);
  return options;
}

int Occurrences(const std::string& text, const std::string& what) {
  int count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

std::string Auth(const std::string& secret, const std::string& token) {
  return absl::StrCat(R"({"cmd":"auth","secret":")", secret, R"(","token":")", token, R"("})");
}

std::string GetStatus(const std::string& token) {
  return absl::StrCat(R"({"cmd":"get-status","account":"account-1","token":")", token, R"("})");
}

// A login that, if it ran, would start a registration (account_status 100).
constexpr char kLogin[] =
    R"({"cmd":"login","account":"account-1","user":"3001","pass":"sip3001","server":"127.0.0.1:9"})";

int AccountStatus(NativeClient& client) {
  client.Send(GetStatus("as"));
  auto status = client.WaitFor(
      [](const NativeEvent& e) { return e.event() == "status" && e.Str("token") == "as"; });
  return status ? static_cast<int>(status->Int("account_status")) : -1;
}

// ---- HTTP on the native port

// A page of any web site can make the browser POST to 127.0.0.1:3550 (a
// "simple" cross-origin request: no preflight); the framer used to skip the
// request line and headers as garbage and run the body. Now the first line
// closes the connection: nothing is answered, the body never runs.
TEST(NativeSecurityTest, HttpRequestsAreClosedAtOnceCountedLoggedAndTheirBodyNeverRuns) {
  auto gateway = StartGatewayProcess(OneIdleAccountWith({}));
  ASSERT_NE(gateway, nullptr);
  const int port = gateway->native_port();

  // A real HTTP request (the harness's HTTP client) gets no HTTP answer.
  EXPECT_FALSE(HttpGet(port, "/").ok());

  // A browser's cross-site POST whose body is a login.
  auto post = RawConnection::Connect(port);
  ASSERT_TRUE(post.ok()) << post.status();
  const absl::Time start = absl::Now();
  ASSERT_TRUE((*post)->Send(
      absl::StrCat("POST / HTTP/1.1\r\nHost: 127.0.0.1:", port,
                   "\r\nOrigin: http://evil.example\r\nContent-Type: text/plain;charset=UTF-8\r\n"
                   "Content-Length: ",
                   sizeof(kLogin) - 1, "\r\n\r\n", kLogin)));
  bool closed = false;
  const std::string answer = (*post)->ReadUntilClosed(absl::Seconds(5), &closed);
  const absl::Duration to_close = absl::Now() - start;
  EXPECT_TRUE(closed);
  EXPECT_EQ(answer, "") << "the gateway answered an HTTP request";
  EXPECT_LT(to_close, absl::Seconds(1));

  // The login did not run: the account is still logged out.
  auto client = ConnectNative(*gateway);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(AccountStatus(*client), 0);
  EXPECT_EQ(Metric(*gateway, "telestra_native_http_closed_total"), 2);
  const std::string log = gateway->ReadLog();
  EXPECT_EQ(Occurrences(log, "it sent an HTTP request"), 2) << log;
  std::cout << "HTTP POST on the native port: closed after " << to_close << "\n";
}

// ---- [tcp-settings] token

TEST(NativeSecurityTest, WithATokenNothingRunsAndNoEventArrivesBeforeAuth) {
  const std::string secret = UniqueString("native-secret-");
  auto gateway =
      StartGatewayProcess(OneIdleAccountWith({"token = " + secret, "extended-events = true"}));
  ASSERT_NE(gateway, nullptr);

  auto stranger = ConnectNative(*gateway);
  ASSERT_NE(stranger, nullptr);
  stranger->Send(kLogin);
  stranger->Send(GetStatus("u1"));
  auto refused = stranger->Next();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->json, R"({"event":"fail","account":"account-1","error":"Not authenticated"})");
  refused = stranger->Next();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->json,
            R"({"event":"fail","account":"account-1","error":"Not authenticated","token":"u1"})");

  auto member = ConnectNative(*gateway);
  ASSERT_NE(member, nullptr);
  member->Send(Auth(secret, "a1"));
  auto authenticated = member->Next();
  ASSERT_TRUE(authenticated.has_value());
  EXPECT_EQ(authenticated->json, R"({"event":"authenticated","token":"a1"})");
  // The stranger's login did not run.
  EXPECT_EQ(AccountStatus(*member), 0);
  // A broadcast (the registration that this login starts) reaches the
  // authenticated client only.
  member->Send(kLogin);
  EXPECT_TRUE(member->WaitFor([](const NativeEvent& e) { return e.event() == "account-status"; }))
      << gateway->ReadLog();

  // The stranger authenticates: the reply is the first thing it gets after
  // its two fails (no broadcast reached it before), then it is served.
  stranger->Send(Auth(secret, "u2"));
  auto first = stranger->Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->json, R"({"event":"authenticated","token":"u2"})");
  stranger->Send(GetStatus("u3"));  // (broadcasts of the registration may come first)
  auto status = stranger->WaitFor([](const NativeEvent& e) { return e.Str("token") == "u3"; });
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->event(), "status");
  EXPECT_EQ(status->Str("token"), "u3");
  EXPECT_TRUE(status->Has("seq"));
  // auth again on an authenticated connection: authenticated again (after
  // the broadcasts of the registration, which go on meanwhile).
  stranger->Send(Auth("anything", "u4"));
  auto again = stranger->WaitFor([](const NativeEvent& e) { return e.Str("token") == "u4"; });
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->json, R"({"event":"authenticated","token":"u4"})");

  EXPECT_FALSE(absl::StrContains(gateway->ReadLog(), secret)) << "the secret was logged";
  EXPECT_EQ(Metric(*gateway, "telestra_native_unauthenticated_total"), 0);
}

TEST(NativeSecurityTest, ThreeMessagesWithoutAuthCloseTheConnection) {
  const std::string secret = UniqueString("native-secret-");
  const std::string wrong = UniqueString("wrong-secret-");
  auto gateway = StartGatewayProcess(OneIdleAccountWith({"token = " + secret}));
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectNative(*gateway);
  ASSERT_NE(client, nullptr);
  // Three failures: a command, garbage, a wrong secret. Each gets the fail.
  client->Send(GetStatus("t1"));
  client->SendRaw("hello\n");
  client->Send(Auth(wrong, "t3"));
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) {
    auto event = client->Next();
    ASSERT_TRUE(event.has_value()) << i;
    got.push_back(event->json);
  }
  EXPECT_EQ(
      got, (std::vector<std::string>{
               R"({"event":"fail","account":"account-1","error":"Not authenticated","token":"t1"})",
               R"({"event":"fail","account":"","error":"Not authenticated"})",
               R"({"event":"fail","account":"","error":"Not authenticated","token":"t3"})"}));
  // Then the connection is closed.
  EXPECT_FALSE(client->Next(absl::Seconds(5)).has_value());
  EXPECT_TRUE(client->closed());
  EXPECT_EQ(Metric(*gateway, "telestra_native_unauthenticated_total"), 1);
  const std::string log = gateway->ReadLog();
  EXPECT_TRUE(absl::StrContains(log, "sent 3 messages without authenticating")) << log;
  EXPECT_FALSE(absl::StrContains(log, wrong)) << "a presented secret was logged";
  EXPECT_FALSE(absl::StrContains(log, secret)) << "the secret was logged";
}

TEST(NativeSecurityTest, AConnectionThatNeverAuthenticatesIsClosedAfterTenSeconds) {
  auto gateway =
      StartGatewayProcess(OneIdleAccountWith({"token = " + UniqueString("native-secret-")}));
  ASSERT_NE(gateway, nullptr);
  auto silent = RawConnection::Connect(gateway->native_port());
  ASSERT_TRUE(silent.ok()) << silent.status();
  // One that sends half a message is no different.
  auto partial = RawConnection::Connect(gateway->native_port());
  ASSERT_TRUE(partial.ok()) << partial.status();
  const absl::Time start = absl::Now();
  ASSERT_TRUE((*partial)->Send(R"({"cmd":"auth","secr)"));
  bool closed = false;
  EXPECT_EQ((*silent)->ReadUntilClosed(absl::Seconds(15), &closed), "");
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(closed);
  EXPECT_GT(took, absl::Seconds(9.5));
  EXPECT_LT(took, absl::Seconds(12));
  EXPECT_EQ((*partial)->ReadUntilClosed(absl::Seconds(2), &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_EQ(Metric(*gateway, "telestra_native_unauthenticated_total"), 2);
  EXPECT_EQ(Metric(*gateway, "telestra_native_clients"), 0);
  std::cout << "a connection without auth was closed after " << took << "\n";
}

TEST(NativeSecurityTest, WithoutATokenLegacyClientsNeedNoAuthAndAuthIsAnswered) {
  auto gateway = StartGatewayProcess(OneIdleAccountWith({}));
  ASSERT_NE(gateway, nullptr);
  auto client = ConnectNative(*gateway);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(AccountStatus(*client), 0);
  client->Send(Auth("any", "a"));
  auto reply = client->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->json, R"({"event":"authenticated","token":"a"})");
  client->Send(R"({"cmd":"auth"})");
  reply = client->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->json, R"({"event":"fail","account":"","error":"Missing field: secret"})");
}

// ---- TLS

// A TLS client of the native port (Boost.Asio, certificate not verified).
class TlsNativeClient {
 public:
  explicit TlsNativeClient(int port) : tls_(asio::ssl::context::tls_client), stream_(io_, tls_) {
    tls_.set_verify_mode(asio::ssl::verify_none);
    asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"),
                                     static_cast<uint16_t>(port));
    stream_.lowest_layer().connect(endpoint, error_);
    if (!error_) stream_.handshake(asio::ssl::stream_base::client, error_);
  }
  boost::system::error_code error() const { return error_; }

  bool Send(const std::string& json) {
    const std::string framed = json + '\0';
    asio::write(stream_, asio::buffer(framed), error_);
    return !error_;
  }

  // The next event's JSON; nullopt on timeout or when the server closed.
  std::optional<std::string> Next(absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time deadline = absl::Now() + timeout;
    size_t nul;
    while ((nul = buffer_.find('\0')) == std::string::npos) {
      bool done = false;
      size_t n = 0;
      boost::system::error_code ec;
      stream_.async_read_some(asio::buffer(chunk_), [&](boost::system::error_code e, size_t k) {
        ec = e;
        n = k;
        done = true;
      });
      io_.restart();
      io_.run_for(
          absl::ToChronoMilliseconds(std::max(deadline - absl::Now(), absl::ZeroDuration())));
      if (!done) {
        stream_.lowest_layer().cancel();
        io_.restart();
        io_.run();
        return std::nullopt;
      }
      if (ec) return std::nullopt;
      buffer_.append(chunk_.data(), n);
    }
    std::string event = buffer_.substr(0, nul);
    buffer_.erase(0, nul + 1);
    return event;
  }

 private:
  asio::io_context io_;
  asio::ssl::context tls_;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  boost::system::error_code error_;
  std::array<char, 16384> chunk_;
  std::string buffer_;
};

TEST(NativeSecurityTest, ServesTlsWithTheConfiguredCertificateAndRefusesPlaintext) {
  auto made = MakeSelfSignedCertificate(TestTempDir(), "native");
  ASSERT_TRUE(made.ok()) << made.status();
  const std::string cert = made->cert_path;
  const std::string key = made->key_path;

  const std::string secret = UniqueString("native-secret-");
  auto gateway = StartGatewayProcess(OneIdleAccountWith(
      {"cert = " + cert, "key = " + key, "token = " + secret, "extended-events = true"}));
  ASSERT_NE(gateway, nullptr);
  TlsNativeClient client(gateway->native_port());
  ASSERT_FALSE(client.error()) << client.error().message();
  ASSERT_TRUE(client.Send(Auth(secret, "t1")));
  EXPECT_EQ(client.Next(), std::optional<std::string>(R"({"event":"authenticated","token":"t1"})"));
  ASSERT_TRUE(client.Send(GetStatus("t2")));
  std::optional<std::string> status = client.Next();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(absl::StartsWith(*status, R"({"event":"status","account":"account-1")")) << *status;
  EXPECT_TRUE(absl::StrContains(*status, R"("token":"t2")")) << *status;
  // A broadcast over TLS.
  ASSERT_TRUE(client.Send(kLogin));
  std::optional<std::string> event;
  for (int i = 0; i < 5; ++i) {
    event = client.Next();
    if (!event || absl::StartsWith(*event, R"({"event":"account-status")")) break;
  }
  ASSERT_TRUE(event.has_value()) << gateway->ReadLog();
  EXPECT_TRUE(absl::StartsWith(*event, R"({"event":"account-status","account":"account-1")"))
      << *event;

  // Plaintext on the TLS port gets nothing and is closed.
  auto plain = ConnectNative(*gateway);
  ASSERT_NE(plain, nullptr);
  plain->Send(GetStatus("p"));
  EXPECT_FALSE(plain->Next(absl::Seconds(5)).has_value());
  EXPECT_TRUE(plain->closed());
  EXPECT_EQ(Metric(*gateway, "telestra_native_tls_failures_total"), 1);
  EXPECT_FALSE(absl::StrContains(gateway->ReadLog(), secret));
}

// ---- idle-timeout

// `idle-timeout = 2`: a connection is closed once it has sent no complete
// message for 2 s (half a message does not count; a client that never
// sends anything goes the same way); one that sends a command now and then
// stays.
TEST(NativeSecurityTest, IdleTimeoutClosesConnectionsWithoutACompleteMessage) {
  auto gateway = StartGatewayProcess(OneIdleAccountWith({"idle-timeout = 2"}));
  ASSERT_NE(gateway, nullptr);
  auto busy = ConnectNative(*gateway);
  auto quiet = ConnectNative(*gateway);
  ASSERT_NE(busy, nullptr);
  ASSERT_NE(quiet, nullptr);
  auto silent = RawConnection::Connect(gateway->native_port());
  ASSERT_TRUE(silent.ok()) << silent.status();
  ASSERT_EQ(AccountStatus(*quiet), 0);
  const absl::Time last_complete = absl::Now();
  ASSERT_TRUE(quiet->SendRaw(R"({"cmd":"get-st)"));
  // The busy client sends a command every 250 ms meanwhile.
  absl::Time quiet_closed = absl::InfiniteFuture();
  int busy_round_trips = 0;
  while (absl::Now() - last_complete < absl::Seconds(8)) {
    ASSERT_EQ(AccountStatus(*busy), 0) << "the busy client was closed";
    ++busy_round_trips;
    if (!quiet->Next(absl::Milliseconds(250)).has_value() && quiet->closed()) {
      quiet_closed = absl::Now();
      break;
    }
  }
  const absl::Duration quiet_for = quiet_closed - last_complete;
  EXPECT_GT(quiet_for, absl::Seconds(1.9));
  EXPECT_LT(quiet_for, absl::Seconds(4));
  bool closed = false;
  EXPECT_EQ((*silent)->ReadUntilClosed(absl::Seconds(3), &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_EQ(AccountStatus(*busy), 0);
  EXPECT_EQ(Metric(*gateway, "telestra_native_idle_timeouts_total"), 2);
  EXPECT_TRUE(absl::StrContains(gateway->ReadLog(), "(idle-timeout); closing it"));
  std::cout << "idle-timeout 2 s: closed " << quiet_for << " after its last complete message ("
            << busy_round_trips << " round trips of the busy client meanwhile)\n";
}

}  // namespace
}  // namespace telestra::testing
