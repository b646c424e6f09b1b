// The registrar goes away and comes back: the gateway reports the failure,
// re-registers with backoff + jitter and is back at 200 without any command.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"

namespace telestra::testing {
namespace {

// The suite's only test may stop and restart the suite's Kamailio.
class RegistrarOutageTest : public GatewayTest {};

TEST_F(RegistrarOutageTest, AccountsRecoverAfterRegistrarRestart) {
  GatewayOptions options = TwoAccounts(kamailio().server());
  options.sip_settings = {"register-expires = 10", "register-retry-min = 1",
                          "register-retry-max = 2"};
  StartGateway(options, /*registered=*/{});
  NativeClient& c = *client_;
  c.Send(R"({"cmd":"subscribe","extended":true})");
  ASSERT_EQ(WaitForAccountStatus(c, "account-1", 200), 200);
  ASSERT_EQ(WaitForAccountStatus(c, "account-2", 200), 200);

  ASSERT_TRUE(kamailio().Stop().ok());
  // The next refresh (within the 10 s lifetime) fails: a fail broadcast and a
  // failure status (503 refused / 408 no answer).
  auto fail =
      c.WaitFor([](const NativeEvent& e) { return e.event() == "fail"; }, absl::Seconds(15));
  ASSERT_TRUE(fail.has_value());
  EXPECT_TRUE(absl::StartsWith(fail->Str("error"), "Failed to log in to account: "));
  auto down = c.WaitFor(
      [](const NativeEvent& e) {
        return e.event() == "account-status" && e.Int("account_status") >= 400;
      },
      absl::Seconds(15));
  ASSERT_TRUE(down.has_value());

  absl::Time restarted = absl::Now();
  ASSERT_TRUE(kamailio().Restart().ok());
  EXPECT_EQ(WaitForAccountStatus(c, "account-1", 200, absl::Seconds(10)), 200);
  EXPECT_EQ(WaitForAccountStatus(c, "account-2", 200, absl::Seconds(10)), 200);
  // Two retry intervals (register-retry-max = 2 s, +20% jitter) and then some.
  EXPECT_LT(absl::Now() - restarted, absl::Seconds(6));
  EXPECT_EQ(kamailio().CountRegistered("3001").value_or(-1), 1);
}

}  // namespace
}  // namespace telestra::testing
