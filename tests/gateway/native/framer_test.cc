#include "gateway/native/framer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

using Kind = Framer::Kind;

// A frame copied out of the framer (its text is only valid until Next()).
struct Got {
  Kind kind;
  std::string text;
  bool operator==(const Got& o) const {
    return kind == o.kind && text == o.text;
  }
};

std::ostream& operator<<(std::ostream& os, const Got& g) {
  switch (g.kind) {
    case Kind::kNone:
      return os << "None";
    case Kind::kMessage:
      return os << "Message(" << g.text << ")";
    case Kind::kTooLarge:
      return os << "TooLarge";
    case Kind::kGarbage:
      return os << "Garbage";
  }
  return os;
}

Got Msg(const std::string& text) { return {Kind::kMessage, text}; }
const Got kTooLarge{Kind::kTooLarge, ""};
const Got kGarbage{Kind::kGarbage, ""};

// Drains every complete frame.
void Drain(Framer& framer, std::vector<Got>* out) {
  for (Framer::Frame f = framer.Next(); f.kind != Kind::kNone;
       f = framer.Next()) {
    out->push_back({f.kind, std::string(f.text)});
  }
}

// Feeds `input` in pieces of `chunk` bytes (0: all at once), draining after
// every read like a connection would.
std::vector<Got> Frames(const std::string& input, size_t chunk = 0,
                        size_t max = 65536) {
  Framer framer(max);
  std::vector<Got> out;
  if (chunk == 0) chunk = input.size() == 0 ? 1 : input.size();
  for (size_t i = 0; i < input.size(); i += chunk) {
    framer.Feed(absl::string_view(input).substr(i, chunk));
    Drain(framer, &out);
  }
  return out;
}

using Frames_ = std::vector<Got>;

const char kSeedLogin[] =
    "{\n"
    "    \"cmd\": \"login\",\n"
    "    \"account\": \"account-3\",\n"
    "    \"user\": \"3003\",\n"
    "    \"pass\": \"sip3003\",\n"
    "    \"server\": \"10.2.101.23\"\n"
    "}";

// The seed's first example: the comma after "account-1" is missing.
const char kSeedBrokenMakeCall[] =
    "{\n"
    "    \"cmd\": \"make-call\",\n"
    "    \"account\": \"account-1\"\n"
    "    \"num\": \"3002\"\n"
    "}";

const char kSeedGetStatus[] =
    "{\n"
    "    \"cmd\": \"get-status\",\n"
    "    \"account\": \"account-1\"\n"
    "}";

TEST(FramerTest, SplitsNulTerminatedMessages) {
  std::string in = std::string("{\"cmd\":\"a\"}") + '\0' + "{\"cmd\":\"b\"}" +
                   '\0';
  EXPECT_EQ(Frames(in),
            (Frames_{Msg("{\"cmd\":\"a\"}"), Msg("{\"cmd\":\"b\"}")}));
}

TEST(FramerTest, SplitsLfTerminatedMessages) {
  EXPECT_EQ(Frames("{\"a\":1}\n{\"b\":2}\n"),
            (Frames_{Msg("{\"a\":1}"), Msg("{\"b\":2}")}));
}

TEST(FramerTest, SplitsCrLfTerminatedMessages) {
  EXPECT_EQ(Frames("{\"a\":1}\r\n{\"b\":2}\r\n"),
            (Frames_{Msg("{\"a\":1}"), Msg("{\"b\":2}")}));
}

TEST(FramerTest, SplitsMessagesWithNothingBetweenThem) {
  EXPECT_EQ(Frames("{\"a\":1}{\"b\":2}{}"),
            (Frames_{Msg("{\"a\":1}"), Msg("{\"b\":2}"), Msg("{}")}));
}

TEST(FramerTest, SkipsMixedSeparatorsBetweenMessages) {
  std::string in = std::string(" \t\r\n") + '\0' + '\0' + "{\"a\":1}" +
                   std::string(" \n\0\t", 4) + "{\"b\":2}";
  EXPECT_EQ(Frames(in), (Frames_{Msg("{\"a\":1}"), Msg("{\"b\":2}")}));
}

TEST(FramerTest, FramesTheSeedsPrettyPrintedExamples) {
  std::string in = std::string(kSeedLogin) + "\n" + kSeedGetStatus + '\0';
  EXPECT_EQ(Frames(in), (Frames_{Msg(kSeedLogin), Msg(kSeedGetStatus)}));
}

TEST(FramerTest, FramesTheSeedsExampleWithAMissingComma) {
  // Framing only needs balanced braces; the codec rejects the JSON.
  std::string in = std::string(kSeedBrokenMakeCall) + "\n" + kSeedGetStatus;
  EXPECT_EQ(Frames(in),
            (Frames_{Msg(kSeedBrokenMakeCall), Msg(kSeedGetStatus)}));
}

TEST(FramerTest, ReassemblesMessagesDeliveredByteByByte) {
  std::string in = std::string(kSeedLogin) + '\0' + "{\"a\":\"}\\\"{\"}" +
                   "\r\n" + kSeedGetStatus + "\n";
  EXPECT_EQ(Frames(in, 1),
            (Frames_{Msg(kSeedLogin), Msg("{\"a\":\"}\\\"{\"}"),
                     Msg(kSeedGetStatus)}));
}

TEST(FramerTest, ReassemblesMessagesAcrossEveryChunkSize) {
  std::string in = std::string(kSeedLogin) + '\0' + "{\"x\":[{\"y\":\"\\\\\"}]}" +
                   kSeedGetStatus + "\n";
  Frames_ want = {Msg(kSeedLogin), Msg("{\"x\":[{\"y\":\"\\\\\"}]}"),
                  Msg(kSeedGetStatus)};
  for (size_t chunk = 1; chunk <= in.size(); ++chunk) {
    EXPECT_EQ(Frames(in, chunk), want) << "chunk " << chunk;
  }
}

TEST(FramerTest, SplitsManyMessagesDeliveredInOneRead) {
  std::string in;
  Frames_ want;
  for (int i = 0; i < 1000; ++i) {
    std::string m = "{\"cmd\":\"get-status\",\"account\":\"a" +
                    std::to_string(i) + "\"}";
    in += m;
    in += '\0';
    want.push_back(Msg(m));
  }
  EXPECT_EQ(Frames(in), want);
}

TEST(FramerTest, IgnoresBracesInsideStrings) {
  const std::string m = "{\"a\":\"{{{\",\"b\":\"}}}}\",\"c\":{\"d\":\"}\"}}";
  EXPECT_EQ(Frames(m + "\n" + m), (Frames_{Msg(m), Msg(m)}));
}

TEST(FramerTest, IgnoresEscapedQuotesInsideStrings) {
  // "a\"}" and "\\" must not end the string early or late.
  const std::string m = "{\"a\":\"x\\\"}\",\"b\":\"\\\\\",\"c\":\"}\"}";
  EXPECT_EQ(Frames(m + m, 1), (Frames_{Msg(m), Msg(m)}));
}

TEST(FramerTest, KeepsNestedObjectsInOneMessage) {
  const std::string m = "{\"a\":{\"b\":{\"c\":[{},{}]}}}";
  EXPECT_EQ(Frames(m + "\n"), (Frames_{Msg(m)}));
}

TEST(FramerTest, WaitsForTheRestOfAnUnfinishedMessage) {
  Framer framer(1024);
  framer.Feed("{\"cmd\":\"log");
  EXPECT_EQ(framer.Next().kind, Kind::kNone);
  EXPECT_EQ(framer.buffered_bytes(), 11u);
  framer.Feed("in\"}");
  Framer::Frame f = framer.Next();
  EXPECT_EQ(f.kind, Kind::kMessage);
  EXPECT_EQ(f.text, "{\"cmd\":\"login\"}");
  EXPECT_EQ(framer.Next().kind, Kind::kNone);
  EXPECT_EQ(framer.buffered_bytes(), 0u);
}

TEST(FramerTest, AcceptsAMessageExactlyAtTheLimit) {
  const std::string m = "{\"a\":\"" + std::string(100 - 8, 'x') + "\"}";
  ASSERT_EQ(m.size(), 100u);
  EXPECT_EQ(Frames(m + '\0', 0, 100), (Frames_{Msg(m)}));
  EXPECT_EQ(Frames(m + '\0', 1, 100), (Frames_{Msg(m)}));
}

TEST(FramerTest, ReportsAMessageOneByteOverTheLimitOnce) {
  const std::string m = "{\"a\":\"" + std::string(101 - 8, 'x') + "\"}";
  ASSERT_EQ(m.size(), 101u);
  EXPECT_EQ(Frames(m + '\0', 0, 100), (Frames_{kTooLarge}));
  EXPECT_EQ(Frames(m + '\0', 1, 100), (Frames_{kTooLarge}));
}

TEST(FramerTest, FramesTheMessageAfterAnOversizeMessage) {
  const std::string big = "{\"a\":\"" + std::string(5000, 'x') + "\"}";
  const std::string next = "{\"cmd\":\"get-status\",\"account\":\"a\"}";
  for (size_t chunk : {0, 1, 7, 64, 4096}) {
    EXPECT_EQ(Frames(big + next + "\n" + next, chunk, 100),
              (Frames_{kTooLarge, Msg(next), Msg(next)}))
        << "chunk " << chunk;
    EXPECT_EQ(Frames(big + '\0' + next, chunk, 100),
              (Frames_{kTooLarge, Msg(next)}))
        << "chunk " << chunk;
  }
}

TEST(FramerTest, DiscardsAPrettyPrintedOversizeMessageUpToItsClosingBrace) {
  // Nested objects and braces in strings inside the oversize part must not
  // end the discarding early.
  std::string big = "{\n  \"a\": {\n    \"b\": \"}}}\\\"}}\",\n    \"c\": \"" +
                    std::string(300, 'y') + "\"\n  },\n  \"d\": \"}\"\n}";
  const std::string next = std::string(kSeedGetStatus);
  for (size_t chunk : {0, 1, 3, 50}) {
    EXPECT_EQ(Frames(big + "\n" + next + "\n", chunk, 100),
              (Frames_{kTooLarge, Msg(next)}))
        << "chunk " << chunk;
  }
}

TEST(FramerTest, NulEndsTheDiscardingOfAnUnfinishedOversizeMessage) {
  const std::string big = "{\"a\":\"" + std::string(500, 'x');  // no end
  const std::string next = "{\"b\":1}";
  EXPECT_EQ(Frames(big + '\0' + next, 0, 100),
            (Frames_{kTooLarge, Msg(next)}));
  EXPECT_EQ(Frames(big + '\0' + next, 1, 100),
            (Frames_{kTooLarge, Msg(next)}));
}

TEST(FramerTest, SkipsGarbageBeforeAMessageUpToTheNextLf) {
  EXPECT_EQ(Frames("hello {\"x\":1}\n{\"a\":1}"),
            (Frames_{kGarbage, Msg("{\"a\":1}")}));
  EXPECT_EQ(Frames("hello {\"x\":1}\n{\"a\":1}", 1),
            (Frames_{kGarbage, Msg("{\"a\":1}")}));
}

TEST(FramerTest, SkipsGarbageUpToTheNextNul) {
  std::string in = std::string("[1,2]") + '\0' + "{\"a\":1}" + '\0';
  EXPECT_EQ(Frames(in), (Frames_{kGarbage, Msg("{\"a\":1}")}));
}

TEST(FramerTest, ReportsEachRunOfGarbageOnce) {
  EXPECT_EQ(Frames("abc\n\"def\"\n{\"a\":1}\n}\n", 2),
            (Frames_{kGarbage, kGarbage, Msg("{\"a\":1}"), kGarbage}));
}

TEST(FramerTest, NulInsideAnUnfinishedObjectEndsIt) {
  std::string in = std::string("{\"cmd\":\"log") + '\0' + "{\"a\":1}";
  EXPECT_EQ(Frames(in), (Frames_{Msg("{\"cmd\":\"log"), Msg("{\"a\":1}")}));
  EXPECT_EQ(Frames(in, 1),
            (Frames_{Msg("{\"cmd\":\"log"), Msg("{\"a\":1}")}));
  std::string nested = std::string("{\"a\":{\"b\":2") + '\0' + "{}";
  EXPECT_EQ(Frames(nested), (Frames_{Msg("{\"a\":{\"b\":2"), Msg("{}")}));
}

TEST(FramerTest, BufferedBytesStayBoundedByTheLimitPlusOneRead) {
  const size_t kMax = 1000;
  const size_t kRead = 100;
  Framer framer(kMax);
  std::vector<Got> out;
  // An endless message, a long garbage line, then many small messages.
  std::string endless = "{\"a\":\"" + std::string(100000, 'x');
  std::string garbage = std::string(100000, 'g');
  std::string in = endless + '\0' + garbage + "\n";
  for (int i = 0; i < 2000; ++i) in += "{\"cmd\":\"x\"}";
  size_t most = 0;
  for (size_t i = 0; i < in.size(); i += kRead) {
    framer.Feed(absl::string_view(in).substr(i, kRead));
    Drain(framer, &out);
    most = std::max(most, framer.buffered_bytes());
  }
  EXPECT_LE(most, kMax + kRead);
  ASSERT_EQ(out.size(), 2u + 2000u);
  EXPECT_EQ(out[0], kTooLarge);
  EXPECT_EQ(out[1], kGarbage);
  EXPECT_EQ(out[2], Msg("{\"cmd\":\"x\"}"));
  EXPECT_EQ(framer.buffered_bytes(), 0u);
}

TEST(FramerTest, SeedFragmentWithoutOpeningBraceDoesNotSwallowTheNextMessage) {
  // Several of the seed's examples lost their opening brace.
  const std::string fragment =
      "\"cmd\": \"answer-call\",\n"
      "   \"account\": \"account-1\",\n"
      "   \"call_id\": 0\n"
      "}\n";
  std::vector<Got> frames = Frames(fragment + kSeedGetStatus + "\n");
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back(), Msg(kSeedGetStatus));
  for (size_t i = 0; i + 1 < frames.size(); ++i) {
    EXPECT_EQ(frames[i], kGarbage);
  }
}

}  // namespace
}  // namespace telestra::gateway
