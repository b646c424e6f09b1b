// A site of two gateways behind one Kamailio (docs/scaling.md): gateway A
// carries alpha-1 (3001) and alpha-2 (3002), gateway B bravo-1 (3003) and
// bravo-2 (3004), each on its own free ports. Kamailio (examples/kamailio.cfg,
// digest auth as in every suite) routes a call to the gateway that
// registered the called user; each gateway knows and reports its own
// accounts only (get-status, events).
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"

namespace telestra::testing {
namespace {

const std::vector<std::string> kAccountsOfA = {"alpha-1", "alpha-2"};
const std::vector<std::string> kAccountsOfB = {"bravo-1", "bravo-2"};

class TwoGatewaysTest : public GatewayTest {
 protected:
  // Gateway A (gateway_, client_) and gateway B (b_), both extended (the
  // status carries the media figures), every account registered.
  void SetUp() override {
    GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    GatewayOptions a;
    a.accounts = {Account("alpha-1", 3001), Account("alpha-2", 3002)};
    a.tcp_settings = {"extended-events = true"};
    StartGateway(a, kAccountsOfA);
    if (HasFatalFailure()) return;
    GatewayOptions b;
    b.accounts = {Account("bravo-1", 3003), Account("bravo-2", 3004)};
    b.tcp_settings = {"extended-events = true"};
    b_ = StartOtherGateway(b, kAccountsOfB);
    ASSERT_NE(b_, nullptr);
  }

  // The Address of `user`'s contact in Kamailio's location table ("" if none).
  static std::string ContactOf(const std::string& user) {
    auto dump = kamailio().Kamcmd({"ul.dump"});
    if (!dump.ok()) return "";
    bool in_aor = false;
    for (absl::string_view line : absl::StrSplit(*dump, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (absl::ConsumePrefix(&line, "AoR: ")) {
        in_aor = line == user || absl::StartsWith(line, absl::StrCat(user, "@"));
      } else if (in_aor && absl::ConsumePrefix(&line, "Address: ")) {
        return std::string(line);
      }
    }
    return "";
  }

  // Whether `contact` (sip:user@host:port[;params]) is `gateway`'s SIP address.
  static bool IsContactAt(const std::string& contact, const GatewayProcess& gateway) {
    return absl::StrContains(absl::StrCat(contact, ";"),
                             absl::StrCat("@127.0.0.1:", gateway.sip_port(), ";"));
  }

  // The events `client` has read and passed over (while waiting for others,
  // and for 500 ms more now) whose account is one of `foreign`.
  static std::vector<std::string> EventsOf(NativeClient& client,
                                           const std::vector<std::string>& foreign) {
    client.WaitFor([](const NativeEvent&) { return false; }, absl::Milliseconds(500));
    std::vector<std::string> found;
    for (const NativeEvent& event : client.skipped()) {
      for (const std::string& account : foreign) {
        if (event.Str("account") == account) found.push_back(event.json);
      }
    }
    return found;
  }

  OtherGateway* b_ = nullptr;
};

TEST_F(TwoGatewaysTest, EachGatewayRegistersAndReportsOnlyItsOwnAccounts) {
  // Kamailio holds each user at the SIP port of the gateway that registered it.
  for (const char* user : {"3001", "3002"}) {
    EXPECT_TRUE(IsContactAt(ContactOf(user), *gateway_)) << user << ": " << ContactOf(user);
  }
  for (const char* user : {"3003", "3004"}) {
    EXPECT_TRUE(IsContactAt(ContactOf(user), *b_->process)) << user << ": " << ContactOf(user);
  }

  // get-status: 200 for its own accounts, Unknown account for the other's.
  struct Side {
    NativeClient* client;
    const std::vector<std::string>* own;
    const std::vector<std::string>* foreign;
  };
  for (const Side& side : {Side{client_.get(), &kAccountsOfA, &kAccountsOfB},
                           Side{b_->client.get(), &kAccountsOfB, &kAccountsOfA}}) {
    for (const std::string& account : *side.own) {
      EXPECT_EQ(WaitForAccountStatus(*side.client, account, 200), 200) << account;
    }
    for (const std::string& account : *side.foreign) {
      side.client->Send(
          absl::StrCat(R"({"cmd":"get-status","account":")", account, R"(","token":"foreign"})"));
      auto reply =
          side.client->WaitFor([](const NativeEvent& e) { return e.Str("token") == "foreign"; });
      ASSERT_TRUE(reply.has_value()) << account;
      EXPECT_EQ(reply->event(), "fail") << reply->json;
      EXPECT_EQ(reply->Str("error"), absl::StrCat("Unknown account: ", account)) << reply->json;
    }
  }
}

TEST_F(TwoGatewaysTest, ACallFromAnAccountOfAToAnAccountOfBIsAnsweredCarriesAudioAndEnds) {
  NativeClient& a = *client_;
  NativeClient& b = *b_->client;
  a.Send(R"({"cmd":"make-call","account":"alpha-1","num":"3003"})");
  auto call_return = a.WaitFor(IsEventOf("call-return", "alpha-1"));
  ASSERT_TRUE(call_return.has_value());
  const int64_t out = call_return->Int("call_id");

  // B, which registered 3003, gets the call; the caller is A's account.
  auto incoming = b.WaitFor(IsEventOf("call-incoming", "bravo-1"));
  ASSERT_TRUE(incoming.has_value());
  EXPECT_EQ(incoming->Str("caller"), "3001") << incoming->json;
  EXPECT_EQ(incoming->Str("caller_name"), "alpha-1") << incoming->json;
  const int64_t in = incoming->Int("call_id");
  EXPECT_EQ(WaitForCallState(a, "alpha-1", out, "ringing"), "ringing");

  b.Send(absl::StrCat(R"({"cmd":"answer-call","account":"bravo-1","call_id":)", in, "}"));
  ASSERT_TRUE(b.WaitFor(IsCallEvent("call-answered", "bravo-1", in)).has_value());
  ASSERT_TRUE(a.WaitFor(IsCallEvent("call-answered", "alpha-1", out)).has_value());
  EXPECT_EQ(CallState(a, "alpha-1", out), "active");
  EXPECT_EQ(CallState(b, "bravo-1", in), "active");

  // RTP both ways (each side sends silence): both count packets received.
  NativeEvent at_a{"{}"}, at_b{"{}"};
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    at_a = CallInStatus(a, "alpha-1", out);
    at_b = CallInStatus(b, "bravo-1", in);
    if (at_a.Int("packets_received") > 0 && at_b.Int("packets_received") > 0) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_GT(at_a.Int("packets_received"), 0) << at_a.json;
  EXPECT_GT(at_b.Int("packets_received"), 0) << at_b.json;
  EXPECT_EQ(at_a.Str("codec"), at_b.Str("codec"));
  EXPECT_EQ(at_a.Str("sip_call_id"), at_b.Str("sip_call_id")) << "one dialog across the proxy";

  a.Send(absl::StrCat(R"({"cmd":"hangup-call","account":"alpha-1","call_id":)", out, "}"));
  ASSERT_TRUE(a.WaitFor(IsCallEvent("call-ended", "alpha-1", out)).has_value());
  ASSERT_TRUE(b.WaitFor(IsCallEvent("call-ended", "bravo-1", in)).has_value());
  EXPECT_EQ(CallState(a, "alpha-1", out), "");
  EXPECT_EQ(CallState(b, "bravo-1", in), "");

  // Neither gateway sent an event of the other's accounts.
  EXPECT_EQ(EventsOf(a, kAccountsOfB), std::vector<std::string>{});
  EXPECT_EQ(EventsOf(b, kAccountsOfA), std::vector<std::string>{});
}

}  // namespace
}  // namespace telestra::testing
