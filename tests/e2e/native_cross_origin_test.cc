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
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"

namespace telestra::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string TempDir() {
  const char* dir = getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

// The native port's metric `name` (from the gateway's /metrics), -1 if absent.
double NativeMetric(int metrics_port, const std::string& name) {
  auto client = NativeClient::Connect(metrics_port);  // a plain TCP client
  if (!client.ok()) return -1;
  (*client)->SendRaw("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  const std::string response = (*client)->ReadUntilClosed(absl::Seconds(5));
  const std::string prefix = "\n" + name + " ";
  const size_t at = response.find(prefix);
  if (at == std::string::npos) return -1;
  return std::atof(response.c_str() + at + prefix.size());
}

TEST(NativeCrossOriginTest, APageOfAnotherOriginCannotRunANativeCommand) {
  ASSERT_EQ(access("/usr/bin/chromium", X_OK), 0)
      << "Debian's chromium is not installed (scripts/install-deps.sh installs it)";
  const std::string modules_file = TempDir() + "/node_modules.path";
  const std::string ensure_log = TempDir() + "/ensure_playwright.log";
  auto ensure = Subprocess::Start(
      {"/bin/bash", Runfile("tests/e2e/ensure_playwright.sh"), modules_file}, ensure_log);
  ASSERT_TRUE(ensure.ok()) << ensure.status();
  auto ensured = (*ensure)->WaitForExit(absl::Now() + absl::Minutes(5));
  ASSERT_TRUE(ensured.ok() && *ensured == 0) << "cannot install playwright-core:\n"
                                             << ReadFile(ensure_log);
  const std::string modules(absl::StripAsciiWhitespace(ReadFile(modules_file)));

  GatewayOptions options;
  options.accounts = {{"account-1", "3001", "sip3001", "127.0.0.1:9", false}};
  auto gateway = GatewayProcess::Start(options);
  ASSERT_TRUE(gateway.ok()) << gateway.status();

  // If it ran, this login would start a registration (account_status 100).
  const std::string login =
      R"({"cmd":"login","account":"account-1","user":"3001","pass":"sip3001",)"
      R"("server":"127.0.0.1:9","pad":"x"})";
  const std::string node_log = TempDir() + "/cross_origin.node.log";
  auto node = Subprocess::Start(
      {"node", Runfile("tests/e2e/native_cross_origin.e2e.mjs"), "--modules=" + modules,
       absl::StrCat("--native_port=", (*gateway)->native_port()), "--command=" + login},
      node_log);
  ASSERT_TRUE(node.ok()) << node.status();
  auto status = (*node)->WaitForExit(absl::Now() + absl::Minutes(2));
  if (!status.ok()) (*node)->Kill();
  ASSERT_TRUE(status.ok()) << "the browser did not finish in 2 minutes:\n" << ReadFile(node_log);
  std::cout << ReadFile(node_log);
  ASSERT_EQ(*status, 0) << ReadFile(node_log);

  // Both requests reached the native port and were closed at their first line.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  double closed = -1;
  while (absl::Now() < deadline) {
    closed = NativeMetric((*gateway)->metrics_port(), "telestra_native_http_closed_total");
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
