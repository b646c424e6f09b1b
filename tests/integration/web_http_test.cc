// The gateway binary's HTTP side: the dashboard's files, /healthz, the
// token, cross-origin WebSockets and TLS. No SIP registrar is needed (the
// accounts stay logged out).
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/web_client.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_certificate.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

WebClientOptions Target(const std::string& target) {
  WebClientOptions options;
  options.target = target;
  return options;
}

WebClientOptions Header(const std::string& name, const std::string& value) {
  WebClientOptions options;
  options.headers[name] = value;
  return options;
}

TEST(WebHttpTest, ServesTheDashboardWithTypesValidatorsAndSecurityHeaders) {
  auto gateway = StartWebGateway(OneIdleAccount());
  ASSERT_NE(gateway, nullptr);
  const int port = gateway->web_port();

  auto index = HttpRequest(port, "GET", "/");
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->Header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(index->body, ReadFileText(Runfile("web/index.html")));
  EXPECT_EQ(index->Header("cache-control"), "no-cache");
  EXPECT_EQ(index->Header("x-content-type-options"), "nosniff");
  EXPECT_EQ(index->Header("x-frame-options"), "DENY");
  EXPECT_TRUE(absl::StrContains(index->Header("content-security-policy"), "default-src 'self'"));
  const std::string etag = index->Header("etag");
  ASSERT_FALSE(etag.empty());

  auto again = HttpRequest(port, "GET", "/index.html", {{"If-None-Match", etag}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());

  struct Expected {
    std::string path, type;
  };
  for (const Expected& e : {Expected{"/app.js", "text/javascript; charset=utf-8"},
                            Expected{"/model.js", "text/javascript; charset=utf-8"},
                            Expected{"/style.css", "text/css; charset=utf-8"},
                            Expected{"/favicon.svg", "image/svg+xml"}}) {
    auto file = HttpRequest(port, "GET", e.path);
    ASSERT_TRUE(file.ok()) << e.path;
    EXPECT_EQ(file->status, 200) << e.path;
    EXPECT_EQ(file->Header("content-type"), e.type) << e.path;
    EXPECT_EQ(file->body, ReadFileText(Runfile("web" + e.path))) << e.path;
  }

  auto head = HttpRequest(port, "HEAD", "/style.css");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"),
            absl::StrCat(ReadFileText(Runfile("web/style.css")).size()));
}

TEST(WebHttpTest, RefusesPathsOutsideTheDashboardAndOtherMethods) {
  auto gateway = StartWebGateway(OneIdleAccount());
  ASSERT_NE(gateway, nullptr);
  const int port = gateway->web_port();
  auto missing = HttpRequest(port, "GET", "/nothing-here.js");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  for (const char* target : {"/../gateway/main.cc", "/%2e%2e/%2e%2e/etc/passwd",
                             "/..%2f..%2fetc/passwd", "/.hidden", "/web/..", "/a\\b"}) {
    auto status = RawHttpStatus(port, absl::StrCat("GET ", target,
                                                   " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
                                                   "close\r\n\r\n"));
    ASSERT_TRUE(status.ok()) << target << ": " << status.status();
    EXPECT_EQ(*status, 403) << target;
  }
  auto bad_escape = RawHttpStatus(port, "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(bad_escape.ok());
  EXPECT_EQ(*bad_escape, 400);
  auto post = HttpRequest(port, "POST", "/");
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->Header("allow"), "GET, HEAD");
  auto plain_ws = HttpRequest(port, "GET", "/ws");
  ASSERT_TRUE(plain_ws.ok());
  EXPECT_EQ(plain_ws->status, 426);
  auto upgrade_elsewhere = WebClient::Connect(port, Target("/elsewhere"));
  ASSERT_FALSE(upgrade_elsewhere.ok());
  EXPECT_TRUE(absl::StrContains(upgrade_elsewhere.status().message(), "HTTP 404"));
}

TEST(WebHttpTest, HealthzReportsCounters) {
  auto gateway = StartWebGateway(OneIdleAccount());
  ASSERT_NE(gateway, nullptr);
  auto client = WebClient::Connect(gateway->web_port());
  ASSERT_TRUE(client.ok()) << client.status() << "\n" << gateway->ReadLog();
  ASSERT_TRUE((*client)->Next().has_value());
  auto health = HttpRequest(gateway->web_port(), "GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->Header("content-type"), "application/json");
  NativeEvent json{health->body};
  EXPECT_EQ(json.Str("status"), "ok");
  EXPECT_EQ(json.Int("sessions"), 1);
  EXPECT_EQ(json.Int("sessions_accepted"), 1);
  EXPECT_EQ(json.Int("slow_disconnects"), 0);
}

TEST(WebHttpTest, TokenGuardsThePageTheFilesAndTheSocketButNotHealthz) {
  GatewayOptions options = OneIdleAccount();
  options.web_settings = {"token-env = WEB_TOKEN"};
  options.env = {{"WEB_TOKEN", "s3cret token"}};
  auto gateway = StartWebGateway(options);
  ASSERT_NE(gateway, nullptr);
  const int port = gateway->web_port();

  auto anonymous = HttpRequest(port, "GET", "/");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
  EXPECT_FALSE(absl::StrContains(anonymous->body, "s3cret"));
  auto wrong = HttpRequest(port, "GET", "/?token=s3cret");
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 401);

  auto page = HttpRequest(port, "GET", "/?token=s3cret%20token");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->status, 200);
  const std::string cookie = page->Header("set-cookie");
  EXPECT_TRUE(absl::StartsWith(cookie, absl::StrCat("telestra_token_", port, "=s3cret%20token;")))
      << cookie;
  EXPECT_TRUE(absl::StrContains(cookie, "HttpOnly"));
  EXPECT_TRUE(absl::StrContains(cookie, "SameSite=Strict"));
  const std::string cookie_pair = cookie.substr(0, cookie.find(';'));

  // The page's files and socket with the cookie, as the browser does.
  auto script = HttpRequest(port, "GET", "/app.js", {{"Cookie", "a=b; " + cookie_pair}});
  ASSERT_TRUE(script.ok());
  EXPECT_EQ(script->status, 200);
  auto with_cookie = WebClient::Connect(port, Header("Cookie", cookie_pair));
  ASSERT_TRUE(with_cookie.ok()) << with_cookie.status();
  EXPECT_EQ((*with_cookie)->Next()->event(), "snapshot");

  auto bearer = WebClient::Connect(port, Header("Authorization", "Bearer s3cret token"));
  ASSERT_TRUE(bearer.ok()) << bearer.status();
  auto in_query = WebClient::Connect(port, Target("/ws?token=s3cret+token"));
  ASSERT_TRUE(in_query.ok()) << in_query.status();
  auto none = WebClient::Connect(port);
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(absl::StrContains(none.status().message(), "HTTP 401")) << none.status();
  auto bad_bearer = WebClient::Connect(port, Header("Authorization", "Bearer nope"));
  ASSERT_FALSE(bad_bearer.ok());

  auto health = HttpRequest(port, "GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  EXPECT_GE(NativeEvent{health->body}.Int("unauthorized"), 4);
  EXPECT_FALSE(absl::StrContains(gateway->ReadLog(), "s3cret"));
}

TEST(WebHttpTest, WebSocketFromAnotherOriginIsRefused) {
  auto gateway = StartWebGateway(OneIdleAccount());
  ASSERT_NE(gateway, nullptr);
  const int port = gateway->web_port();
  auto evil = WebClient::Connect(port, Header("Origin", "http://evil.example"));
  ASSERT_FALSE(evil.ok());
  EXPECT_TRUE(absl::StrContains(evil.status().message(), "HTTP 403")) << evil.status();
  auto same = WebClient::Connect(port, Header("Origin", absl::StrCat("http://127.0.0.1:", port)));
  ASSERT_TRUE(same.ok()) << same.status();
}

TEST(WebHttpTest, ServesHttpsAndWssWithTheConfiguredCertificate) {
  auto made = MakeSelfSignedCertificate(TestTempDir(), "web");
  ASSERT_TRUE(made.ok()) << made.status();
  const std::string cert = made->cert_path;
  const std::string key = made->key_path;

  GatewayOptions options = OneIdleAccount();
  options.web_settings = {"cert = " + cert, "key = " + key};
  auto gateway = StartWebGateway(options);
  ASSERT_NE(gateway, nullptr);
  const int port = gateway->web_port();
  auto page = HttpRequest(port, "GET", "/", {}, /*tls=*/true);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->status, 200);
  EXPECT_TRUE(absl::StrContains(page->Header("content-security-policy"), "wss://"));
  WebClientOptions tls;
  tls.tls = true;
  auto client = WebClient::Connect(port, tls);
  ASSERT_TRUE(client.ok()) << client.status();
  auto snapshot = (*client)->Next();
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->event(), "snapshot");
  (*client)->Send(R"({"cmd":"get-status","account":"account-1","token":"tls"})");
  auto status = (*client)->Next();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->Str("token"), "tls");
  // Plain HTTP on the TLS port gets nowhere.
  auto plain = HttpRequest(port, "GET", "/");
  EXPECT_FALSE(plain.ok() && plain->status == 200);
}

TEST(WebHttpTest, BadWebRootFlagStopsTheGatewayWithAClearError) {
  const std::string dir = getenv("TEST_TMPDIR");
  const std::string plan = dir + "/web-root-plan.ini";
  std::ofstream(plan) << "[tcp-settings]\nport = " << PickFreePort(SOCK_STREAM)
                      << "\n[web-settings]\nport = " << PickFreePort(SOCK_STREAM)
                      << "\n[sip-settings]\nport = 0\n[account-1]\nuser = 3001\n"
                         "server = 127.0.0.1:9\nregister = false\n";
  auto process = Subprocess::Start(
      {Runfile("gateway/telestra_gateway"), "--plan=" + plan, "--web_root=/nonexistent/web"},
      dir + "/web-root.log");
  ASSERT_TRUE(process.ok()) << process.status();
  auto exit_status = (*process)->WaitForExit(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 2);
  EXPECT_TRUE(absl::StrContains(ReadFileText(dir + "/web-root.log"),
                                "--web_root=/nonexistent/web is not a folder holding index.html"))
      << ReadFileText(dir + "/web-root.log");
}

}  // namespace
}  // namespace telestra::testing
