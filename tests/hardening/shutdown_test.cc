// Shutdown and restart (issue 6, docs/reliability.md): SIGTERM with a live
// call ends the call (BYE; call-ended reaches the clients before they are
// closed), unregisters, exits 0 within 5 s; the same plan started again
// serves at once on the same ports.
#include <signal.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/hardening/hardening_support.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"

namespace telestra::testing {
namespace {

// The suite's only test has the suite's Kamailio to itself.
class ShutdownTest : public GatewayTest {};

TEST_F(ShutdownTest, SigtermEndsCallsUnregistersExitsZeroAndRestartServesAtOnce) {
  StartGateway(TwoAccounts(kamailio().server()), /*registered=*/{});
  NativeClient& c = *client_;
  int64_t caller = -1, callee = -1;
  absl::Status call = EstablishCall(c, &caller, &callee);
  ASSERT_TRUE(call.ok()) << call << gateway_->ReadLog();
  ASSERT_EQ(WaitForContacts(kamailio(), "3001", 1), 1);

  const absl::Time start = absl::Now();
  ASSERT_EQ(kill(gateway_->process().pid(), SIGTERM), 0);
  // Both legs end, and the client hears it before its connection closes.
  auto ended = [](const std::string& account, int64_t id) {
    return [account, id](const NativeEvent& e) {
      return e.event() == "call-ended" && e.Str("account") == account && e.Int("call_id") == id;
    };
  };
  EXPECT_TRUE(
      c.WaitForAll({ended("account-1", caller), ended("account-2", callee)}, absl::Seconds(5)))
      << gateway_->ReadLog();
  EXPECT_FALSE(c.Next(absl::Seconds(5)).has_value());
  EXPECT_TRUE(c.closed());
  auto exit_status = gateway_->process().WaitForExit(start + absl::Seconds(5));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);
  const absl::Duration stop_time = absl::Now() - start;
  EXPECT_LT(stop_time, absl::Seconds(5));
  // Unregistered, and the call went away with a BYE (a call ended without
  // one would have left its legs to time out, with no call-ended).
  EXPECT_EQ(WaitForContacts(kamailio(), "3001", 0), 0);
  EXPECT_EQ(WaitForContacts(kamailio(), "3002", 0), 0);
  const std::string log = gateway_->ReadLog();
  EXPECT_TRUE(absl::StrContains(log, "stopped")) << log;

  // Same plan, same ports: serving at once.
  const absl::Time restart = absl::Now();
  auto again = Subprocess::Start(
      {Runfile("gateway/telestra_gateway"), absl::StrCat("--plan=", gateway_->dir(), "/plan.ini"),
       "--log_level=debug"},
      absl::StrCat(gateway_->dir(), "/restart.log"));
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(WaitForTcpPort(gateway_->native_port(), absl::Seconds(5)))
      << "the native port did not come back";
  const absl::Duration to_listening = absl::Now() - restart;
  auto second = NativeClient::Connect(gateway_->native_port());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(WaitForAccountStatus(**second, "account-1", 200, absl::Seconds(5)), 200);
  EXPECT_EQ(WaitForAccountStatus(**second, "account-2", 200, absl::Seconds(5)), 200);
  const absl::Duration to_registered = absl::Now() - restart;
  EXPECT_EQ(WaitForContacts(kamailio(), "3001", 1), 1);
  // Calls work on the restarted gateway; ids start again at 0.
  int64_t caller2 = -1, callee2 = -1;
  absl::Status call2 = EstablishCall(**second, &caller2, &callee2);
  EXPECT_TRUE(call2.ok()) << call2;
  EXPECT_EQ(caller2, 0);
  std::cout << "SIGTERM with a live call: exit 0 after " << stop_time
            << "; restart on the same ports: listening after " << to_listening
            << ", both accounts registered after " << to_registered << "\n";
  RecordProperty("stop_seconds", absl::StrCat(absl::ToDoubleSeconds(stop_time)));
  RecordProperty("restart_listening_seconds", absl::StrCat(absl::ToDoubleSeconds(to_listening)));
  RecordProperty("restart_registered_seconds", absl::StrCat(absl::ToDoubleSeconds(to_registered)));
  EXPECT_LT(to_listening, absl::Seconds(2));
  EXPECT_LT(to_registered, absl::Seconds(3));
  const absl::Time stop_again = absl::Now();
  ASSERT_EQ(kill((*again)->pid(), SIGTERM), 0);
  auto second_exit = (*again)->WaitForExit(stop_again + absl::Seconds(5));
  ASSERT_TRUE(second_exit.ok()) << second_exit.status();
  EXPECT_EQ(*second_exit, 0);
}

}  // namespace
}  // namespace telestra::testing
