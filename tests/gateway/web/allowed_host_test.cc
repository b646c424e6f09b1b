// The web front end's Host allow list (DNS-rebinding protection, issue 17):
// HostName parses a Host header value, HostAllowed decides.
#include <string>
#include <vector>

#include "gateway/web/http_util.h"
#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

TEST(HostNameTest, DropsPortBracketsTrailingDotAndCase) {
  EXPECT_EQ(HostName("127.0.0.1:3552"), "127.0.0.1");
  EXPECT_EQ(HostName("Gateway.Example.COM.:3552"), "gateway.example.com");
  EXPECT_EQ(HostName("[::1]:3552"), "::1");
  EXPECT_EQ(HostName("[::1]"), "::1");
  EXPECT_EQ(HostName(" localhost "), "localhost");
  EXPECT_EQ(HostName("gw_2"), "gw_2");
}

TEST(HostNameTest, MalformedValuesHaveNoName) {
  for (const char* bad :
       {"", ":3552", "::1", "::1:3552", "[::1", "[::1]x", "[nope]:1", "host:port", "host:65536",
        "host:-1", "a b", "evil.example/x", "evil@host", "host:3552:1", "\x01host"}) {
    EXPECT_EQ(HostName(bad), std::nullopt) << bad;
  }
}

TEST(HostAllowedTest, AddressesAndLocalhostAlwaysListedNamesOnly) {
  const std::vector<std::string> none;
  for (const char* ok : {"127.0.0.1:3552", "127.0.0.2", "10.1.2.3:80", "[::1]:3552", "[fe80::1]",
                         "localhost:3552", "LOCALHOST", "dashboard.localhost:1"}) {
    EXPECT_TRUE(HostAllowed(true, ok, none)) << ok;
  }
  for (const char* refused : {"evil.example:3552", "evil.example", "127.0.0.1.nip.io:3552",
                              "localhost.evil.example", "gateway.example", "", "[::1", "a b"}) {
    EXPECT_FALSE(HostAllowed(true, refused, none)) << refused;
  }
  const std::vector<std::string> listed = {"gateway.example", "pbx-1.local"};
  EXPECT_TRUE(HostAllowed(true, "Gateway.Example:3552", listed));
  EXPECT_TRUE(HostAllowed(true, "gateway.example.", listed));
  EXPECT_TRUE(HostAllowed(true, "pbx-1.local", listed));
  EXPECT_FALSE(HostAllowed(true, "evil.example:3552", listed));
  EXPECT_FALSE(HostAllowed(true, "sub.gateway.example", listed));
}

TEST(HostAllowedTest, NoHostHeaderAtAllIsNotABrowser) { EXPECT_TRUE(HostAllowed(false, "", {})); }

}  // namespace
}  // namespace telestra::gateway
