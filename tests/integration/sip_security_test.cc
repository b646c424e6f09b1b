// Attacks on the SIP side (issue 17, docs/reliability.md "Security"):
// credentials sent to a host of the caller's choosing, calls started by
// strangers, and calls that ring forever to exhaust the RTP ports. Real
// Kamailio, real sipp; a foreign host is a sipp on 127.0.0.2.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"
#include "tests/support/kamailio.h"
#include "tests/support/ports.h"

namespace telestra::testing {
namespace {

constexpr char kForeignIp[] = "127.0.0.2";

class SipSecurityTest : public SipPeerTest {
 protected:
  // A sipp UAC sending INVITEs for 3001 straight to the gateway's SIP port
  // from `ip`, `calls` at once, each expecting the scenario's final answer.
  SippProcess* StartDirectUac(const std::string& scenario, const std::string& ip, int calls) {
    SippProcess::Options options;
    options.scenario = SippProcess::Scenario(scenario);
    options.ip = ip;
    options.calls = calls;
    options.args = {"-s", "3001", "-key", "caller", "3005", "-l", absl::StrCat(calls)};
    options.remote = absl::StrCat("127.0.0.1:", gateway_->sip_port());
    return StartSipp(options);
  }

  // make-call's reply: call-return or fail.
  std::optional<NativeEvent> MakeCallReply(const std::string& account, const std::string& number) {
    client_->Send(absl::StrCat(R"({"cmd":"make-call","account":")", account, R"(","num":")", number,
                               R"("})"));
    auto reply = client_->WaitFor(
        [&](const NativeEvent& e) { return e.event() == "call-return" || e.event() == "fail"; });
    EXPECT_TRUE(reply.has_value()) << "no reply to make-call";
    return reply;
  }

  // The call id from call-return (-1 if the make-call failed).
  int64_t MakeCall(const std::string& account, const std::string& number) {
    auto reply = MakeCallReply(account, number);
    if (!reply || reply->event() != "call-return") return -1;
    return reply->Int("call_id");
  }

  // Sample `name` of /metrics as written there ("absent" if it is not).
  std::string Metric(const std::string& name) {
    std::optional<double> value =
        MetricValue(HttpGet(gateway_->metrics_port(), "/metrics").value_or(""), name);
    return value ? absl::StrCat(*value) : "absent";
  }
};

// The reproduced attack: `num` = "1000@<other host>:<port>;x=" made the
// Request-URI sip:1000@<other host>:<port>;x=@<registrar>, and sofia sent
// the INVITE to the other host with the account's cached
// Proxy-Authorization. Now the dial string is refused, and a whole URI to
// the other host goes through the account's proxy, which consumes the
// credentials; the foreign host's own 407 is not answered.
TEST_F(SipSecurityTest, AForeignHostNeverSeesTheAccountsCredentials) {
  StartTwoAccounts();
  SippProcess::Options options;
  options.scenario = SippProcess::Scenario("uas_foreign_challenge.xml");
  options.ip = kForeignIp;
  SippProcess* foreign = StartSipp(options);
  ASSERT_NE(foreign, nullptr);
  ASSERT_TRUE(foreign->WaitUntilListening(absl::Seconds(5)));
  const std::string host_port = absl::StrCat(kForeignIp, ":", foreign->port());

  // A first call in the domain, so that the account has a cached challenge
  // (what the attack used to send along).
  int64_t warm = MakeCall("account-1", "3002");
  ASSERT_GE(warm, 0);
  auto incoming = client_->WaitFor(IsEvent("call-incoming"));
  ASSERT_TRUE(incoming.has_value());
  client_->Send(
      absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", warm, "}"));
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ended", "account-1", warm)).has_value());

  // The dial string that named another host: refused on the spot.
  const std::string attack = absl::StrCat("1000@", host_port, ";x=");
  auto refused = MakeCallReply("account-1", attack);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->event(), "fail") << refused->json;
  EXPECT_EQ(refused->Str("error"), "Invalid number: " + attack) << refused->json;

  // A whole URI for the foreign host: through the proxy, which answers our
  // credentials and relays; the foreign realm's 407 ends the call.
  int64_t id = MakeCall("account-1", absl::StrCat("sip:1000@", host_port));
  ASSERT_GE(id, 0);
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", id));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Int("code"), 407) << ended->json;
  EXPECT_EQ(ended->Str("reason"), "Challenge from a foreign realm") << ended->json;
  ExpectSippSucceeds(*foreign);

  std::vector<std::string> invites = Requests(ReceivedMessages(foreign->Messages()), "INVITE");
  ASSERT_EQ(invites.size(), 1u) << foreign->Messages();  // the challenge was not answered
  EXPECT_FALSE(absl::StrContains(invites[0], "Authorization:")) << invites[0];
  EXPECT_FALSE(absl::StrContains(invites[0], "authorization:")) << invites[0];
  EXPECT_TRUE(absl::StrContains(invites[0], "Record-Route:")) << "not through the proxy:\n"
                                                              << invites[0];
  EXPECT_EQ(Metric("telestra_sip_foreign_realm_challenges_total"), "1");
}

// Only the account's registrar (and [sip-settings] trusted networks) may
// start calls: an INVITE sent straight from 127.0.0.2 gets 403 and no
// call-incoming; trusting 127.0.0.2 lets it ring.
TEST_F(SipSecurityTest, InvitesFromStrangersAreRefusedUnlessTrusted) {
  StartTwoAccounts();
  SippProcess* stranger = StartDirectUac("uac_direct_refused.xml", kForeignIp, 3);
  ASSERT_NE(stranger, nullptr);
  ExpectSippSucceeds(*stranger);
  EXPECT_EQ(Metric("telestra_sip_untrusted_requests_total"), "3");
  client_->Send(R"({"cmd":"get-status","account":"account-1"})");
  auto status = client_->WaitFor(IsEvent("status"));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(absl::StrContains(status->json, R"("calls":[])")) << status->json;
  for (const NativeEvent& e : client_->skipped()) EXPECT_NE(e.event(), "call-incoming") << e.json;

  gateway_.reset();
  client_.reset();
  GatewayOptions options;
  options.sip_settings = {"trusted = 127.0.0.2/32", "ring-timeout = 1"};
  StartTwoAccounts(options);
  SippProcess* trusted = StartDirectUac("uac_direct_ring_timeout.xml", kForeignIp, 1);
  ASSERT_NE(trusted, nullptr);
  ASSERT_TRUE(client_->WaitFor(IsEvent("call-incoming")).has_value());
  ExpectSippSucceeds(*trusted);
}

// INVITEs that are never cancelled (from the proxy's address, so trusted):
// each rings at most ring-timeout (480, call-ended "Ring timeout"), at most
// max-ringing ring at once (486 beyond), and the RTP range is free again
// for a normal call afterwards.
TEST_F(SipSecurityTest, CallsThatRingForeverTimeOutAndAreCapped) {
  GatewayOptions options;
  options.sip_settings = {"ring-timeout = 3", "max-ringing = 2"};
  // Three RTP pairs: two ringing calls hold two; the normal call after
  // needs two (one per account).
  const int rtp = PickFreeMediaPort();
  ASSERT_NE(rtp, 0);
  options.rtp_settings = {absl::StrCat("port-min = ", rtp), absl::StrCat("port-max = ", rtp + 5)};
  StartTwoAccounts(options);

  SippProcess* ringing = StartDirectUac("uac_direct_ring_timeout.xml", "127.0.0.1", 2);
  ASSERT_NE(ringing, nullptr);
  auto first = client_->WaitFor(IsEvent("call-incoming"));
  ASSERT_TRUE(first.has_value());
  auto second = client_->WaitFor(IsEvent("call-incoming"));
  ASSERT_TRUE(second.has_value());

  SippProcess* over = StartDirectUac("uac_direct_busy.xml", "127.0.0.1", 1);
  ASSERT_NE(over, nullptr);
  ExpectSippSucceeds(*over);  // 486 while the two still ring
  EXPECT_EQ(Metric("telestra_sip_ringing_refused_total"), "1");

  for (const auto& call : {*first, *second}) {
    auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", call.Int("call_id")),
                                  absl::Seconds(10));
    ASSERT_TRUE(ended.has_value()) << call.json;
    EXPECT_EQ(ended->Int("code"), 480) << ended->json;
    EXPECT_EQ(ended->Str("reason"), "Ring timeout") << ended->json;
  }
  ExpectSippSucceeds(*ringing);
  for (const NativeEvent& e : client_->skipped()) {
    EXPECT_NE(e.event(), "call-incoming") << "the 486 call was reported: " << e.json;
  }
  EXPECT_EQ(Metric("telestra_sip_ring_timeouts_total"), "2");

  // The RTP ports are free again: a normal call between the accounts.
  int64_t id = MakeCall("account-1", "3002");
  ASSERT_GE(id, 0);
  auto incoming = client_->WaitFor(IsEvent("call-incoming"));
  ASSERT_TRUE(incoming.has_value());
  client_->Send(absl::StrCat(R"({"cmd":"answer-call","account":"account-2","call_id":)",
                             incoming->Int("call_id"), "}"));
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-answered", "account-1", id)).has_value());
}

// An outgoing call that rings and rings is cancelled at invite-timeout and
// ends with 408 "No answer".
TEST_F(SipSecurityTest, AnOutgoingCallWithoutAnswerIsCancelledAtTheInviteTimeout) {
  GatewayOptions options;
  options.sip_settings = {"invite-timeout = 2"};
  StartTwoAccounts(options);
  int port = PickFreePort(SOCK_DGRAM);
  ASSERT_TRUE(SippRegister(kamailio().server(), "3005", port));
  SippProcess::Options uas;
  uas.scenario = SippProcess::Scenario("uas_ring.xml");
  uas.port = port;
  uas.args = {"-s", "3005"};
  SippProcess* sipp = StartSipp(uas);
  ASSERT_NE(sipp, nullptr);
  ASSERT_TRUE(sipp->WaitUntilListening(absl::Seconds(5)));

  absl::Time start = absl::Now();
  int64_t id = MakeCall("account-1", "3005");
  ASSERT_GE(id, 0);
  ASSERT_TRUE(client_->WaitFor(IsCallEvent("call-ringing", "account-1", id)).has_value());
  auto ended = client_->WaitFor(IsCallEvent("call-ended", "account-1", id), absl::Seconds(10));
  ASSERT_TRUE(ended.has_value());
  EXPECT_GE(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(ended->Int("code"), 408) << ended->json;
  EXPECT_EQ(ended->Str("reason"), "No answer") << ended->json;
  ExpectSippSucceeds(*sipp);  // it got the CANCEL
  EXPECT_EQ(Metric("telestra_sip_invite_timeouts_total"), "1");
}

}  // namespace
}  // namespace telestra::testing
