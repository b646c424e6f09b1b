// Issue 17: a web page must not be able to drive the native port. A page of
// another origin (http://127.0.0.1:<another port>/attacker.html, served by the
// script's own HTTP server) makes Debian's headless Chromium POST a `login`
// to the native port, with fetch (mode "no-cors", text/plain) and with an
// HTML form (native_cross_origin.e2e.mjs).
// Before the fix the native port skipped the request line and headers as
// garbage and ran the body: the account started registering. Now each
// request is closed at its first line and the account stays logged out.
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/e2e/playwright.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

TEST(NativeCrossOriginTest, APageOfAnotherOriginCannotRunANativeCommand) {
  ASSERT_EQ(access("/usr/bin/chromium", X_OK), 0)
      << "Debian's chromium is not installed (scripts/install-deps.sh installs it)";
  absl::StatusOr<std::string> modules = EnsurePlaywright();
  ASSERT_TRUE(modules.ok()) << modules.status();

  auto gateway = GatewayProcess::Start(OneIdleAccount());
  ASSERT_TRUE(gateway.ok()) << gateway.status();

  // If it ran, this login would start a registration (account_status 100).
  const std::string login =
      R"({"cmd":"login","account":"account-1","user":"3001","pass":"sip3001",)"
      R"("server":"127.0.0.1:9","pad":"x"})";
  const std::string node_log = TestTempDir() + "/cross_origin.node.log";
  auto node = Subprocess::Start(
      {"node", Runfile("tests/e2e/native_cross_origin.e2e.mjs"), "--modules=" + *modules,
       absl::StrCat("--native_port=", (*gateway)->native_port()), "--command=" + login},
      node_log);
  ASSERT_TRUE(node.ok()) << node.status();
  auto status = (*node)->WaitForExit(absl::Now() + absl::Minutes(2));
  if (!status.ok()) (*node)->Kill();
  ASSERT_TRUE(status.ok()) << "the browser did not finish in 2 minutes:\n"
                           << ReadFileText(node_log);
  std::cout << ReadFileText(node_log);
  ASSERT_EQ(*status, 0) << ReadFileText(node_log);

  // Both requests reached the native port and were closed at their first line.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  double closed = -1;
  while (absl::Now() < deadline) {
    closed = MetricValue(HttpGet((*gateway)->metrics_port(), "/metrics").value_or(""),
                         "telestra_native_http_closed_total")
                 .value_or(-1);
    if (closed >= 2) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_GE(closed, 2) << (*gateway)->ReadLog();
  // The login never ran.
  auto client = NativeClient::Connect((*gateway)->native_port());
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(WaitForAccountStatus(**client, "account-1", 0, absl::Seconds(2)), 0)
      << (*gateway)->ReadLog();
  EXPECT_TRUE(absl::StrContains((*gateway)->ReadLog(), "it sent an HTTP request"));
}

}  // namespace
}  // namespace telestra::testing
