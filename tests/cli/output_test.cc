#include "cli/output.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gateway/native/json_codec.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace telestra::cli {
namespace {

template <typename Message>
Message Parse(const std::string& text) {
  Message message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

TEST(OutputTest, TablesPadColumnsToTheWidestCell) {
  EXPECT_EQ(FormatTable({{"A", "BB", "C"}, {"long", "x", "y"}}),
            "A     BB  C\n"
            "long  x   y\n");
  // Characters, not bytes: a UTF-8 name takes its characters' columns.
  EXPECT_EQ(FormatTable({{"NAME", "N"}, {"J\xC3\xBCrgen", "1"}}),
            "NAME    N\n"
            "J\xC3\xBCrgen  1\n");
}

TEST(OutputTest, ControlCharactersAreShownEscaped) {
  EXPECT_EQ(Printable("plain \xC3\xA9t\xC3\xA9"), "plain \xC3\xA9t\xC3\xA9");
  EXPECT_EQ(Printable("a\nb\r\tc\x1b[2Jd\x7f"), "a\\nb\\r\\tc\\x1b[2Jd\\x7f");
}

TEST(OutputTest, RegistrationInWords) {
  EXPECT_EQ(RegistrationText(200), "registered (200)");
  EXPECT_EQ(RegistrationText(100), "registering (100)");
  EXPECT_EQ(RegistrationText(0), "logged out (0)");
  EXPECT_EQ(RegistrationText(403), "failed (403)");
}

TEST(OutputTest, AccountsTableHasOneRowPerAccount) {
  std::vector<telestra::v1::Status> accounts = {
      Parse<telestra::v1::Status>(R"(account: "account-1" account_status: 200
          calls { call_id: 0 state: CALL_STATE_ACTIVE })"),
      Parse<telestra::v1::Status>(R"(account: "account-2")"),
  };
  // User and server are "-" while the gateway's Status does not report them.
  EXPECT_EQ(AccountsTable(accounts),
            "ACCOUNT    STATUS            USER  SERVER  CALLS\n"
            "account-1  registered (200)  -     -       1\n"
            "account-2  logged out (0)    -     -       0\n");
}

TEST(OutputTest, StatusListsTheCalls) {
  auto status = Parse<telestra::v1::Status>(R"(account: "account-1" account_status: 200
      calls { call_id: 0 state: CALL_STATE_ACTIVE direction: CALL_DIRECTION_OUTGOING
              peer: "3002" }
      calls { call_id: 12 state: CALL_STATE_REMOTE_HELD direction: CALL_DIRECTION_INCOMING
              peer: "3003" peer_name: "Carol\n" })");
  EXPECT_EQ(StatusText(status),
            "account-1: registered (200), 2 calls\n"
            "CALL  STATE        DIRECTION  PEER\n"
            "0     active       outgoing   3002\n"
            "12    remote-held  incoming   3003 (Carol\\n)\n");
  EXPECT_EQ(StatusText(Parse<telestra::v1::Status>(R"(account: "account-2" account_status: 403)")),
            "account-2: failed (403), no calls\n");
}

TEST(OutputTest, EventLinesSayWhatHappened) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  struct Case {
    const char* event;
    const char* line;
  } cases[] = {
      {R"(seq: 5 time { seconds: 1800000000 nanos: 123456789 }
          call_incoming { account: "account-2" call_id: 1 caller: "3001" caller_name: "account-1" })",
       "08:00:00.123 #5 call-incoming account-2 call 1 from 3001 (account-1)"},
      {R"(seq: 6 call_ringing { account: "account-1" code: 180 })",
       "--:--:--.--- #6 call-ringing account-1 call 0 (180)"},
      {R"(seq: 7 call_answered { account: "account-1" })",
       "--:--:--.--- #7 call-answered account-1 call 0"},
      {R"(seq: 8 call_ended { account: "account-2" call_id: 1 reason: "Remote hangup" })",
       "--:--:--.--- #8 call-ended account-2 call 1: Remote hangup"},
      {R"(seq: 9 call_ended { account: "account-1" code: 486 reason: "Busy Here" })",
       "--:--:--.--- #9 call-ended account-1 call 0 (486): Busy Here"},
      {R"(seq: 3 status { account: "account-1" account_status: 200
            calls { call_id: 0 state: CALL_STATE_RINGING direction: CALL_DIRECTION_OUTGOING
                    peer: "3002" } })",
       "--:--:--.--- #3 status account-1 registered (200), 1 call; call 0 ringing outgoing 3002"},
      {R"(seq: 0 fail { error: "Events lost: ..." kind: FAIL_KIND_RESOURCE_EXHAUSTED })",
       "--:--:--.--- #0 fail: Events lost: ..."},
      {R"(seq: 10 account_status { account: "account-2" account_status: 401
            reason: "Unauthorized" })",
       "--:--:--.--- #10 account-status account-2 failed (401): Unauthorized"},
      {R"(seq: 11 dtmf { account: "account-1" call_id: 4 digit: "#" duration_ms: 100
            method: "rfc4733" })",
       "--:--:--.--- #11 dtmf account-1 call 4 digit # (100 ms, rfc4733)"},
      {R"(seq: 12 call_progress { account: "account-1" call_id: 4 code: 183 early_media: true })",
       "--:--:--.--- #12 call-progress account-1 call 4 (183, early media)"},
      {R"(seq: 13 call_held { account: "account-1" call_id: 4 })",
       "--:--:--.--- #13 call-held account-1 call 4"},
      {R"(seq: 14 transfer_progress { account: "account-1" call_id: 4 code: 200 })",
       "--:--:--.--- #14 transfer-progress account-1 call 4 (200)"},
      {R"(seq: 15 call_started { account: "account-1" call_id: 6 num: "3003"
            transferred_from: 4 })",
       "--:--:--.--- #15 call-started account-1 call 6 to 3003 (transferred from call 4)"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(EventLine(Parse<telestra::v1::Event>(c.event), utc), c.line);
  }
}

TEST(OutputTest, JsonIsTheNativeExtendedJson) {
  auto event = Parse<telestra::v1::Event>(
      R"(seq: 8 call_ended { account: "account-2" call_id: 1 reason: "Remote hangup" })");
  EXPECT_EQ(EventJson(event), R"({"event":"call-ended","account":"account-2","call_id":1,"code":0,)"
                              R"("reason":"Remote hangup","seq":8})");
  // A status as the native port renders it for an extended client (the
  // fields beyond the vendor's among them), numbered 0: a unary reply.
  auto status = Parse<telestra::v1::Status>(R"(account: "account-1" account_status: 200)");
  const telestra::v1::Event reply = StatusEvent(status);
  EXPECT_EQ(EventJson(reply), telestra::gateway::JsonCodec::Encode(reply, /*extended=*/true));
  EXPECT_TRUE(absl::StartsWith(EventJson(reply),
                               R"({"event":"status","account":"account-1","account_status":200,)"))
      << EventJson(reply);
  EXPECT_TRUE(absl::EndsWith(EventJson(reply), R"(,"seq":0})")) << EventJson(reply);
  auto call = Parse<telestra::v1::CallReturn>(R"(account: "account-1" call_id: 3)");
  EXPECT_EQ(EventJson(CallReturnEvent(call)),
            R"({"event":"call-return","account":"account-1","call_id":3,"seq":0})");
}

}  // namespace
}  // namespace telestra::cli
