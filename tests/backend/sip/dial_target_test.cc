#include "backend/sip/dial_target.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

constexpr char kServer[] = "127.0.0.1:5060";

DialTarget Ok(const std::string& num, const std::string& server = kServer) {
  absl::StatusOr<DialTarget> target = ParseDialTarget(num, server);
  EXPECT_TRUE(target.ok()) << num << ": " << target.status();
  return target.ok() ? *target : DialTarget{};
}

std::string Error(const std::string& num) {
  absl::StatusOr<DialTarget> target = ParseDialTarget(num, kServer);
  EXPECT_FALSE(target.ok()) << num << " was accepted as " << (target.ok() ? target->uri : "");
  EXPECT_EQ(target.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(target.status().message());
}

TEST(DialTargetTest, ADialStringIsCalledAtTheAccountsServer) {
  DialTarget target = Ok("3002");
  EXPECT_EQ(target.uri, "sip:3002@127.0.0.1:5060");
  EXPECT_TRUE(target.in_domain);
  EXPECT_EQ(Ok("+44(0)20-7946.0018*9_~!'x").uri, "sip:+44(0)20-7946.0018*9_~!'x@127.0.0.1:5060");
  EXPECT_EQ(Ok("3002", "pbx.example").uri, "sip:3002@pbx.example");
  EXPECT_EQ(Ok(std::string(64, '9')).uri.size(), 4 + 64 + 1 + 14u);
}

TEST(DialTargetTest, AHashIsSentPercentEncoded) {
  EXPECT_EQ(Ok("*72#").uri, "sip:*72%23@127.0.0.1:5060");
}

// The reproduced attack: a dial string that makes the Request-URI point at
// another host (sip:1000@127.0.0.2:5999;x=@127.0.0.1:5060).
TEST(DialTargetTest, ADialStringCannotNameAnotherHost) {
  EXPECT_EQ(Error("1000@127.0.0.2:5999;x="), "Invalid number: 1000@127.0.0.2:5999;x=");
  for (const char* bad :
       {"1000@evil", "1000;maddr=127.0.0.2", "1000?Route=x", "<sip:x>", "10\"00", "10&00", "a=b",
        "1,2", "1/2", "10 00", "1000\t", ":5060", "%40", "[::1]", "\\"}) {
    EXPECT_EQ(Error(bad).rfind("Invalid number: ", 0), 0u) << bad;
  }
  EXPECT_EQ(Error(""), "Invalid number: ");
  EXPECT_EQ(Error(std::string(65, '1')).substr(0, 16), "Invalid number: ");
}

TEST(DialTargetTest, ControlCharactersAreShownEscaped) {
  EXPECT_EQ(Error("1000\r\nVia: x"), "Invalid number: 1000\\r\\nVia: x");
  // (a digit after an escape is escaped too, so that none can be misread)
  EXPECT_EQ(Error(std::string("10\0"
                              "0",
                              4)),
            "Invalid number: 10\\x00\\x30");
  EXPECT_EQ(Error("10\x7f"), "Invalid number: 10\\x7f");
}

TEST(DialTargetTest, AUriAtTheAccountsServerIsInTheDomain) {
  EXPECT_TRUE(Ok("sip:3002@127.0.0.1:5060").in_domain);
  EXPECT_TRUE(Ok("SIP:3002@127.0.0.1").in_domain);  // default port 5060, scheme in any case
  EXPECT_TRUE(Ok("sip:3002@PBX.example;user=phone", "pbx.example:5060").in_domain);
  EXPECT_TRUE(Ok("tel:+15551234567").in_domain);  // only the proxy can route it
  EXPECT_EQ(Ok("sip:3002@127.0.0.1:5060").uri, "sip:3002@127.0.0.1:5060");
}

TEST(DialTargetTest, AUriElsewhereIsNotInTheDomain) {
  EXPECT_FALSE(Ok("sip:1000@127.0.0.2:5999").in_domain);
  EXPECT_FALSE(Ok("sip:1000@127.0.0.1:5061").in_domain);
  EXPECT_FALSE(Ok("sips:3002@127.0.0.1").in_domain);  // sips: defaults to 5061
  EXPECT_FALSE(Ok("sip:1000@127.0.0.2:5999;x=@127.0.0.1").in_domain);
  EXPECT_FALSE(Ok("sip:1000@[::1]:5060").in_domain);
}

TEST(DialTargetTest, AUriThatCouldBreakAHeaderOrCarryHeadersIsRefused) {
  for (const char* bad :
       {"sip:1000@127.0.0.1?Route=%3Csip:evil%3E", "sip:a@b>;x", "sip:a@b c", "sip:a@\"b\"",
        "sip:user:secret@127.0.0.1", "sip:", "sip:@", "sip:1000@", "sip:1000@ho_st",
        "tel:", "tel:123@host", "http://x", "sip:a@b\r\nVia: x"}) {
    EXPECT_EQ(Error(bad).rfind("Invalid number: ", 0), 0u) << bad;
  }
  EXPECT_EQ(Error("sip:" + std::string(300, 'a') + "@h").substr(0, 16), "Invalid number: ");
}

}  // namespace
}  // namespace telestra::backend
