// SIP faults (issue 6, docs/reliability.md). The registrar that is killed and
// restarted is tests/integration/registrar_outage_test.cc; here the
// registrar freezes instead (SIGSTOP: packets are taken but never answered,
// so REGISTER times out with 408), and hostile datagrams hit the SIP port
// and the RTP port range.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/hardening/hardening_support.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"
#include "tests/support/ports.h"

namespace telestra::testing {
namespace {

bool IsAccountStatus(const NativeEvent& e, const std::string& account, int status) {
  return e.event() == "account-status" && e.Str("account") == account &&
         e.Int("account_status") == status;
}

// SIGCONT to Kamailio's process group whatever happens to the test.
class Frozen {
 public:
  explicit Frozen(pid_t group) : group_(group) { frozen_ = kill(-group_, SIGSTOP) == 0; }
  ~Frozen() { Thaw(); }
  bool frozen() const { return frozen_; }
  void Thaw() {
    if (frozen_) kill(-group_, SIGCONT);
    frozen_ = false;
  }

 private:
  pid_t group_;
  bool frozen_ = false;
};

// The registrar stops answering: a registered account's refresh and a new
// login both end in 408 (and one fail broadcast each), the gateway keeps
// serving meanwhile, and both accounts are back at 200 soon after SIGCONT,
// by their own retries.
TEST(SipFaultTest, FrozenRegistrarGives408AndAccountsRecoverAfterSigcont) {
  auto kamailio = KamailioProcess::Start();
  ASSERT_TRUE(kamailio.ok()) << kamailio.status();
  GatewayOptions options;
  options.accounts = {{"account-1", "3001", "sip3001", (*kamailio)->server(), true},
                      {"account-2", "3002", "sip3002", (*kamailio)->server(), false}};
  options.sip_settings = {"register-expires = 10", "register-retry-min = 1",
                          "register-retry-max = 2"};
  auto gateway = GatewayProcess::Start(options);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  auto client = NativeClient::Connect((*gateway)->native_port());
  ASSERT_TRUE(client.ok());
  NativeClient& c = **client;
  c.Send(R"({"cmd":"subscribe","extended":true})");
  ASSERT_EQ(WaitForAccountStatus(c, "account-1", 200), 200);

  Frozen frozen((*kamailio)->pid());
  ASSERT_TRUE(frozen.frozen());
  const absl::Time stopped = absl::Now();
  c.Send(absl::StrCat(R"({"cmd":"login","account":"account-2","user":"3002",)",
                      R"("pass":"sip3002","server":")", (*kamailio)->server(), R"("})"));
  // sofia gives up on an unanswered REGISTER after 64*T1 = 32 s; account-1's
  // refresh is due within its 10 s lifetime.
  ASSERT_TRUE(c.WaitForAll(
      {[](const NativeEvent& e) { return IsAccountStatus(e, "account-1", 408); },
       [](const NativeEvent& e) { return IsAccountStatus(e, "account-2", 408); },
       [](const NativeEvent& e) {
         return e.event() == "fail" && e.Str("error") == "Failed to log in to account: account-1";
       },
       [](const NativeEvent& e) {
         return e.event() == "fail" && e.Str("error") == "Failed to log in to account: account-2";
       }},
      absl::Seconds(75)))
      << (*gateway)->ReadLog();
  const absl::Duration to_408 = absl::Now() - stopped;
  // Serving all along; get-status reports the failure.
  EXPECT_EQ(WaitForAccountStatus(c, "account-1", 408, absl::Seconds(1)), 408);
  EXPECT_EQ(WaitForAccountStatus(c, "account-2", 408, absl::Seconds(1)), 408);

  frozen.Thaw();
  const absl::Time resumed = absl::Now();
  EXPECT_TRUE(
      c.WaitForAll({[](const NativeEvent& e) { return IsAccountStatus(e, "account-1", 200); },
                    [](const NativeEvent& e) { return IsAccountStatus(e, "account-2", 200); }},
                   absl::Seconds(20)));
  const absl::Duration recovery = absl::Now() - resumed;
  std::cout << "registrar frozen: both accounts at 408 after " << to_408 << "; back at 200 "
            << recovery << " after SIGCONT\n";
  RecordProperty("seconds_to_408", absl::StrCat(absl::ToDoubleSeconds(to_408)));
  RecordProperty("recovery_seconds", absl::StrCat(absl::ToDoubleSeconds(recovery)));
  // Retries every 1..2 s (+20% jitter): one interval and the exchange.
  EXPECT_LT(recovery, absl::Seconds(6));
  EXPECT_EQ(WaitForAccountStatus(c, "account-1", 200, absl::Seconds(1)), 200);
  EXPECT_EQ(WaitForAccountStatus(c, "account-2", 200, absl::Seconds(1)), 200);
  EXPECT_EQ((*kamailio)->CountRegistered("3001").value_or(-1), 1);
  EXPECT_EQ((*kamailio)->CountRegistered("3002").value_or(-1), 1);
}

// Datagrams a SIP port and RTP ports may get from anywhere: random bytes,
// truncated and absurd SIP, responses to nothing, empty and maximal
// datagrams, RTP with wrong versions and payload types. The gateway ignores
// them: registrations stay at 200, the live call stays up and still ends
// normally.
// Sends `request` (with "PORT" in its Via replaced by the local port) to
// the gateway's SIP port from a socket of its own; the first final
// response, or "" after 3 s.
std::string SipExchange(int sip_port, std::string request) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return "";
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(local);
  timeval timeout{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    close(fd);
    return "";
  }
  absl::StrReplaceAll({{"PORT", absl::StrCat(ntohs(local.sin_port))}}, &request);
  sockaddr_in to = local;
  to.sin_port = htons(static_cast<uint16_t>(sip_port));
  sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  std::string response;
  char buffer[4096];
  for (;;) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    response.assign(buffer, static_cast<size_t>(n));
    if (!absl::StartsWith(response, "SIP/2.0 1")) break;  // provisional: wait on
    response.clear();
  }
  close(fd);
  return response;
}

std::string Request(const std::string& method, const std::string& to_tag) {
  return absl::StrCat(method, " sip:3001@127.0.0.1 SIP/2.0\r\n",
                      "Via: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bK-", method, to_tag, "\r\n",
                      "Max-Forwards: 70\r\nFrom: <sip:tester@127.0.0.1>;tag=t1\r\n",
                      "To: <sip:3001@127.0.0.1>", to_tag.empty() ? "" : ";tag=", to_tag, "\r\n",
                      "Call-ID: stray-", method, "@127.0.0.1\r\nCSeq: 1 ", method,
                      "\r\nContact: <sip:tester@127.0.0.1:PORT>\r\nContent-Length: 0\r\n\r\n");
}

// Requests outside any call of the gateway get the answers RFC 3261 asks
// for (docs/native-api.md): OPTIONS 200 with Allow, an unknown dialog 481,
// an unsupported method 405, an INVITE for no registered account 404 (from
// a trusted source; a stranger gets 403, sip_security_test).
TEST(SipFaultTest, RequestsOutsideOurCallsGetTheirSipAnswers) {
  GatewayOptions options = OneIdleAccount();
  options.sip_settings = {"trusted = 127.0.0.1"};
  auto gateway = GatewayProcess::Start(options);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  const int sip = (*gateway)->sip_port();

  std::string options_reply = SipExchange(sip, Request("OPTIONS", ""));
  EXPECT_TRUE(absl::StartsWith(options_reply, "SIP/2.0 200")) << options_reply;
  EXPECT_TRUE(absl::StrContains(options_reply, "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, REFER, NOTIFY"))
      << options_reply;
  std::string message_reply = SipExchange(sip, Request("MESSAGE", ""));
  EXPECT_TRUE(absl::StartsWith(message_reply, "SIP/2.0 405")) << message_reply;
  EXPECT_TRUE(absl::StrContains(message_reply, "Allow:")) << message_reply;
  std::string bye_reply = SipExchange(sip, Request("BYE", "no-such-dialog"));
  EXPECT_TRUE(absl::StartsWith(bye_reply, "SIP/2.0 481")) << bye_reply;
  std::string invite_reply = SipExchange(sip, Request("INVITE", ""));
  EXPECT_TRUE(absl::StartsWith(invite_reply, "SIP/2.0 404")) << invite_reply;
}

TEST(SipFaultTest, GarbageOnTheSipPortAndTheRtpRangeIsIgnored) {
  // A small RTP range of its own, so every port of it can be hit.
  int rtp_min = 0;
  for (int attempt = 0; attempt < 20 && rtp_min == 0; ++attempt) {
    int port = PickFreePort(SOCK_DGRAM) & ~1;
    if (port > 1024 && port + 19 < 65536) rtp_min = port;
  }
  ASSERT_NE(rtp_min, 0);
  GatewayOptions options;
  options.rtp_settings = {absl::StrCat("port-min = ", rtp_min),
                          absl::StrCat("port-max = ", rtp_min + 19)};
  auto started = StartWithOwnRegistrar(options);
  ASSERT_TRUE(started.ok()) << started.status();
  auto& gateway = started->gateway;
  auto client = NativeClient::Connect(gateway->native_port());
  ASSERT_TRUE(client.ok());
  NativeClient& c = **client;
  int64_t caller = -1, callee = -1;
  absl::Status call = EstablishCall(c, &caller, &callee);
  ASSERT_TRUE(call.ok()) << call << gateway->ReadLog();

  const int sip = gateway->sip_port();
  const std::vector<std::string> sip_garbage = {
      "",
      "\r\n\r\n",
      "INVITE sip:3001@127.0.0.1 SIP/2.0\r\n",
      "INVITE sip:3001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\n"
      "Content-Length: 99999999\r\n\r\nv=0",
      "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnothing\r\nCSeq: 1 "
      "REGISTER\r\nCall-ID: none\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n"
      "Content-Length: 0\r\n\r\n",
      "BYE sip:3001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK2\r\nFrom: "
      "<sip:x@y>;tag=a\r\nTo: <sip:3001@127.0.0.1>;tag=b\r\nCall-ID: not-a-call\r\nCSeq: 1 "
      "BYE\r\nContent-Length: 0\r\n\r\n",
      std::string(65000, 'A'),
      "OPTIONS sip:x SIP/2.0\r\nVia: " + std::string(4000, ';') + "\r\n\r\n",
  };
  for (int round = 0; round < 20; ++round) {
    for (const std::string& datagram : sip_garbage) SendUdp(sip, datagram);
    for (int i = 0; i < 50; ++i) {
      SendUdp(sip, PseudoRandomBytes(1 + (round * 50 + i) % 1400, round * 50 + i));
    }
  }
  // Some on TCP too, where sofia also listens.
  for (int i = 0; i < 20; ++i) {
    auto tcp = RawConnection::Connect(sip);
    if (!tcp.ok()) break;
    (*tcp)->Send(i % 2 == 0 ? PseudoRandomBytes(3000, i) : sip_garbage[3]);
    if (i % 3 == 0) (*tcp)->Reset();
  }
  // Every RTP and RTCP port of the range, the call's included.
  std::string bad_version_rtp = PseudoRandomBytes(172, 7);
  bad_version_rtp[0] = 0x00;  // version 0
  std::string odd_payload_rtp = PseudoRandomBytes(172, 8);
  odd_payload_rtp[0] = static_cast<char>(0x80);
  odd_payload_rtp[1] = 0x7f;  // payload type 127
  for (int port = rtp_min; port <= rtp_min + 19; ++port) {
    for (int i = 0; i < 50; ++i) {
      SendUdp(port, PseudoRandomBytes(1 + (i * 37) % 1500, port * 100 + i));
    }
    SendUdp(port, "");
    SendUdp(port, std::string(1, '\x80'));
    SendUdp(port, bad_version_rtp);
    SendUdp(port, odd_payload_rtp);
    SendUdp(port, std::string(65000, '\x80'));
  }

  // Still registered, still serving, the call still up.
  EXPECT_TRUE(gateway->process().IsRunning());
  EXPECT_EQ(WaitForAccountStatus(c, "account-1", 200, absl::Seconds(2)), 200);
  EXPECT_EQ(WaitForAccountStatus(c, "account-2", 200, absl::Seconds(2)), 200);
  EXPECT_EQ(CallState(c, "account-1", caller), "active");
  EXPECT_EQ(CallState(c, "account-2", callee), "active");
  EXPECT_EQ(started->kamailio->CountRegistered("3001").value_or(-1), 1);
  c.Send(absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", caller, "}"));
  auto ended = [](const std::string& account, int64_t id) {
    return [account, id](const NativeEvent& e) {
      return e.event() == "call-ended" && e.Str("account") == account && e.Int("call_id") == id;
    };
  };
  EXPECT_TRUE(c.WaitForAll({ended("account-1", caller), ended("account-2", callee)}));
  // A new call still works after all that.
  absl::Status again = EstablishCall(c, &caller, &callee);
  EXPECT_TRUE(again.ok()) << again;
}

}  // namespace
}  // namespace telestra::testing
