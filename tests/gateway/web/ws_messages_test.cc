#include "gateway/web/ws_messages.h"

#include <simdjson.h>

#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

TEST(WsMessagesTest, SnapshotHoldsOneCodecStatusPerAccount) {
  std::vector<telestra::v1::Status> accounts(2);
  accounts[0].set_account("account-1");
  accounts[0].set_account_status(200);
  auto* call = accounts[0].add_calls();
  call->set_call_id(7);
  call->set_state(telestra::v1::CALL_STATE_ACTIVE);
  call->set_direction(telestra::v1::CALL_DIRECTION_OUTGOING);
  call->set_peer("3002");
  call->set_codec("PCMU");
  call->mutable_start_time()->set_seconds(1798804800);
  accounts[0].set_user("3001");
  accounts[0].set_server("pbx");
  accounts[1].set_account("account-2");
  // The extended status: the account's and the calls' details included.
  EXPECT_EQ(SnapshotMessage("00ff", 41, accounts),
            R"({"event":"snapshot","instance":"00ff","seq":41,"accounts":[)"
            R"({"event":"status","account":"account-1","account_status":200,)"
            R"("user":"3001","server":"pbx","calls":[)"
            R"({"call_id":7,"state":"active","direction":"outgoing","peer":"3002",)"
            R"("peer_name":"","start_time":"2027-01-01T12:00:00.000Z","codec":"PCMU",)"
            R"("sip_call_id":"","remote_uri":"","packets_received":0,"packets_lost":0,)"
            R"("jitter_ms":0.0}],"seq":41},)"
            R"({"event":"status","account":"account-2","account_status":0,)"
            R"("user":"","server":"","calls":[],"seq":41}]})");
  EXPECT_EQ(SnapshotMessage("i", 0, {}),
            R"({"event":"snapshot","instance":"i","seq":0,"accounts":[]})");
}

TEST(WsMessagesTest, ResumedAndGapAreValidJson) {
  EXPECT_EQ(ResumedMessage("abc", 12, 3),
            R"({"event":"resumed","instance":"abc","after_seq":12,"replayed":3})");
  EXPECT_EQ(GapMessage(5, "lost"), R"({"event":"gap","after_seq":5,"reason":"lost"})");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(GapMessage(5, "a \"quoted\" \\ reason\n")).get(doc), simdjson::SUCCESS);
}

// The decision is the hub's (EventHub::PlanResume, tests/backend); here
// only how the WebSocket words it.
backend::ResumePoint Point(backend::ResumePoint::Outcome outcome) {
  backend::ResumePoint point;
  point.outcome = outcome;
  return point;
}

TEST(PlanWebResumeTest, FreshClientGetsASnapshotWithoutGap) {
  WebResumePlan plan = PlanWebResume(Point(backend::ResumePoint::Outcome::kFresh));
  EXPECT_FALSE(plan.resume);
  EXPECT_TRUE(plan.gap_reason.empty());
}

TEST(PlanWebResumeTest, ResumesWhenTheHistoryHoldsEverythingAfterSeq) {
  WebResumePlan plan = PlanWebResume(Point(backend::ResumePoint::Outcome::kComplete));
  EXPECT_TRUE(plan.resume);
  EXPECT_TRUE(plan.gap_reason.empty());
}

TEST(PlanWebResumeTest, ReportsEachKindOfGap) {
  using Outcome = backend::ResumePoint::Outcome;
  WebResumePlan restarted = PlanWebResume(Point(Outcome::kOtherInstance));
  EXPECT_FALSE(restarted.resume);
  EXPECT_NE(restarted.gap_reason.find("restarted"), std::string::npos);
  WebResumePlan ahead = PlanWebResume(Point(Outcome::kAhead));
  EXPECT_FALSE(ahead.resume);
  EXPECT_NE(ahead.gap_reason.find("ahead"), std::string::npos);
  WebResumePlan evicted = PlanWebResume(Point(Outcome::kEvicted));
  EXPECT_FALSE(evicted.resume);
  EXPECT_NE(evicted.gap_reason.find("no longer kept"), std::string::npos);
}

}  // namespace
}  // namespace telestra::gateway
