#include "backend/sip_syntax.h"

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

TEST(SipSyntaxTest, UsersAreUnreservedCharacters) {
  for (const char* ok : {"3001", "john.doe", "a-b_c!~*'()+$", "A"}) {
    EXPECT_TRUE(ValidateSipUser(ok).ok()) << ok;
  }
  for (const char* bad : {"", "3001@evil", "a:b", "a;b", "a?b", "a/b", "a<b", "a>b", "a\"b",
                          "a&b", "a=b", "a,b", "a%40", "a#", "a b", "a\tb", "a\r\n"}) {
    EXPECT_FALSE(ValidateSipUser(bad).ok()) << bad;
  }
  EXPECT_EQ(ValidateSipUser("a\x01").message(),
            "user may only contain letters, digits and - _ . ! ~ * ' ( ) + $, got 'a\\x01'");
  EXPECT_FALSE(ValidateSipUser(std::string(65, 'a')).ok());
  EXPECT_TRUE(ValidateSipUser(std::string(64, 'a')).ok());
}

TEST(SipSyntaxTest, ServersAreHostAndPort) {
  absl::StatusOr<ServerAddress> server = ParseSipServer("pbx.example:5080");
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(server->host, "pbx.example");
  EXPECT_EQ(server->port, 5080);
  server = ParseSipServer("[::1]:5060");
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(server->host, "::1");
  EXPECT_EQ(ParseSipServer("127.0.0.1")->port, 0);
  for (const char* bad : {"", ":5060", "a b", "h;maddr=x", "h/x", "h@x", "[::1", "[::1]x",
                          "[::g]", "::1", "h:0", "h:65536", "h:+1", "h:x", ".h", "-h", "h\r\n"}) {
    EXPECT_FALSE(ParseSipServer(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseSipServer("h:0").status().message(), "server port must be 1..65535, got 0");
  EXPECT_EQ(ParseSipServer("a b").status().message(),
            "server host must not contain whitespace, got 'a b'");
}

}  // namespace
}  // namespace telestra::backend
