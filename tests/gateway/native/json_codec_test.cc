#include "gateway/native/json_codec.h"

#include <simdjson.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/text_format.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "proto/telestra.pb.h"

namespace telestra::gateway {
namespace {

using telestra::v1::Command;
using telestra::v1::Event;

// A JSON object built from "key":value pairs (values are raw JSON).
using Pairs = std::vector<std::pair<std::string, std::string>>;

std::string Object(const Pairs& pairs) {
  std::string out = "{";
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i > 0) out += ",";
    out += "\"" + pairs[i].first + "\":" + pairs[i].second;
  }
  return out + "}";
}

Command ParseCommand(const std::string& text) {
  Command command;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &command))
      << text;
  return command;
}

Event ParseEvent(const std::string& text) {
  Event event;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &event))
      << text;
  return event;
}

// Decodes and returns the error text ("" when decoding succeeded).
std::string ErrorOf(JsonCodec& codec, const std::string& json) {
  DecodedCommand d = codec.Decode(json);
  if (d.command.ok()) return "";
  EXPECT_EQ(d.command.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(d.command.status().message());
}

// --------------------------------------------------------------- commands

struct CommandSpec {
  std::string cmd;
  Pairs fields;  // every field of the command, in the seed's order
  std::string want;  // the Command in text format
};

const std::vector<CommandSpec>& AllCommands() {
  static const auto* specs = new std::vector<CommandSpec>{
      {"login",
       {{"account", "\"account-3\""},
        {"user", "\"3003\""},
        {"pass", "\"sip3003\""},
        {"server", "\"10.2.101.23\""}},
       R"(login { account: "account-3" user: "3003" pass: "sip3003"
                  server: "10.2.101.23" })"},
      {"make-call",
       {{"account", "\"account-1\""}, {"num", "\"3002\""}},
       R"(make_call { account: "account-1" num: "3002" })"},
      {"answer-call",
       {{"account", "\"account-1\""}, {"call_id", "0"}},
       R"(answer_call { account: "account-1" call_id: 0 })"},
      {"switch-call",
       {{"account", "\"account-1\""}, {"call_id", "1"}},
       R"(switch_call { account: "account-1" call_id: 1 })"},
      {"get-status",
       {{"account", "\"account-1\""}},
       R"(get_status { account: "account-1" })"},
      {"hangup-call",
       {{"account", "\"account-1\""}, {"call_id", "17"}},
       R"(hangup_call { account: "account-1" call_id: 17 })"},
      {"logout",
       {{"account", "\"account-3\""}},
       R"(logout { account: "account-3" })"},
      {"subscribe", {{"extended", "true"}}, R"(subscribe { extended: true })"},
      {"send-dtmf",
       {{"account", "\"account-1\""}, {"call_id", "3"}, {"digits", "\"12*#\""}},
       R"(send_dtmf { account: "account-1" call_id: 3 digits: "12*#" })"},
      {"list-accounts", {}, R"(list_accounts {})"},
  };
  return *specs;
}

Pairs WithCmd(const CommandSpec& spec) {
  Pairs pairs = {{"cmd", "\"" + spec.cmd + "\""}};
  pairs.insert(pairs.end(), spec.fields.begin(), spec.fields.end());
  return pairs;
}

TEST(JsonCodecDecodeTest, DecodesEveryCommandWithAllFields) {
  JsonCodec codec;
  for (const CommandSpec& spec : AllCommands()) {
    const std::string json = Object(WithCmd(spec));
    DecodedCommand d = codec.Decode(json);
    ASSERT_TRUE(d.command.ok()) << json << ": " << d.command.status();
    EXPECT_EQ(d.command->ShortDebugString(),
              ParseCommand(spec.want).ShortDebugString())
        << json;
    EXPECT_EQ(d.token, "");
    EXPECT_EQ(d.command->token(), "");
  }
}

TEST(JsonCodecDecodeTest, SendDtmfTakesAnOptionalIntegerDuration) {
  JsonCodec codec;
  DecodedCommand d = codec.Decode(
      R"({"cmd":"send-dtmf","account":"a","call_id":1,"digits":"5","duration_ms":250})");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_EQ(d.command->send_dtmf().duration_ms(), 250);
  // Negative and too long values reach the backend's range check.
  d = codec.Decode(R"({"cmd":"send-dtmf","account":"a","call_id":1,"digits":"5","duration_ms":-3})");
  ASSERT_TRUE(d.command.ok());
  EXPECT_EQ(d.command->send_dtmf().duration_ms(), -3);
  const std::string prefix = R"({"cmd":"send-dtmf","account":"a","call_id":1,"digits":"5",)";
  EXPECT_EQ(ErrorOf(codec, prefix + R"("duration_ms":0})"),
            "Field duration_ms out of range: 0 (40..2000)");
  EXPECT_EQ(ErrorOf(codec, prefix + R"("duration_ms":99999999999})"),
            "Field duration_ms out of range (40..2000)");
  for (const char* bad : {"\"100\"", "1.5", "true", "null", "[100]"}) {
    EXPECT_EQ(ErrorOf(codec, prefix + R"("duration_ms":)" + bad + "}"),
              "Field duration_ms must be an integer")
        << bad;
  }
  EXPECT_TRUE(JsonCodec::IsExtendedOnly(ParseEvent(R"(dtmf { call_id: 1 })")));
  EXPECT_TRUE(JsonCodec::IsExtendedOnly(ParseEvent(R"(dtmf_sent { call_id: 1 })")));
}

TEST(JsonCodecDecodeTest, TransferCallTakesNumOrToCallId) {
  JsonCodec codec;
  DecodedCommand d =
      codec.Decode(R"({"cmd":"transfer-call","account":"a","call_id":1,"num":"3003"})");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_EQ(d.command->ShortDebugString(),
            R"(transfer_call { account: "a" call_id: 1 num: "3003" })");
  d = codec.Decode(R"({"cmd":"transfer-call","account":"a","call_id":1,"to_call_id":"0"})");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_TRUE(d.command->transfer_call().has_to_call_id());
  EXPECT_EQ(d.command->transfer_call().to_call_id(), 0);
  // Both or neither reach the backend, which names the problem.
  d = codec.Decode(R"({"cmd":"transfer-call","account":"a","call_id":1})");
  ASSERT_TRUE(d.command.ok());
  EXPECT_FALSE(d.command->transfer_call().has_to_call_id());
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"transfer-call","account":"a","call_id":1,"to_call_id":-1})"),
            "Field to_call_id is out of range");
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"transfer-call","account":"a","call_id":1,"to_call_id":1.5})"),
            "Field to_call_id must be an integer");
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"transfer-call","account":"a","call_id":1,"num":7})"),
            "Field num must be a string");
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"transfer-call","account":"a","num":"1"})"),
            "Missing field: call_id");
}

TEST(JsonCodecDecodeTest, SubscribeTakesAnOptionalAfterSeqAndInstance) {
  JsonCodec codec;
  DecodedCommand d = codec.Decode(
      R"({"cmd":"subscribe","extended":true,"after_seq":42,"instance":"9f1c2e4b7a6d3c10",)"
      R"("token":"r"})");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_EQ(d.command->ShortDebugString(),
            ParseCommand(R"(token: "r" subscribe { extended: true after_seq: 42
                                                    instance: "9f1c2e4b7a6d3c10" })")
                .ShortDebugString());
  // 0 ("everything still kept") is not the same as no after_seq.
  d = codec.Decode(R"({"cmd":"subscribe","extended":true,"after_seq":0})");
  ASSERT_TRUE(d.command.ok());
  EXPECT_TRUE(d.command->subscribe().has_after_seq());
  d = codec.Decode(R"({"cmd":"subscribe","extended":true})");
  ASSERT_TRUE(d.command.ok());
  EXPECT_FALSE(d.command->subscribe().has_after_seq());
  // The whole range of a seq.
  d = codec.Decode(R"({"cmd":"subscribe","extended":true,"after_seq":18446744073709551615})");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_EQ(d.command->subscribe().after_seq(), 18446744073709551615u);
}

TEST(JsonCodecDecodeTest, SubscribeNamesEachBadResumeField) {
  JsonCodec codec;
  const std::string prefix = R"({"cmd":"subscribe","extended":true,)";
  for (const std::string& value :
       std::vector<std::string>{"-1", "1.5", "1e3", "-0.5", "\"42\"", "true", "null", "[1]",
                                "{}", "-99999999999999999999999"}) {
    EXPECT_EQ(ErrorOf(codec, prefix + R"("after_seq":)" + value + "}"),
              "Field after_seq must be a non-negative integer")
        << value;
  }
  EXPECT_EQ(ErrorOf(codec, prefix + R"("after_seq":18446744073709551616})"),
            "Field after_seq is out of range");
  EXPECT_EQ(ErrorOf(codec, prefix + R"("after_seq":99999999999999999999999999})"),
            "Field after_seq is out of range");
  for (const std::string& value : std::vector<std::string>{"5", "true", "null", "[\"a\"]"}) {
    EXPECT_EQ(ErrorOf(codec, prefix + R"("after_seq":3,"instance":)" + value + "}"),
              "Field instance must be a string")
        << value;
  }
  // A resume is extended: after_seq without it is refused.
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"subscribe","extended":false,"after_seq":3})"),
            "Field after_seq requires extended to be true");
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"subscribe","after_seq":3})"), "Missing field: extended");
  // The fail still echoes the token.
  DecodedCommand d = codec.Decode(R"({"cmd":"subscribe","extended":true,"after_seq":-1,"token":"t"})");
  EXPECT_EQ(d.token, "t");
}

TEST(JsonCodecDecodeTest, DecodesFieldsInAnyOrderAndIgnoresUnknownFields) {
  JsonCodec codec;
  DecodedCommand d = codec.Decode(
      R"({"num":"3002","x":{"y":[1,-2.5e3,true,false,null,"s",{}]},)"
      R"("account":"account-1","call_id":"zzz","cmd":"make-call","z":[]})");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_EQ(d.command->ShortDebugString(),
            R"(make_call { account: "account-1" num: "3002" })");
  EXPECT_EQ(d.account, "account-1");
}

TEST(JsonCodecDecodeTest, DecodesTheSeedsPrettyPrintedLogin) {
  JsonCodec codec;
  DecodedCommand d = codec.Decode(
      "{\n    \"cmd\": \"login\",\n    \"account\": \"account-3\",\n"
      "    \"user\": \"3003\",\n    \"pass\": \"sip3003\",\n"
      "    \"server\": \"10.2.101.23\"\n}");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_EQ(d.command->login().server(), "10.2.101.23");
  EXPECT_EQ(d.account, "account-3");
}

TEST(JsonCodecDecodeTest, UnescapesStrings) {
  JsonCodec codec;
  DecodedCommand d = codec.Decode(
      R"({"cmd":"make-call","account":"a\"b\\c\u00e9\ud83d\ude00","num":"\/1"})");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_EQ(d.command->make_call().account(),
            "a\"b\\c\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(d.command->make_call().num(), "/1");
}

TEST(JsonCodecDecodeTest, ReportsEveryMissingRequiredField) {
  JsonCodec codec;
  for (const CommandSpec& spec : AllCommands()) {
    for (size_t skip = 0; skip < spec.fields.size(); ++skip) {
      Pairs pairs = WithCmd(spec);
      pairs.erase(pairs.begin() + 1 + skip);
      const std::string json = Object(pairs);
      EXPECT_EQ(ErrorOf(codec, json),
                "Missing field: " + spec.fields[skip].first)
          << json;
    }
  }
}

TEST(JsonCodecDecodeTest, ReportsTheFirstMissingFieldInTheSeedsOrder) {
  JsonCodec codec;
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"login","pass":"x"})"),
            "Missing field: account");
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"login","account":"a","pass":"x"})"),
            "Missing field: user");
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"hangup-call"})"),
            "Missing field: account");
}

TEST(JsonCodecDecodeTest, ReportsEveryMistypedField) {
  JsonCodec codec;
  const std::vector<std::string> not_strings = {"5", "-1.5", "true", "null",
                                                "[\"a\"]", "{\"a\":\"b\"}"};
  const std::vector<std::string> not_integers = {
      "true", "null", "1.5", "1e3", "0.0", "-2.5", "\"abc\"", "\"12a\"",
      "\"\"", "\" 1\"", "\"-1\"", "\"1.0\"", "[1]", "{\"a\":1}"};
  const std::vector<std::string> not_booleans = {"1",    "0",   "\"true\"",
                                                 "null", "[]", "{}"};
  for (const CommandSpec& spec : AllCommands()) {
    for (size_t i = 0; i < spec.fields.size(); ++i) {
      const std::string& name = spec.fields[i].first;
      const std::vector<std::string>* bad = &not_strings;
      std::string want = "Field " + name + " must be a string";
      if (name == "call_id") {
        bad = &not_integers;
        want = "Field call_id must be an integer";
      } else if (name == "extended") {
        bad = &not_booleans;
        want = "Field extended must be a boolean";
      }
      for (const std::string& value : *bad) {
        Pairs pairs = WithCmd(spec);
        pairs[1 + i].second = value;
        const std::string json = Object(pairs);
        EXPECT_EQ(ErrorOf(codec, json), want) << json;
      }
    }
  }
}

TEST(JsonCodecDecodeTest, ReportsMissingOrMistypedCmd) {
  JsonCodec codec;
  EXPECT_EQ(ErrorOf(codec, "{}"), "Missing field: cmd");
  EXPECT_EQ(ErrorOf(codec, R"({"account":"a"})"), "Missing field: cmd");
  for (const std::string& value : std::vector<std::string>{"1", "null", "true", "[\"login\"]", "{}"}) {
    EXPECT_EQ(ErrorOf(codec, R"({"cmd":)" + value + "}"),
              "Field cmd must be a string")
        << value;
  }
}

TEST(JsonCodecDecodeTest, ReportsUnknownCommand) {
  JsonCodec codec;
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"dial","account":"a"})"),
            "Unknown command: dial");
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"","account":"a"})"),
            "Unknown command: ");
  EXPECT_EQ(ErrorOf(codec, R"({"cmd":"LOGIN"})"), "Unknown command: LOGIN");
}

TEST(JsonCodecDecodeTest, AcceptsCallIdAsAStringOfDigits) {
  JsonCodec codec;
  DecodedCommand d =
      codec.Decode(R"({"cmd":"answer-call","account":"a","call_id":"42"})");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_EQ(d.command->answer_call().call_id(), 42);
  d = codec.Decode(R"({"cmd":"hangup-call","account":"a","call_id":"007"})");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_EQ(d.command->hangup_call().call_id(), 7);
}

TEST(JsonCodecDecodeTest, AcceptsCallIdsUpToTwoToThe53) {
  JsonCodec codec;
  for (const std::string& value :
       std::vector<std::string>{"9007199254740992", "\"9007199254740992\"", "-0"}) {
    DecodedCommand d = codec.Decode(
        R"({"cmd":"switch-call","account":"a","call_id":)" + value + "}");
    ASSERT_TRUE(d.command.ok()) << value << ": " << d.command.status();
  }
}

TEST(JsonCodecDecodeTest, RejectsCallIdsOutOfRange) {
  JsonCodec codec;
  for (const std::string& value :
       std::vector<std::string>{"-1", "-9223372036854775808", "9007199254740993",
        "9223372036854775807", "9223372036854775808", "18446744073709551616",
        "123456789012345678901234567890", "-123456789012345678901234567890",
        "\"9007199254740993\"", "\"123456789012345678901234567890\""}) {
    EXPECT_EQ(ErrorOf(codec, R"({"cmd":"hangup-call","account":"a","call_id":)" +
                                 value + "}"),
              "Field call_id is out of range")
        << value;
  }
}

TEST(JsonCodecDecodeTest, ReportsMalformedJsonWithTheParsersMessage) {
  JsonCodec codec;
  const std::string kPrefix = "Malformed JSON: ";
  const std::string kStructure = simdjson::error_message(simdjson::TAPE_ERROR);
  const std::string kEarlyEnd =
      simdjson::error_message(simdjson::INCOMPLETE_ARRAY_OR_OBJECT);
  const std::string kNumber = simdjson::error_message(simdjson::NUMBER_ERROR);
  const std::string kString = simdjson::error_message(simdjson::STRING_ERROR);
  const std::vector<std::pair<std::string, std::string>> cases = {
      // The seed's own example, missing a comma.
      {"{\n    \"cmd\": \"make-call\",\n    \"account\": \"account-1\"\n"
       "    \"num\": \"3002\"\n}",
       kStructure},
      {R"({"cmd":"get-status","account":"a",})", kStructure},
      {R"({"cmd":"get-status" "account":"a"})", kStructure},
      {R"({"cmd":"get-status","account":"a","x":[1,2,]})", kStructure},
      {R"({"cmd":"get-status","account":"a","x":[1 2]})", kStructure},
      {R"({"cmd":"get-status","account":"a","x":{"y"}})", kStructure},
      {R"({"cmd":"get-status","account":"a")", kEarlyEnd},
      {R"({"cmd":"get-status","account":"a","x":{"y":1})", kStructure},
      {"{", kEarlyEnd},
      {R"({"cmd":"get-status","account":"a","x":01})", kNumber},
      {R"({"cmd":"get-status","account":"a","x":1.})", kNumber},
      {R"({"cmd":"get-status","account":"a","x":-})", kNumber},
      {R"({"cmd":"hangup-call","account":"a","call_id":01})", kNumber},
      {R"({"cmd":"get-status","account":"a","x":"\q"})", kString},
      {R"({"cmd":"get-status","account":"a","x":"\ud800"})", kString},
      {R"({"cmd":"get-status","account":"a","x":tru})",
       simdjson::error_message(simdjson::T_ATOM_ERROR)},
      {R"({"cmd":"get-status","account":"a","x":fals})",
       simdjson::error_message(simdjson::F_ATOM_ERROR)},
      {R"({"cmd":"get-status","account":"a","x":nul})",
       simdjson::error_message(simdjson::N_ATOM_ERROR)},
      {R"({"cmd":"subscribe","extended":tru})",
       simdjson::error_message(simdjson::T_ATOM_ERROR)},
      {"{\"cmd\":\"get-status\",\"account\":\"a\xff\"}",
       simdjson::error_message(simdjson::UTF8_ERROR)},
      {"{\"cmd\":\"get-status\",\"account\":\"a\",\"x\":\"\xC0\xAF\"}",
       simdjson::error_message(simdjson::UTF8_ERROR)},
      {"", simdjson::error_message(simdjson::EMPTY)},
      {"[1,2]", "message is not an object"},
      {"\"cmd\"", "message is not an object"},
      {std::string(200, '[') + std::string(200, ']'),
       "message is not an object"},
      {R"({"cmd":"get-status","account":"a","x":)" + std::string(200, '[') +
           std::string(200, ']') + "}",
       simdjson::error_message(simdjson::DEPTH_ERROR)},
  };
  for (const auto& [json, want] : cases) {
    EXPECT_EQ(ErrorOf(codec, json), kPrefix + want) << json;
  }
}

TEST(JsonCodecDecodeTest, RejectsTrailingContentAfterTheObject) {
  JsonCodec codec;
  const std::string kTrailing =
      std::string("Malformed JSON: ") +
      simdjson::error_message(simdjson::TRAILING_CONTENT);
  const std::string ok = R"({"cmd":"get-status","account":"a"})";
  EXPECT_EQ(ErrorOf(codec, ok + "}"), kTrailing);
  EXPECT_EQ(ErrorOf(codec, ok + " " + ok), kTrailing);
  EXPECT_EQ(ErrorOf(codec, ok + "{}"), kTrailing);
  EXPECT_NE(ErrorOf(codec, ok + "[]"), "");
  EXPECT_NE(ErrorOf(codec, ok + " x"), "");
  EXPECT_NE(ErrorOf(codec, ok + " 1"), "");
  EXPECT_EQ(ErrorOf(codec, ok + " \n\t "), "");
}

TEST(JsonCodecDecodeTest, TrailingAtomsAreTrailingContentWithTheAccountAndToken) {
  JsonCodec codec;
  const std::string kTrailing =
      std::string("Malformed JSON: ") + simdjson::error_message(simdjson::TRAILING_CONTENT);
  const std::string ok = R"({"cmd":"get-status","account":"account-1","token":"t7"})";
  for (const std::string& tail : {std::string(" x"), std::string(" 1"), std::string("[]"),
                                  std::string(" \"s\""), std::string(1, '\0')}) {
    DecodedCommand d = codec.Decode(ok + tail);
    ASSERT_FALSE(d.command.ok()) << tail;
    EXPECT_EQ(d.command.status().message(), kTrailing) << tail;
    EXPECT_EQ(d.account, "account-1") << tail;
    EXPECT_EQ(d.token, "t7") << tail;
  }
  // An object that never ends is not "trailing content".
  for (const std::string& json :
       {std::string(R"({"cmd":"get-status","account":"account-1")"),
        std::string(R"({"cmd":"get-status","account":"account-1","x":{"y":1})"),
        std::string(R"({"cmd":"get-status","account":"account-1","x":[1,2)")}) {
    DecodedCommand d = codec.Decode(json);
    ASSERT_FALSE(d.command.ok()) << json;
    EXPECT_NE(d.command.status().message(), kTrailing) << json;
    EXPECT_TRUE(absl::StartsWith(d.command.status().message(), "Malformed JSON: ")) << json;
  }
}

TEST(JsonCodecDecodeTest, EchoesTheToken) {
  JsonCodec codec;
  DecodedCommand d =
      codec.Decode(R"({"token":"req-7","cmd":"get-status","account":"a"})");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_EQ(d.command->token(), "req-7");
  EXPECT_EQ(d.token, "req-7");
  d = codec.Decode(R"({"cmd":"subscribe","extended":false,"token":""})");
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_FALSE(d.command->subscribe().extended());
  EXPECT_EQ(d.command->token(), "");
}

TEST(JsonCodecDecodeTest, RejectsATokenThatIsNotAString) {
  JsonCodec codec;
  for (const std::string& value : std::vector<std::string>{"7", "null", "true", "[]", "{\"a\":1}"}) {
    const std::string json =
        R"({"cmd":"logout","account":"account-1","token":)" + value + "}";
    DecodedCommand d = codec.Decode(json);
    ASSERT_FALSE(d.command.ok()) << json;
    EXPECT_EQ(d.command.status().message(), "Field token must be a string");
    EXPECT_EQ(d.account, "account-1");
    EXPECT_EQ(d.token, "");
  }
}

TEST(JsonCodecDecodeTest, FillsAccountAndTokenWhenDecodingFails) {
  JsonCodec codec;
  struct Case {
    std::string json, error, account, token;
  };
  const std::vector<Case> cases = {
      {R"({"cmd":"make-call","account":"account-1","token":"t1"})",
       "Missing field: num", "account-1", "t1"},
      {R"({"cmd":"dial","token":"t2","account":"account-2"})",
       "Unknown command: dial", "account-2", "t2"},
      {R"({"account":"account-3","token":"t3"})", "Missing field: cmd",
       "account-3", "t3"},
      {R"({"cmd":"hangup-call","account":"account-4","call_id":1.5,"token":"t4"})",
       "Field call_id must be an integer", "account-4", "t4"},
      // Fields read before a syntax error are kept.
      {R"({"token":"t5","account":"account-5","cmd":"make-call" "num":"1"})",
       std::string("Malformed JSON: ") +
           simdjson::error_message(simdjson::TAPE_ERROR),
       "account-5", "t5"},
      {R"({"cmd":"make-call","account":5,"token":"t6"})",
       "Field account must be a string", "", "t6"},
  };
  for (const Case& c : cases) {
    DecodedCommand d = codec.Decode(c.json);
    ASSERT_FALSE(d.command.ok()) << c.json;
    EXPECT_EQ(d.command.status().message(), c.error) << c.json;
    EXPECT_EQ(d.account, c.account) << c.json;
    EXPECT_EQ(d.token, c.token) << c.json;
  }
}

TEST(JsonCodecDecodeTest, ReusesTheCodecAcrossMessagesOfDifferentSizes) {
  JsonCodec codec;
  const std::string big_num(10000, '9');
  for (int i = 0; i < 3; ++i) {
    DecodedCommand d = codec.Decode(R"({"cmd":"make-call","account":"a","num":")" +
                                    big_num + "\"}");
    ASSERT_TRUE(d.command.ok()) << d.command.status();
    EXPECT_EQ(d.command->make_call().num(), big_num);
    d = codec.Decode(R"({"cmd":"logout","account":"b"})");
    ASSERT_TRUE(d.command.ok()) << d.command.status();
    EXPECT_EQ(d.command->logout().account(), "b");
    EXPECT_NE(ErrorOf(codec, R"({"cmd":"logout","account":"b")"), "");
  }
}

TEST(JsonCodecDecodeTest, DoesNotReadBeyondTheMessage) {
  // The message is a prefix of a longer buffer: only the prefix counts.
  JsonCodec codec;
  const std::string buffer = R"({"cmd":"logout","account":"b"}{"x":1})";
  DecodedCommand d = codec.Decode(absl::string_view(buffer).substr(0, 30));
  ASSERT_TRUE(d.command.ok()) << d.command.status();
  EXPECT_EQ(d.command->logout().account(), "b");
}

// ----------------------------------------------------------------- encode

struct EncodeCase {
  std::string event;  // text format
  std::string legacy;  // Encode(event, false)
  std::string extended;  // Encode(event, true)
};

TEST(JsonCodecEncodeTest, RendersEveryEventKind) {
  const std::vector<EncodeCase> cases = {
      {R"(seq: 5 call_return { account: "account-1" call_id: 0 })",
       R"({"event":"call-return","account":"account-1","call_id":0})",
       R"({"event":"call-return","account":"account-1","call_id":0,"seq":5})"},
      {R"(seq: 6 call_incoming { account: "account-2" call_id: 1
             caller: "3001" caller_name: "account-1" })",
       R"({"event":"call-incoming","account":"account-2","call_id":1,)"
       R"("caller":"3001","caller_name":"account-1"})",
       R"({"event":"call-incoming","account":"account-2","call_id":1,)"
       R"("caller":"3001","caller_name":"account-1","seq":6})"},
      {R"(seq: 7 call_answered { account: "account-2" call_id: 0 })",
       R"({"event":"call-answered","account":"account-2","call_id":0})",
       R"({"event":"call-answered","account":"account-2","call_id":0,"seq":7})"},
      {R"(seq: 8 call_ended { account: "account-2" call_id: 0 code: 487
             reason: "Request Terminated" })",
       R"({"event":"call-ended","account":"account-2","call_id":0})",
       R"({"event":"call-ended","account":"account-2","call_id":0,"code":487,)"
       R"("reason":"Request Terminated","seq":8})"},
      {R"(seq: 9 call_ended { account: "a" call_id: 3 })",
       R"({"event":"call-ended","account":"a","call_id":3})",
       R"({"event":"call-ended","account":"a","call_id":3,"code":0,)"
       R"("reason":"","seq":9})"},
      {R"(seq: 10 status { account: "account-1" account_status: 200
             calls { call_id: 0 state: CALL_STATE_ACTIVE
                     direction: CALL_DIRECTION_OUTGOING peer: "3002" }
             calls { call_id: 2 state: CALL_STATE_HELD
                     direction: CALL_DIRECTION_INCOMING peer: "3003"
                     peer_name: "account-3" } })",
       R"({"event":"status","account":"account-1","account_status":200,)"
       R"("calls":[{"call_id":0,"state":"active","direction":"outgoing",)"
       R"("peer":"3002","peer_name":""},{"call_id":2,"state":"held",)"
       R"("direction":"incoming","peer":"3003","peer_name":"account-3"}]})",
       R"({"event":"status","account":"account-1","account_status":200,)"
       R"("user":"","server":"",)"
       R"("calls":[{"call_id":0,"state":"active","direction":"outgoing",)"
       R"("peer":"3002","peer_name":"","codec":"","sip_call_id":"","remote_uri":"",)"
       R"("packets_received":0,"packets_lost":0,"jitter_ms":0.0},)"
       R"({"call_id":2,"state":"held",)"
       R"("direction":"incoming","peer":"3003","peer_name":"account-3","codec":"",)"
       R"("sip_call_id":"","remote_uri":"","packets_received":0,"packets_lost":0,)"
       R"("jitter_ms":0.0}],"seq":10})"},
      {R"(seq: 11 status { account: "account-9" })",
       R"({"event":"status","account":"account-9","account_status":0,)"
       R"("calls":[]})",
       R"({"event":"status","account":"account-9","account_status":0,)"
       R"("user":"","server":"","calls":[],"seq":11})"},
      {R"(seq: 12 fail { account: "account-1"
             error: "Failed to log in to account: account-1"
             kind: FAIL_KIND_UNAVAILABLE })",
       R"({"event":"fail","account":"account-1",)"
       R"("error":"Failed to log in to account: account-1"})",
       R"({"event":"fail","account":"account-1",)"
       R"("error":"Failed to log in to account: account-1","seq":12})"},
      {R"(seq: 13 call_ringing { account: "account-1" call_id: 0 code: 180 })",
       R"({"event":"call-ringing","account":"account-1","call_id":0,)"
       R"("code":180})",
       R"({"event":"call-ringing","account":"account-1","call_id":0,)"
       R"("code":180,"seq":13})"},
      {R"(seq: 14 call_held { account: "account-1" call_id: 4 })",
       R"({"event":"call-held","account":"account-1","call_id":4})",
       R"({"event":"call-held","account":"account-1","call_id":4,"seq":14})"},
      {R"(seq: 15 call_resumed { account: "account-1" call_id: 4 })",
       R"({"event":"call-resumed","account":"account-1","call_id":4})",
       R"({"event":"call-resumed","account":"account-1","call_id":4,)"
       R"("seq":15})"},
      {R"(seq: 19 call_progress { account: "account-1" call_id: 2 code: 183 early_media: true })",
       R"({"event":"call-progress","account":"account-1","call_id":2,"code":183,)"
       R"("early_media":true})",
       R"({"event":"call-progress","account":"account-1","call_id":2,"code":183,)"
       R"("early_media":true,"seq":19})"},
      {R"(seq: 20 call_progress { account: "account-1" call_id: 2 code: 180 })",
       R"({"event":"call-progress","account":"account-1","call_id":2,"code":180,)"
       R"("early_media":false})",
       R"({"event":"call-progress","account":"account-1","call_id":2,"code":180,)"
       R"("early_media":false,"seq":20})"},
      {R"(seq: 21 transfer_progress { account: "account-1" call_id: 2 code: 180 })",
       R"({"event":"transfer-progress","account":"account-1","call_id":2,"code":180})",
       R"({"event":"transfer-progress","account":"account-1","call_id":2,"code":180,)"
       R"("seq":21})"},
      {R"(seq: 22 call_started { account: "account-2" call_id: 5 num: "3003"
             transferred_from: 2 })",
       R"({"event":"call-started","account":"account-2","call_id":5,"num":"3003",)"
       R"("transferred_from":2})",
       R"({"event":"call-started","account":"account-2","call_id":5,"num":"3003",)"
       R"("transferred_from":2,"seq":22})"},
      {R"(seq: 16 dtmf { account: "account-1" call_id: 4 digit: "#" duration_ms: 160
             method: "rfc4733" })",
       R"({"event":"dtmf","account":"account-1","call_id":4,"digit":"#",)"
       R"("duration_ms":160,"method":"rfc4733"})",
       R"({"event":"dtmf","account":"account-1","call_id":4,"digit":"#",)"
       R"("duration_ms":160,"method":"rfc4733","seq":16})"},
      {R"(seq: 17 token: "t1" dtmf_sent { account: "account-1" call_id: 4 digits: "12" })",
       R"({"event":"dtmf-sent","account":"account-1","call_id":4,"digits":"12",)"
       R"("token":"t1"})",
       R"({"event":"dtmf-sent","account":"account-1","call_id":4,"digits":"12",)"
       R"("token":"t1","seq":17})"},
      {R"(seq: 23 call_quality { account: "account-1" call_id: 4 codec: "PCMA"
             packets_received: 240 packets_lost: 10 jitter_ms: 12.5 rtt_ms: 3.25
             mos: 3.01 })",
       R"({"event":"call-quality","account":"account-1","call_id":4,"codec":"PCMA",)"
       R"("packets_received":240,"packets_lost":10,"jitter_ms":12.5,"rtt_ms":3.25,)"
       R"("mos":3.01})",
       R"({"event":"call-quality","account":"account-1","call_id":4,"codec":"PCMA",)"
       R"("packets_received":240,"packets_lost":10,"jitter_ms":12.5,"rtt_ms":3.25,)"
       R"("mos":3.01,"seq":23})"},
      {R"(seq: 24 call_quality { account: "account-1" call_id: 4 codec: "PCMU" })",
       R"({"event":"call-quality","account":"account-1","call_id":4,"codec":"PCMU",)"
       R"("packets_received":0,"packets_lost":0,"jitter_ms":0.0})",
       R"({"event":"call-quality","account":"account-1","call_id":4,"codec":"PCMU",)"
       R"("packets_received":0,"packets_lost":0,"jitter_ms":0.0,"seq":24})"},
      {R"(seq: 18446744073709551615 account_status { account: "account-1"
             account_status: 403 reason: "Forbidden" })",
       R"({"event":"account-status","account":"account-1",)"
       R"("account_status":403,"reason":"Forbidden"})",
       R"({"event":"account-status","account":"account-1",)"
       R"("account_status":403,"reason":"Forbidden",)"
       R"("seq":18446744073709551615})"},
  };
  for (const EncodeCase& c : cases) {
    const Event event = ParseEvent(c.event);
    EXPECT_EQ(JsonCodec::Encode(event, false), c.legacy) << c.event;
    EXPECT_EQ(JsonCodec::Encode(event, true), c.extended) << c.event;
  }
}

// Legacy clients see exactly the vendor's status whatever the model holds;
// extended ones (and the WebSocket) get the account's user, server and
// registration expiry and each call's times, codec, SIP identity and
// quality, Timestamps as RFC 3339 (UTC, milliseconds).
TEST(JsonCodecEncodeTest, StatusDetailsAreForExtendedClientsOnly) {
  const Event event = ParseEvent(R"(seq: 30 token: "s" status {
      account: "account-1" account_status: 200 user: "3001" server: "pbx:5060"
      registration_expires { seconds: 1798804800 nanos: 250000000 }
      calls { call_id: 7 state: CALL_STATE_ACTIVE direction: CALL_DIRECTION_OUTGOING
              peer: "3002" peer_name: ""
              start_time { seconds: 1798804200 nanos: 5000000 }
              answer_time { seconds: 1798804203 nanos: 999999999 }
              codec: "PCMU" sip_call_id: "a84b4c76e66710@pc33" remote_uri: "sip:3002@pbx:5060"
              packets_received: 1500 packets_lost: 3 jitter_ms: 1.25 rtt_ms: 0.5 mos: 4.38 }
      calls { call_id: 8 state: CALL_STATE_INCOMING direction: CALL_DIRECTION_INCOMING
              peer: "3003" start_time { seconds: 1798804500 } } })");
  EXPECT_EQ(JsonCodec::Encode(event, false),
            R"({"event":"status","account":"account-1","account_status":200,)"
            R"("calls":[{"call_id":7,"state":"active","direction":"outgoing","peer":"3002",)"
            R"("peer_name":""},{"call_id":8,"state":"incoming","direction":"incoming",)"
            R"("peer":"3003","peer_name":""}],"token":"s"})");
  EXPECT_EQ(JsonCodec::Encode(event, true),
            R"({"event":"status","account":"account-1","account_status":200,)"
            R"("user":"3001","server":"pbx:5060",)"
            R"("registration_expires":"2027-01-01T12:00:00.250Z",)"
            R"("calls":[{"call_id":7,"state":"active","direction":"outgoing","peer":"3002",)"
            R"("peer_name":"","start_time":"2027-01-01T11:50:00.005Z",)"
            R"("answer_time":"2027-01-01T11:50:03.999Z","codec":"PCMU",)"
            R"("sip_call_id":"a84b4c76e66710@pc33","remote_uri":"sip:3002@pbx:5060",)"
            R"("packets_received":1500,"packets_lost":3,"jitter_ms":1.25,"rtt_ms":0.5,)"
            R"("mos":4.38},{"call_id":8,"state":"incoming","direction":"incoming",)"
            R"("peer":"3003","peer_name":"","start_time":"2027-01-01T11:55:00.000Z",)"
            R"("codec":"","sip_call_id":"","remote_uri":"","packets_received":0,)"
            R"("packets_lost":0,"jitter_ms":0.0}],"token":"s","seq":30})");
}

// The answer to an extended subscribe always tells its seq.
TEST(JsonCodecEncodeTest, RendersSubscribedWithTheInstanceAndSeq) {
  const Event event =
      ParseEvent(R"(seq: 57 token: "s" subscribed { instance: "9f1c2e4b7a6d3c10" })");
  const std::string want =
      R"({"event":"subscribed","instance":"9f1c2e4b7a6d3c10","token":"s","seq":57})";
  EXPECT_EQ(JsonCodec::Encode(event, true), want);
  EXPECT_EQ(JsonCodec::Encode(event, false), want);
}

// Each account is the status event get-status answers, in the client's
// form (legacy: the vendor's fields only).
TEST(JsonCodecEncodeTest, RendersAccountsAsStatusEvents) {
  const Event event = ParseEvent(R"(seq: 12 token: "l" accounts {
      accounts { account: "account-1" account_status: 200 user: "3001" server: "pbx"
                 calls { call_id: 0 state: CALL_STATE_ACTIVE
                         direction: CALL_DIRECTION_OUTGOING peer: "3002" codec: "PCMU" } }
      accounts { account: "account-2" account_status: 0 user: "3002" server: "pbx" } })");
  EXPECT_EQ(JsonCodec::Encode(event, false),
            R"({"event":"accounts","accounts":[)"
            R"({"event":"status","account":"account-1","account_status":200,)"
            R"("calls":[{"call_id":0,"state":"active","direction":"outgoing","peer":"3002",)"
            R"("peer_name":""}]},)"
            R"({"event":"status","account":"account-2","account_status":0,"calls":[]}],)"
            R"("token":"l"})");
  EXPECT_EQ(JsonCodec::Encode(event, true),
            R"({"event":"accounts","accounts":[)"
            R"({"event":"status","account":"account-1","account_status":200,"user":"3001",)"
            R"("server":"pbx","calls":[{"call_id":0,"state":"active","direction":"outgoing",)"
            R"("peer":"3002","peer_name":"","codec":"PCMU","sip_call_id":"","remote_uri":"",)"
            R"("packets_received":0,"packets_lost":0,"jitter_ms":0.0}],"seq":12},)"
            R"({"event":"status","account":"account-2","account_status":0,"user":"3002",)"
            R"("server":"pbx","calls":[],"seq":12}],"token":"l","seq":12})");
  const Event none = ParseEvent("accounts {}");
  EXPECT_EQ(JsonCodec::Encode(none, false), R"({"event":"accounts","accounts":[]})");
}

TEST(JsonCodecEncodeTest, RendersEveryCallStateAndDirection) {
  const std::vector<std::pair<std::string, std::string>> states = {
      {"CALL_STATE_DIALING", "dialing"},   {"CALL_STATE_RINGING", "ringing"},
      {"CALL_STATE_INCOMING", "incoming"}, {"CALL_STATE_ACTIVE", "active"},
      {"CALL_STATE_HELD", "held"},         {"CALL_STATE_REMOTE_HELD", "remote-held"},
  };
  for (const auto& [state, name] : states) {
    const Event event = ParseEvent(
        R"(status { account: "a" account_status: 200 calls { call_id: 1 state: )" +
        state + R"( direction: CALL_DIRECTION_INCOMING peer: "p" } })");
    EXPECT_EQ(JsonCodec::Encode(event, false),
              R"({"event":"status","account":"a","account_status":200,)"
              R"("calls":[{"call_id":1,"state":")" +
                  name +
                  R"(","direction":"incoming","peer":"p","peer_name":""}]})");
  }
}

TEST(JsonCodecEncodeTest, EchoesTheTokenAfterTheEventFields) {
  const Event event =
      ParseEvent(R"(seq: 3 token: "req-1" call_return { account: "a" call_id: 9 })");
  EXPECT_EQ(JsonCodec::Encode(event, false),
            R"({"event":"call-return","account":"a","call_id":9,"token":"req-1"})");
  EXPECT_EQ(JsonCodec::Encode(event, true),
            R"({"event":"call-return","account":"a","call_id":9,"token":"req-1",)"
            R"("seq":3})");
  const Event fail = ParseEvent(
      R"(token: "x\"y" fail { account: "" error: "Missing field: num" })");
  EXPECT_EQ(JsonCodec::Encode(fail, false),
            R"({"event":"fail","account":"","error":"Missing field: num",)"
            R"("token":"x\"y"})");
}

TEST(JsonCodecEncodeTest, EscapesQuotesBackslashesAndControlCharacters) {
  Event event;
  auto* fail = event.mutable_fail();
  fail->set_account("a\"b\\c");
  fail->set_error(std::string("line1\nline2\t\r\b\f\x01\x1f") + '\0' +
                  "end/\x7f");
  EXPECT_EQ(JsonCodec::Encode(event, false),
            R"({"event":"fail","account":"a\"b\\c",)"
            R"("error":"line1\nline2\t\r\b\f\u0001\u001f\u0000end/)"
            "\x7f\"}");
}

TEST(JsonCodecEncodeTest, KeepsValidUtf8AsIs) {
  Event event;
  auto* incoming = event.mutable_call_incoming();
  incoming->set_account("account-2");
  incoming->set_caller("3001");
  incoming->set_caller_name("J\xC3\xBCrgen \xE2\x82\xAC \xF0\x9F\x93\x9E");
  EXPECT_EQ(JsonCodec::Encode(event, false),
            "{\"event\":\"call-incoming\",\"account\":\"account-2\","
            "\"call_id\":0,\"caller\":\"3001\",\"caller_name\":"
            "\"J\xC3\xBCrgen \xE2\x82\xAC \xF0\x9F\x93\x9E\"}");
}

// Parses `json` and returns the string member `key`.
std::string StringMember(const std::string& json, const char* key) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  std::string_view value;
  EXPECT_EQ(doc[key].get(value), simdjson::SUCCESS) << json;
  return std::string(value);
}

TEST(JsonCodecEncodeTest, ReplacesInvalidUtf8WithReplacementCharacters) {
  const std::string kFffd = "\xEF\xBF\xBD";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a\xFF" "b", "a" + kFffd + "b"},
      {"\xC3", kFffd},                              // truncated at the end
      {"\xC3" "A", kFffd + "A"},                    // bad continuation
      {"\xE2\x82", kFffd},                          // truncated 3-byte
      {"\xE2\x82" "A\xE2\x82\xAC", kFffd + "A\xE2\x82\xAC"},
      {"\xC0\xAF", kFffd + kFffd},                  // overlong
      {"\xE0\x80\xAF", kFffd + kFffd + kFffd},      // overlong 3-byte
      {"\xED\xA0\x80", kFffd + kFffd + kFffd},      // surrogate
      {"\xF4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},  // > U+10FFFF
      {"\xF0\x9F\x93", kFffd},                      // truncated 4-byte
      {"\x80\x80", kFffd + kFffd},                  // lone continuations
      {"\xF8\x88\x80\x80\x80", kFffd + kFffd + kFffd + kFffd + kFffd},
      {"ok \xC3\xA9 \xFE", "ok \xC3\xA9 " + kFffd},
  };
  for (const auto& [raw, want] : cases) {
    Event event;
    event.mutable_call_incoming()->set_caller_name(raw);
    event.mutable_call_incoming()->set_caller("\"" + raw + "\"");
    const std::string json = JsonCodec::Encode(event, true);
    ASSERT_TRUE(simdjson::validate_utf8(json)) << json;
    EXPECT_EQ(StringMember(json, "caller_name"), want) << json;
    EXPECT_EQ(StringMember(json, "caller"), "\"" + want + "\"") << json;
  }
}

TEST(JsonCodecEncodeTest, EncodedEventsDecodeAsJson) {
  Event event = ParseEvent(
      R"(seq: 1 token: "t" status { account: "a\n" account_status: 100
             calls { call_id: 9007199254740992 state: CALL_STATE_REMOTE_HELD
                     direction: CALL_DIRECTION_OUTGOING peer: "\x01\xff" } })");
  const std::string json = JsonCodec::Encode(event, true);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  int64_t call_id;
  ASSERT_EQ(doc["calls"].at(0)["call_id"].get(call_id), simdjson::SUCCESS);
  EXPECT_EQ(call_id, int64_t{1} << 53);
  EXPECT_EQ(StringMember(json, "token"), "t");
  EXPECT_EQ(StringMember(json, "account"), "a\n");
}

TEST(JsonCodecEncodeTest, RendersAnEventWithoutKindAsAnObject) {
  Event event;
  event.set_seq(2);
  EXPECT_EQ(JsonCodec::Encode(event, false), R"({"event":"unknown"})");
  EXPECT_EQ(JsonCodec::Encode(event, true), R"({"event":"unknown","seq":2})");
}

TEST(JsonCodecTest, MarksOnlyTheNewEventsAsExtendedOnly) {
  const std::vector<std::pair<std::string, bool>> cases = {
      {"call_return {}", false},   {"call_incoming {}", false},
      {"call_answered {}", false}, {"call_ended {}", false},
      {"status {}", false},        {"fail {}", false},
      {"call_ringing {}", true},   {"call_held {}", true},
      {"call_resumed {}", true},   {"account_status {}", true},
      {"call_quality {}", true},   {"subscribed {}", false},
      {"accounts {}", false},      {"", false},
  };
  for (const auto& [text, want] : cases) {
    EXPECT_EQ(JsonCodec::IsExtendedOnly(ParseEvent(text)), want) << text;
  }
}

}  // namespace
}  // namespace telestra::gateway
