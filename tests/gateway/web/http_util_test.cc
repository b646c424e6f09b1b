#include "gateway/web/http_util.h"

#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

TEST(RequestTargetTest, SplitsPathAndDecodesQueryParameters) {
  auto target = ParseRequestTarget("/ws?after_seq=42&instance=ab%2Fc&token=a+b%20c&flag");
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->path, "/ws");
  EXPECT_EQ(target->Param("after_seq"), "42");
  EXPECT_EQ(target->Param("instance"), "ab/c");
  EXPECT_EQ(target->Param("token"), "a b c");
  EXPECT_EQ(target->Param("flag"), "");
  EXPECT_FALSE(target->Param("missing").has_value());
}

TEST(RequestTargetTest, FirstOfRepeatedParametersWins) {
  auto target = ParseRequestTarget("/?a=1&a=2");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->Param("a"), "1");
}

TEST(RequestTargetTest, DecodesThePathButNotPlusInIt) {
  auto target = ParseRequestTarget("/a%20b+c/%2e%2e");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->path, "/a b+c/..");
}

TEST(RequestTargetTest, RejectsBadEscapesNulAndRelativeTargets) {
  EXPECT_FALSE(ParseRequestTarget("/%zz").ok());
  EXPECT_FALSE(ParseRequestTarget("/%4").ok());
  EXPECT_FALSE(ParseRequestTarget("/a%00b").ok());
  EXPECT_FALSE(ParseRequestTarget("/?x=%00").ok());
  EXPECT_FALSE(ParseRequestTarget("index.html").ok());
  EXPECT_FALSE(ParseRequestTarget("http://host/").ok());
  EXPECT_FALSE(ParseRequestTarget("").ok());
}

TEST(RequestTargetTest, IgnoresAFragment) {
  auto target = ParseRequestTarget("/?a=1#frag");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->Param("a"), "1");
}

TEST(TokenEqualsTest, MatchesOnlyTheExactNonEmptyToken) {
  EXPECT_TRUE(TokenEquals("s3cret", "s3cret"));
  EXPECT_FALSE(TokenEquals("s3cre", "s3cret"));
  EXPECT_FALSE(TokenEquals("s3cret ", "s3cret"));
  EXPECT_FALSE(TokenEquals("S3CRET", "s3cret"));
  EXPECT_FALSE(TokenEquals("", ""));
  EXPECT_FALSE(TokenEquals("", "s3cret"));
  EXPECT_TRUE(TokenEquals(std::string(5000, 'x'), std::string(5000, 'x')));
}

TEST(BearerTokenTest, ReadsTheTokenOfABearerHeader) {
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("bearer   abc  "), "abc");
  EXPECT_EQ(BearerToken("BEARER a b"), "a b");
  EXPECT_FALSE(BearerToken("Basic YWxhZGRpbjpvcGVuc2VzYW1l").has_value());
  EXPECT_FALSE(BearerToken("Bearer ").has_value());
  EXPECT_FALSE(BearerToken("Bearerabc").has_value());
  EXPECT_FALSE(BearerToken("").has_value());
}

TEST(CookieValueTest, FindsTheNamedCookieAndDecodesIt) {
  EXPECT_EQ(CookieValue("a=1; telestra_token_3552=s%20t; b=2", "telestra_token_3552"), "s t");
  EXPECT_EQ(CookieValue("telestra_token_3552=\"quoted\"", "telestra_token_3552"), "quoted");
  EXPECT_FALSE(CookieValue("telestra_token_3553=x", "telestra_token_3552").has_value());
  EXPECT_FALSE(CookieValue("xtelestra_token_3552=x", "telestra_token_3552").has_value());
  EXPECT_FALSE(CookieValue("", "a").has_value());
}

TEST(SameOriginTest, ComparesSchemeLessHostAndPort) {
  EXPECT_TRUE(SameOrigin("http://127.0.0.1:3552", "127.0.0.1:3552"));
  EXPECT_TRUE(SameOrigin("https://Gateway.Example:8443", "gateway.example:8443"));
  EXPECT_TRUE(SameOrigin("http://gateway.example", "gateway.example"));
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:3553", "127.0.0.1:3552"));
  EXPECT_FALSE(SameOrigin("http://evil.example", "127.0.0.1:3552"));
  EXPECT_FALSE(SameOrigin("null", "127.0.0.1:3552"));
  EXPECT_FALSE(SameOrigin("file://", "127.0.0.1:3552"));
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:3552/path", "127.0.0.1:3552"));
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:3552", ""));
}

TEST(ParseUint64Test, AcceptsOnlyPlainDecimals) {
  EXPECT_EQ(ParseUint64("0"), 0u);
  EXPECT_EQ(ParseUint64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseUint64("18446744073709551616").has_value());
  EXPECT_FALSE(ParseUint64("-1").has_value());
  EXPECT_FALSE(ParseUint64("+1").has_value());
  EXPECT_FALSE(ParseUint64(" 1").has_value());
  EXPECT_FALSE(ParseUint64("1e3").has_value());
  EXPECT_FALSE(ParseUint64("").has_value());
}

}  // namespace
}  // namespace telestra::gateway
