// The native port's bad-input battery (issue 6, docs/reliability.md).
//
// One gateway with account-1 and account-2 on a real Kamailio, a live call
// between them (account-1 calls 3002, account-2 answers), an "observer"
// client connected throughout, and an "attacker" connection that sends every
// case below. Each case:
//   - gets exactly the documented replies (docs/native-api.md, "Errors");
//   - leaves the attacker's connection usable: a get-status probe right
//     after the case is answered, after the case's replies and nothing else;
//   - does not disturb the call: the probe shows account-1's call active;
//   - is invisible to the observer.
// Each case is its own gtest case (registered from the table), followed by
// the framing stress cases and a final check of the call and the observer.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/hardening/hardening_support.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"

namespace telestra::testing {
namespace {

constexpr int kMaxMessageBytes = 65536;  // the default of [tcp-settings]
constexpr char kNotAnObject[] = "Malformed JSON: a message must be a JSON object";

// One expected reply.
using Expect = ExpectedReply;

Expect Fail(std::string error, std::optional<std::string> account = std::nullopt) {
  return Expect{"fail", std::move(error), false, std::move(account), std::nullopt};
}
Expect Malformed() { return Expect{"fail", "Malformed JSON: ", true, std::nullopt, std::nullopt}; }
Expect NotAnObject() { return Fail(kNotAnObject, ""); }
Expect Status(std::optional<std::string> token = std::nullopt) {
  return Expect{"status", "", false, std::string("account-1"), std::move(token)};
}

struct Case {
  std::string name;
  std::string bytes;  // sent as is (add the NUL yourself)
  std::vector<Expect> expect;
  // Instead of `expect`: any number of fails with documented texts.
  bool any_documented_fails = false;
};

std::string Nul(const std::string& json) { return json + std::string(1, '\0'); }

std::string HangupWithCallId(const std::string& call_id) {
  return Nul(
      absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", call_id, "}"));
}

// A get-status of account-1 padded with an unknown field to `size` bytes.
std::string PaddedGetStatus(size_t size) {
  const std::string head = R"({"cmd":"get-status","account":"account-1","pad":")";
  const std::string tail = R"("})";
  return head + std::string(size - head.size() - tail.size(), 'x') + tail;
}

std::string Nested(char open, char close, int depth) {
  return Nul(absl::StrCat(R"({"cmd":"get-status","account":"account-1","x":)",
                          std::string(depth, open), std::string(depth, close), "}"));
}

std::string NestedObjects(int depth) {
  std::string json;
  for (int i = 0; i < depth; ++i) json += R"({"a":)";
  json += "1";
  json += std::string(depth, '}');
  return Nul(json);
}

std::vector<Case> Battery() {
  const std::string A1 = "account-1";
  std::vector<Case> cases = {
      // ---- truncated and invalid JSON
      {"TruncatedValue", Nul(R"({"cmd":"get-status","account":})"), {Malformed()}},
      {"UnclosedObjectEndedByNul",
       Nul(R"({"cmd":"get-status","account":"account-1")"),
       {Malformed()}},
      {"UnclosedStringEndedByNul", Nul(R"({"cmd":"get-status","account":"acc)"), {Malformed()}},
      {"MissingCommaAsInTheVendorsFirstExample",
       "{\n    \"cmd\": \"make-call\",\n    \"account\": \"account-1\"\n    \"num\": \"3002\"\n}\n",
       {Malformed()}},
      {"VendorExampleWithoutOpeningBraceIsSkippedLineByLine",
       "\"cmd\": \"answer-call\",\n   \"account\": \"account-1\",\n   \"call_id\": 0\n}\n",
       {NotAnObject(), NotAnObject(), NotAnObject(), NotAnObject()}},
      {"SingleQuotes", Nul(R"({"cmd":'get-status'})"), {Malformed()}},
      {"TrailingComma", Nul(R"({"cmd":"get-status","account":"account-1",})"), {Malformed()}},
      {"UnquotedKey", Nul(R"({cmd:"get-status"})"), {Malformed()}},
      {"ExtraClosingBrace",
       Nul(R"({"cmd":"get-status","account":"account-1","token":"t9"}})"),
       {Status("t9"), NotAnObject()}},
      {"BadEscape", Nul(R"({"cmd":"get-status","account":"a\x"})"), {Malformed()}},
      {"BrokenTrue", Nul(R"({"cmd":"get-status","account":"account-1","x":tru})"), {Malformed()}},
      {"BrokenNull", Nul(R"({"cmd":"get-status","account":"account-1","x":nul})"), {Malformed()}},
      {"LeadingZero", Nul(R"({"cmd":"get-status","account":"account-1","x":01})"), {Malformed()}},
      {"DanglingDecimalPoint",
       Nul(R"({"cmd":"get-status","account":"account-1","x":1.})"),
       {Malformed()}},
      {"LoneMinus", Nul(R"({"cmd":"get-status","account":"account-1","x":-})"), {Malformed()}},
      {"UnbalancedArray",
       Nul(R"({"cmd":"get-status","account":"account-1","x":[1,2})"),
       {Malformed()}},
      {"LoneSurrogateEscape", Nul(R"({"cmd":"get-status","account":"\ud800"})"), {Malformed()}},
      {"UnescapedControlCharacter",
       Nul("{\"cmd\":\"get-status\",\"account\":\"a\tb\"}"),
       {Malformed()}},
      {"TruncatedUnicodeEscape",
       Nul(R"({"cmd":"get-status","account":"account-1","x":"\u00"})"),
       {Malformed()}},

      // ---- wrong types
      {"CmdIsANumber",
       Nul(R"({"cmd":42,"account":"account-1"})"),
       {Fail("Field cmd must be a string", A1)}},
      {"AccountIsANumber",
       Nul(R"({"cmd":"get-status","account":7})"),
       {Fail("Field account must be a string", "")}},
      {"AccountIsNull",
       Nul(R"({"cmd":"get-status","account":null})"),
       {Fail("Field account must be a string", "")}},
      {"AccountIsAnArray",
       Nul(R"({"cmd":"get-status","account":["account-1"]})"),
       {Fail("Field account must be a string", "")}},
      {"AccountIsAnObject",
       Nul(R"({"cmd":"get-status","account":{"name":"account-1"}})"),
       {Fail("Field account must be a string", "")}},
      {"LoginUserIsANumber",
       Nul(R"({"cmd":"login","account":"account-1","user":3001,"pass":"x","server":"s"})"),
       {Fail("Field user must be a string", A1)}},
      {"LoginPassIsABoolean",
       Nul(R"({"cmd":"login","account":"account-1","user":"3001","pass":true,"server":"s"})"),
       {Fail("Field pass must be a string", A1)}},
      {"LoginServerIsAnArray",
       Nul(R"({"cmd":"login","account":"account-1","user":"3001","pass":"x","server":["s"]})"),
       {Fail("Field server must be a string", A1)}},
      {"MakeCallNumIsANumber",
       Nul(R"({"cmd":"make-call","account":"account-1","num":3002})"),
       {Fail("Field num must be a string", A1)}},
      {"SubscribeExtendedIsAString",
       Nul(R"({"cmd":"subscribe","extended":"yes"})"),
       {Fail("Field extended must be a boolean", "")}},
      {"SubscribeExtendedIsANumber",
       Nul(R"({"cmd":"subscribe","extended":1})"),
       {Fail("Field extended must be a boolean", "")}},
      {"TokenIsANumber",
       Nul(R"({"cmd":"get-status","account":"account-1","token":5})"),
       {Fail("Field token must be a string", A1)}},
      {"CallIdIsABoolean",
       HangupWithCallId("true"),
       {Fail("Field call_id must be an integer", A1)}},
      {"CallIdIsAnObject",
       HangupWithCallId(R"({"id":0})"),
       {Fail("Field call_id must be an integer", A1)}},
      {"CallIdIsNull", HangupWithCallId("null"), {Fail("Field call_id must be an integer", A1)}},

      // ---- huge, negative and non-integer call ids
      {"CallIdNegative", HangupWithCallId("-1"), {Fail("Field call_id is out of range", A1)}},
      {"CallIdMostNegativeInt64",
       HangupWithCallId("-9223372036854775808"),
       {Fail("Field call_id is out of range", A1)}},
      {"CallIdBelowInt64",
       HangupWithCallId("-9223372036854775809"),
       {Fail("Field call_id is out of range", A1)}},
      {"CallIdJustAbove2To53",
       HangupWithCallId("9007199254740993"),
       {Fail("Field call_id is out of range", A1)}},
      {"CallIdMaxUint64",
       HangupWithCallId("18446744073709551615"),
       {Fail("Field call_id is out of range", A1)}},
      {"CallIdThirtyDigits",
       HangupWithCallId("123456789012345678901234567890"),
       {Fail("Field call_id is out of range", A1)}},
      {"CallIdFraction", HangupWithCallId("0.5"), {Fail("Field call_id must be an integer", A1)}},
      {"CallIdIntegralFloat",
       HangupWithCallId("1.0"),
       {Fail("Field call_id must be an integer", A1)}},
      {"CallIdExponent", HangupWithCallId("1e2"), {Fail("Field call_id must be an integer", A1)}},
      {"CallIdBeyondDouble", HangupWithCallId("1e400"), {Malformed()}},
      {"CallIdStringNegative",
       HangupWithCallId(R"("-1")"),
       {Fail("Field call_id must be an integer", A1)}},
      {"CallIdStringEmpty",
       HangupWithCallId(R"("")"),
       {Fail("Field call_id must be an integer", A1)}},
      {"CallIdStringWithSpace",
       HangupWithCallId(R"(" 0")"),
       {Fail("Field call_id must be an integer", A1)}},
      {"CallIdStringHex",
       HangupWithCallId(R"("0x0")"),
       {Fail("Field call_id must be an integer", A1)}},
      {"CallIdStringHuge",
       HangupWithCallId(R"("99999999999999999999")"),
       {Fail("Field call_id is out of range", A1)}},
      {"CallIdUnknown",
       HangupWithCallId("12345"),
       {Fail("Unknown call id 12345 for account: account-1", A1)}},
      {"CallIdOfTheOtherAccountsLeg",
       HangupWithCallId("1"),
       {Fail("Unknown call id 1 for account: account-1", A1)}},
      {"AnswerAnEstablishedCall",
       Nul(R"({"cmd":"answer-call","account":"account-2","call_id":1})"),
       {Fail("Call 1 is not an unanswered incoming call", "account-2")}},
      {"SwitchToAnUnknownCall",
       Nul(R"({"cmd":"switch-call","account":"account-1","call_id":77})"),
       {Fail("Unknown call id 77 for account: account-1", A1)}},

      // ---- unknown commands and fields, missing fields
      {"UnknownCommand",
       Nul(R"({"cmd":"dial","account":"account-1"})"),
       {Fail("Unknown command: dial", A1)}},
      {"CommandInCapitals",
       Nul(R"({"cmd":"GET-STATUS","account":"account-1"})"),
       {Fail("Unknown command: GET-STATUS", A1)}},
      {"EmptyCommand", Nul(R"({"cmd":"","account":"account-1"})"), {Fail("Unknown command: ", A1)}},
      {"MissingCmd", Nul(R"({"account":"account-1"})"), {Fail("Missing field: cmd", A1)}},
      {"EmptyObject", Nul("{}"), {Fail("Missing field: cmd", "")}},
      {"MissingAccount", Nul(R"({"cmd":"get-status"})"), {Fail("Missing field: account", "")}},
      {"UnknownAccount",
       Nul(R"({"cmd":"get-status","account":"account-9"})"),
       {Fail("Unknown account: account-9", "account-9")}},
      {"UnknownFieldsAreIgnored",
       Nul(R"({"cmd":"get-status","x":{"y":[1,2.5e3,{"z":null}]},"account":"account-1","w":true})"),
       {Status()}},
      {"DuplicateKeyLastOneCounts",
       Nul(R"({"cmd":"get-status","cmd":"dial","account":"account-1"})"),
       {Fail("Unknown command: dial", A1)}},
      {"LoginWithoutServer",
       Nul(R"({"cmd":"login","account":"account-1","user":"3001","pass":"x"})"),
       {Fail("Missing field: server", A1)}},
      {"LoginOfAnAccountNotInThePlan",
       Nul(R"({"cmd":"login","account":"nobody","user":"1","pass":"p","server":"127.0.0.1"})"),
       {Fail("Unknown account: nobody", "nobody")}},
      {"LoginWithEmptyUser",
       Nul(R"({"cmd":"login","account":"account-1","user":"","pass":"p","server":"127.0.0.1"})"),
       {Fail("Field user must not be empty", A1)}},
      {"MakeCallWithEmptyNum",
       Nul(R"({"cmd":"make-call","account":"account-1","num":""})"),
       {Fail("Field num must not be empty", A1)}},

      // ---- deeply nested values
      {"HundredNestedArraysAreIgnored", Nested('[', ']', 100), {Status()}},
      {"TwoHundredNestedArrays", Nested('[', ']', 200), {Malformed()}},
      {"TenThousandNestedObjects", NestedObjects(10000), {Malformed()}},
      {"NestingBeyondTheSizeLimit", NestedObjects(20000), {Fail("Message too large", "")}},

      // ---- invalid UTF-8
      {"InvalidUtf8InAString",
       Nul("{\"cmd\":\"get-status\",\"account\":\"\xff\xfe\"}"),
       {Malformed()}},
      {"OverlongUtf8", Nul("{\"cmd\":\"get-status\",\"account\":\"\xc0\xaf\"}"), {Malformed()}},
      {"TruncatedUtf8Sequence",
       Nul("{\"cmd\":\"get-status\",\"account\":\"\xe2\x82\"}"),
       {Malformed()}},
      {"Utf8EncodedSurrogate",
       Nul("{\"cmd\":\"get-status\",\"account\":\"\xed\xa0\x80\"}"),
       {Malformed()}},
      {"InvalidUtf8OutsideStrings",
       Nul("{\"cmd\":\"get-status\",\xff\"account\":\"account-1\"}"),
       {Malformed()}},
      {"ValidUtf8IsEchoed",
       Nul("{\"cmd\":\"get-status\",\"account\":\"acc\xc3\xb6unt-1\"}"),
       {Fail("Unknown account: acc\xc3\xb6unt-1", "acc\xc3\xb6unt-1")}},

      // ---- NUL inside strings
      {"RawNulInsideAStringEndsTheMessage",
       std::string(R"({"cmd":"get-status","account":"acc)") + '\0' + R"(ount-1"})" + '\0',
       {Malformed(), NotAnObject()}},
      {"EscapedNulInTheAccount",
       Nul(R"({"cmd":"get-status","account":"account-1\u0000"})"),
       {Fail(std::string("Unknown account: account-1\0", 27), std::string("account-1\0", 10))}},
      {"EscapedNulInTheTokenIsEchoedEscaped",
       Nul(R"({"cmd":"get-status","account":"account-1","token":"a\u0000b"})"),
       {Status(std::string("a\0b", 3))}},

      // ---- binary garbage and JSON that is not an object
      {"BinaryGarbage", std::string("\x01\x02garbage\xff") + '\0', {NotAnObject()}},
      {"JsonArray", Nul("[1,2,3]"), {NotAnObject()}},
      {"JsonString", Nul(R"("get-status")"), {NotAnObject()}},
      {"JsonNumber", Nul("42"), {NotAnObject()}},
      {"SixtyFourKibOfRandomBytes",
       PseudoRandomBytes(65536, 6) + std::string(1, '\0'),
       {},
       /*any_documented_fails=*/true},

      // ---- the size limit (max-message-bytes = 65536)
      {"MessageOfExactlyTheLimit", Nul(PaddedGetStatus(kMaxMessageBytes)), {Status()}},
      {"MessageOneByteOverTheLimit",
       Nul(PaddedGetStatus(kMaxMessageBytes + 1)),
       {Fail("Message too large", "")}},
      {"OneMebibyteMessage", Nul(PaddedGetStatus(1 << 20)), {Fail("Message too large", "")}},
      {"OneMebibyteNeverClosedUntilNul",
       Nul("{\"x\":\"" + std::string(1 << 20, 'y')),
       {Fail("Message too large", "")}},
      {"OversizeThenValidInOneWrite",
       Nul(PaddedGetStatus(kMaxMessageBytes + 100)) +
           Nul(R"({"cmd":"get-status","account":"account-1","token":"after"})"),
       {Fail("Message too large", ""), Status("after")}},

      // ---- framing edge cases that are not errors
      {"SeparatorsOnly", std::string(2, '\0') + "\n\r\n \t" + '\0', {}},
      {"PrettyPrintedWithCrLf",
       "{\r\n    \"cmd\": \"get-status\",\r\n    \"account\": \"account-1\"\r\n}\r\n",
       {Status()}},
      {"TwoMessagesWithoutSeparator",
       R"({"cmd":"get-status","account":"account-1","token":"1"}{"cmd":"get-status","account":"account-1","token":"2"})",
       {Status("1"), Status("2")}},
      {"SubscribeFalseHasNoReply", Nul(R"({"cmd":"subscribe","extended":false})"), {}},
  };
  return cases;
}

bool IsDocumentedError(const std::string& error) {
  for (const char* prefix : {"Malformed JSON: ", "Missing field: ", "Unknown command: ", "Field ",
                             "Message too large"}) {
    if (absl::StartsWith(error, prefix)) return true;
  }
  return false;
}

// Everything the cases share: Kamailio, the gateway, the live call, the
// observer and the attacker connection.
struct Shared {
  std::unique_ptr<KamailioProcess> kamailio;
  std::unique_ptr<GatewayProcess> gateway;
  std::unique_ptr<NativeClient> observer;
  std::unique_ptr<NativeClient> attacker;
  int64_t caller_id = -1;
  int64_t callee_id = -1;
  int probes = 0;
};
Shared* setup = nullptr;

class NativeBadInputTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    setup = new Shared();
    auto started = StartWithOwnRegistrar();
    ASSERT_TRUE(started.ok()) << started.status();
    setup->kamailio = std::move(started->kamailio);
    setup->gateway = std::move(started->gateway);
    auto observer = NativeClient::Connect(setup->gateway->native_port());
    auto attacker = NativeClient::Connect(setup->gateway->native_port());
    ASSERT_TRUE(observer.ok() && attacker.ok());
    setup->observer = *std::move(observer);
    setup->attacker = *std::move(attacker);
    absl::Status call = EstablishCall(*setup->observer, &setup->caller_id, &setup->callee_id);
    ASSERT_TRUE(call.ok()) << call << "\n" << setup->gateway->ReadLog();
    ASSERT_EQ(setup->caller_id, 0);
    ASSERT_EQ(setup->callee_id, 1);
    // The attacker saw the call's broadcasts too; from here on the observer
    // must see nothing at all.
    while (setup->attacker->Next(absl::Milliseconds(300))) {
    }
  }

  static void TearDownTestSuite() {
    delete setup;
    setup = nullptr;
  }

 protected:
  void SetUp() override {
    ASSERT_TRUE(setup != nullptr && setup->attacker != nullptr) << "set-up failed";
  }
  void TearDown() override {
    if (HasFailure() && setup->gateway) PrintLogTail(*setup->gateway);
  }

  // Sends a probe and returns the events before its reply. Checks that the
  // reply comes, that account-1's call is still active and that the
  // observer got nothing.
  std::vector<NativeEvent> ProbeAfter() {
    const std::string token = absl::StrCat("probe-", ++setup->probes);
    EXPECT_TRUE(setup->attacker->Send(
        absl::StrCat(R"({"cmd":"get-status","account":"account-1","token":")", token, R"("})")));
    std::vector<NativeEvent> before;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      std::optional<NativeEvent> event = setup->attacker->Next(deadline - absl::Now());
      if (!event) break;
      if (event->event() == "status" && event->Str("token") == token) {
        EXPECT_TRUE(absl::StrContains(event->json, R"({"call_id":0,"state":"active")"))
            << "the live call was disturbed: " << event->json;
        EXPECT_FALSE(setup->observer->Next(absl::Milliseconds(5)).has_value())
            << "the observer saw something";
        return before;
      }
      before.push_back(*event);
    }
    ADD_FAILURE() << "no reply to the probe: the connection is not usable (closed: "
                  << setup->attacker->closed() << ")";
    return before;
  }
};

class BatteryCase : public NativeBadInputTest {
 public:
  explicit BatteryCase(Case c) : case_(std::move(c)) {}

  void TestBody() override {
    ASSERT_TRUE(setup->attacker->SendRaw(case_.bytes));
    std::vector<NativeEvent> got = ProbeAfter();
    if (case_.any_documented_fails) {
      EXPECT_FALSE(got.empty());
      for (const NativeEvent& e : got) {
        EXPECT_EQ(e.event(), "fail") << e.json;
        EXPECT_TRUE(IsDocumentedError(e.Str("error"))) << e.json;
      }
      return;
    }
    ExpectReplies(got, case_.expect, /*want_seq=*/false);
  }

 private:
  Case case_;
};

// Registers one gtest case per battery entry, before the TEST_Fs below, so
// that they run first and in table order.
const bool kRegistered = [] {
  for (const Case& c : Battery()) {
    ::testing::RegisterTest("NativeBadInputTest", c.name.c_str(), nullptr, nullptr, __FILE__,
                            __LINE__, [c]() -> NativeBadInputTest* { return new BatteryCase(c); });
  }
  return true;
}();

TEST_F(NativeBadInputTest, BatteryHasAtLeastFiftyCases) { EXPECT_GE(Battery().size(), 50u); }

TEST_F(NativeBadInputTest, MessageSentOneByteAtATimeIsFramed) {
  const std::string message = R"({"cmd":"get-status","account":"account-1","token":"bytes"})";
  for (char c : message) ASSERT_TRUE(setup->attacker->SendRaw(std::string(1, c)));
  ASSERT_TRUE(setup->attacker->SendRaw(std::string(1, '\0')));
  std::vector<NativeEvent> got = ProbeAfter();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].Str("token"), "bytes");
}

TEST_F(NativeBadInputTest, ThousandMessagesInOneWriteAreAnsweredInOrder) {
  std::string bytes;
  for (int i = 0; i < 1000; ++i) {
    bytes +=
        Nul(absl::StrCat(R"({"cmd":"get-status","account":"account-1","token":")", i, R"("})"));
  }
  ASSERT_TRUE(setup->attacker->SendRaw(bytes));
  std::vector<NativeEvent> got = ProbeAfter();
  ASSERT_EQ(got.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(got[i].Str("token"), absl::StrCat(i));
}

// A million tiny messages ("{}", 3 bytes with the NUL), pipelined in
// windows of 10,000: each is answered with the documented fail, in bounded
// time, and the observer and the call are unaffected. (A client that sends
// far more than it reads is disconnected once 4 MiB of replies wait for it:
// the slow-client rule, see slow_client_test.cc.)
TEST_F(NativeBadInputTest, AMillionTinyMessagesAreAnsweredInBoundedTime) {
  constexpr int kMessages = 1000000;
  constexpr int kWindow = 10000;
  const std::string expected = R"({"event":"fail","account":"","error":"Missing field: cmd"})";
  auto flood = RawConnection::Connect(setup->gateway->native_port());
  ASSERT_TRUE(flood.ok()) << flood.status();
  RawConnection& connection = **flood;
  std::string window;
  for (int i = 0; i < kWindow; ++i) window.append("{}\0", 3);
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(120);
  int64_t replies = 0;
  int64_t wrong = 0;
  std::string pending;
  bool closed = false;
  while (replies < kMessages && !closed && absl::Now() < deadline) {
    ASSERT_TRUE(connection.Send(window));
    const int64_t want = replies + kWindow;
    while (replies < want && !closed && absl::Now() < deadline) {
      pending += connection.ReadUntilClosed(absl::Milliseconds(20), &closed);
      size_t begin = 0;
      for (size_t nul = pending.find('\0'); nul != std::string::npos;
           nul = pending.find('\0', begin)) {
        if (pending.compare(begin, nul - begin, expected) != 0) ++wrong;
        ++replies;
        begin = nul + 1;
      }
      pending.erase(0, begin);
    }
  }
  const absl::Duration took = absl::Now() - start;
  EXPECT_FALSE(closed);
  EXPECT_EQ(replies, kMessages);
  EXPECT_EQ(wrong, 0);
  EXPECT_LT(took, absl::Seconds(120));
  std::cout << "a million tiny messages: " << replies << " replies in " << took << " ("
            << static_cast<int64_t>(replies / absl::ToDoubleSeconds(took)) << "/s)\n";
  RecordProperty("million_messages_seconds", absl::StrCat(absl::ToDoubleSeconds(took)));
  // The flood's connection did not affect the others.
  std::vector<NativeEvent> got = ProbeAfter();
  EXPECT_TRUE(got.empty());
}

// Runs last: the call that lived through everything above still works end
// to end, and the observer saw nothing but its end.
TEST_F(NativeBadInputTest, TheLiveCallIsUndisturbedAndEndsNormally) {
  EXPECT_FALSE(setup->observer->Next(absl::Milliseconds(500)).has_value());
  EXPECT_FALSE(setup->observer->closed());
  EXPECT_EQ(CallState(*setup->observer, "account-1", setup->caller_id), "active");
  EXPECT_EQ(CallState(*setup->observer, "account-2", setup->callee_id), "active");
  setup->observer->Send(R"({"cmd":"hangup-call","account":"account-1","call_id":0})");
  auto ended = [](const std::string& account, int64_t id) {
    return [account, id](const NativeEvent& e) {
      return e.event() == "call-ended" && e.Str("account") == account && e.Int("call_id") == id;
    };
  };
  EXPECT_TRUE(setup->observer->WaitForAll(
      {ended("account-1", setup->caller_id), ended("account-2", setup->callee_id)}));
}

}  // namespace
}  // namespace telestra::testing
