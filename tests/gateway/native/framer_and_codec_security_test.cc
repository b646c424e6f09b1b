// The native port's framer and codec against issue 17: HTTP requests are
// told apart from garbage (so that the session can close them), the `auth`
// handshake is decoded, and buffers shrink back after an oversized message.
#include <string>
#include <vector>

#include "gateway/native/framer.h"
#include "gateway/native/json_codec.h"
#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

using Kind = Framer::Kind;

// The kinds of every frame of `input` fed in reads of `chunk` bytes.
std::vector<Kind> Kinds(const std::string& input, size_t chunk) {
  Framer framer(65536);
  std::vector<Kind> kinds;
  for (size_t i = 0; i < input.size(); i += chunk) {
    framer.Feed(absl::string_view(input).substr(i, chunk));
    for (Framer::Frame f = framer.Next(); f.kind != Kind::kNone; f = framer.Next()) {
      kinds.push_back(f.kind);
    }
  }
  return kinds;
}

Kind FirstKind(const std::string& input, size_t chunk) {
  std::vector<Kind> kinds = Kinds(input, chunk);
  return kinds.empty() ? Kind::kNone : kinds.front();
}

// A browser page's cross-site "simple" POST: no preflight, a text/plain
// body that is a native command. Before the fix the framer skipped the
// request line and headers as garbage and delivered the body as a message.
constexpr char kCrossSitePost[] =
    "POST / HTTP/1.1\r\nHost: 127.0.0.1:3550\r\nOrigin: http://evil.example\r\n"
    "Content-Type: text/plain\r\nContent-Length: 45\r\n\r\n"
    "{\"cmd\":\"make-call\",\"account\":\"a\",\"num\":\"1\"}";

TEST(FramerHttpTest, ReportsEveryHttpRequestLineAsHttpHoweverItArrives) {
  for (const std::string request :
       {std::string("GET / HTTP/1.1\r\n"), std::string("POST /x HTTP/1.1\r\n"),
        std::string("PUT /x HTTP/1.1\r\n"), std::string("OPTIONS * HTTP/1.1\r\n"),
        std::string("HEAD / HTTP/1.0\r\n"), std::string("\r\n\0GET /\n", 9)}) {
    for (size_t chunk : {size_t{1}, size_t{3}, request.size()}) {
      EXPECT_EQ(FirstKind(request, chunk), Kind::kHttp) << request << " in reads of " << chunk;
    }
  }
}

TEST(FramerHttpTest, ACrossSitePostWithAJsonBodyIsHttpBeforeItsBody) {
  for (size_t chunk : {size_t{1}, size_t{7}, sizeof(kCrossSitePost)}) {
    std::vector<Kind> kinds = Kinds(kCrossSitePost, chunk);
    ASSERT_FALSE(kinds.empty());
    EXPECT_EQ(kinds.front(), Kind::kHttp);
  }
}

TEST(FramerHttpTest, AHostHeaderLineInAnyCaseIsHttp) {
  EXPECT_EQ(Kinds("DELETE / HTTP/1.1\r\nHost: x\r\n", 4),
            (std::vector<Kind>{Kind::kGarbage, Kind::kHttp}));
  EXPECT_EQ(FirstKind("hOsT:x\n", 1), Kind::kHttp);
  EXPECT_EQ(FirstKind("host: x\n", 100), Kind::kHttp);
}

TEST(FramerHttpTest, LookAlikesStayGarbageAndMessagesStayMessages) {
  for (const std::string garbage :
       {"GETX\n", "get / HTTP/1.1\n", "POST\n", "Hos\n", "Hostname: x\n", "OPTION \n", "[1,2]\n"}) {
    EXPECT_EQ(Kinds(garbage, 1), std::vector<Kind>{Kind::kGarbage}) << garbage;
    EXPECT_EQ(Kinds(garbage, garbage.size()), std::vector<Kind>{Kind::kGarbage}) << garbage;
  }
  EXPECT_EQ(Kinds("{\"cmd\":\"GET \",\"Host:\":1}\0", 1), std::vector<Kind>{Kind::kMessage});
}

TEST(FramerHttpTest, HoldsAtMostSevenBytesUntilItCanTell) {
  Framer framer(256);
  framer.Feed("OPTIONS");
  EXPECT_EQ(framer.Next().kind, Kind::kNone);
  EXPECT_EQ(framer.buffered_bytes(), 7u);
  framer.Feed(" * HTTP/1.1\r\n");
  EXPECT_EQ(framer.Next().kind, Kind::kHttp);
}

// ---- buffers shrink back (issue 17, section 5)

std::string MessageOf(size_t size) {
  const std::string head = R"({"cmd":"get-status","account":"account-1","pad":")";
  const std::string tail = R"("})";
  return head + std::string(size - head.size() - tail.size(), 'x') + tail;
}

TEST(FramerBufferTest, ShrinksBackAfterA64KibMessageArrivingInReads) {
  Framer framer(65536);
  const std::string message = MessageOf(65536) + '\0';
  int messages = 0;
  for (size_t i = 0; i < message.size(); i += 16384) {
    framer.Feed(absl::string_view(message).substr(i, 16384));
    for (Framer::Frame f = framer.Next(); f.kind != Kind::kNone; f = framer.Next()) {
      EXPECT_EQ(f.kind, Kind::kMessage);
      EXPECT_EQ(f.text.size(), 65536u);
      ++messages;
    }
  }
  EXPECT_EQ(messages, 1);
  EXPECT_EQ(framer.buffered_bytes(), 0u);
  EXPECT_LE(framer.buffer_capacity(), Framer::kRetainedBytes);
  // Small messages after it are framed as before.
  framer.Feed("{\"a\":1}\0");
  Framer::Frame f = framer.Next();
  EXPECT_EQ(f.kind, Kind::kMessage);
  EXPECT_EQ(f.text, "{\"a\":1}");
}

TEST(FramerBufferTest, ShrinksBackAfterAnOversizeMessageAndKeepsAPartialOne) {
  Framer framer(1024);
  framer.Feed(std::string(1, '{') + std::string(60000, ' ') + "}");
  EXPECT_EQ(framer.Next().kind, Kind::kTooLarge);
  EXPECT_EQ(framer.Next().kind, Kind::kNone);
  EXPECT_LE(framer.buffer_capacity(), Framer::kRetainedBytes);
  // The start of the next message stays held.
  framer.Feed("{\"cmd\":\"get-");
  EXPECT_EQ(framer.Next().kind, Kind::kNone);
  framer.Feed("status\"}");
  Framer::Frame f = framer.Next();
  EXPECT_EQ(f.kind, Kind::kMessage);
  EXPECT_EQ(f.text, "{\"cmd\":\"get-status\"}");
}

TEST(JsonCodecBufferTest, FreesItsBuffersAfterALargeMessageAndKeepsThemForSmallOnes) {
  JsonCodec codec;
  DecodedCommand small = codec.Decode(R"({"cmd":"get-status","account":"account-1"})");
  ASSERT_TRUE(small.command.ok()) << small.command.status();
  const size_t small_capacity = codec.buffer_capacity();
  EXPECT_GT(small_capacity, 0u);
  EXPECT_LT(small_capacity, 3 * JsonCodec::kRetainedMessageBytes);

  DecodedCommand large = codec.Decode(MessageOf(65536));
  ASSERT_TRUE(large.command.ok()) << large.command.status();
  EXPECT_EQ(large.command->get_status().account(), "account-1");
  EXPECT_LE(codec.buffer_capacity(), 64u);  // before: over 128 KiB

  DecodedCommand again = codec.Decode(R"({"cmd":"get-status","account":"account-2"})");
  ASSERT_TRUE(again.command.ok()) << again.command.status();
  EXPECT_EQ(again.command->get_status().account(), "account-2");
  EXPECT_LT(codec.buffer_capacity(), 3 * JsonCodec::kRetainedMessageBytes);
}

// ---- the auth handshake's message

TEST(JsonCodecAuthTest, DecodesAuthWithItsSecretAndToken) {
  JsonCodec codec;
  DecodedCommand auth = codec.Decode(R"({"cmd":"auth","secret":"s3cr\"et","token":"t1"})");
  EXPECT_TRUE(auth.auth);
  ASSERT_TRUE(auth.secret.ok()) << auth.secret.status();
  EXPECT_EQ(*auth.secret, "s3cr\"et");
  EXPECT_EQ(auth.token, "t1");
  // Front ends without the handshake see an unknown command, as before.
  ASSERT_FALSE(auth.command.ok());
  EXPECT_EQ(auth.command.status().message(), "Unknown command: auth");
}

TEST(JsonCodecAuthTest, ReportsAMissingOrNonStringSecret) {
  JsonCodec codec;
  DecodedCommand missing = codec.Decode(R"({"cmd":"auth"})");
  EXPECT_TRUE(missing.auth);
  EXPECT_EQ(missing.secret.status().message(), "Missing field: secret");
  DecodedCommand number = codec.Decode(R"({"cmd":"auth","secret":5})");
  EXPECT_TRUE(number.auth);
  EXPECT_EQ(number.secret.status().message(), "Field secret must be a string");
  DecodedCommand broken = codec.Decode(R"({"cmd":"auth","secret":"x")");
  EXPECT_FALSE(broken.auth);  // malformed JSON first
}

TEST(JsonCodecAuthTest, OtherCommandsIgnoreASecretField) {
  JsonCodec codec;
  DecodedCommand status = codec.Decode(R"({"cmd":"get-status","account":"a","secret":1})");
  EXPECT_FALSE(status.auth);
  EXPECT_TRUE(status.command.ok()) << status.command.status();
}

TEST(JsonCodecAuthTest, EncodesAuthenticatedWithTheTokenEchoed) {
  EXPECT_EQ(JsonCodec::EncodeAuthenticated(""), R"({"event":"authenticated"})");
  EXPECT_EQ(JsonCodec::EncodeAuthenticated("t\"1"), R"({"event":"authenticated","token":"t\"1"})");
}

}  // namespace
}  // namespace telestra::gateway
