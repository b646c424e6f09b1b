#include "gateway/grpc/subscription.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

using telestra::v1::Event;
using telestra::v1::SubscribeRequest;

backend::EventPtr AccountStatus(uint64_t seq, const std::string& account, int status) {
  Event event;
  event.set_seq(seq);
  event.mutable_account_status()->set_account(account);
  event.mutable_account_status()->set_account_status(status);
  return std::make_shared<const Event>(std::move(event));
}

backend::EventPtr Fail(uint64_t seq, const std::string& account) {
  Event event;
  event.set_seq(seq);
  event.mutable_fail()->set_account(account);
  event.mutable_fail()->set_error("Failed to log in to account: " + account);
  return std::make_shared<const Event>(std::move(event));
}

telestra::v1::Status StatusOf(const std::string& account, int status) {
  telestra::v1::Status out;
  out.set_account(account);
  out.set_account_status(status);
  return out;
}

const std::vector<std::string> kAccounts = {"account-1", "account-2"};

EventFilter All() { return *EventFilter::Create(SubscribeRequest(), kAccounts); }

std::vector<uint64_t> Seqs(const std::vector<backend::EventPtr>& events) {
  std::vector<uint64_t> seqs;
  for (const auto& event : events) seqs.push_back(event->seq());
  return seqs;
}

TEST(EventKindTest, EveryEventKindIsNamedAndNumberedAsTheEventOneofField) {
  const auto* kinds = Event::descriptor()->FindOneofByName("kind");
  const auto* kind_enum = telestra::v1::EventKind_descriptor();
  ASSERT_EQ(kind_enum->value_count(), kinds->field_count() + 1);  // + UNSPECIFIED
  for (int i = 0; i < kinds->field_count(); ++i) {
    const auto* field = kinds->field(i);
    const auto* value = kind_enum->FindValueByNumber(field->number());
    ASSERT_NE(value, nullptr) << field->name();
    EXPECT_EQ(value->name(), "EVENT_KIND_" + absl::AsciiStrToUpper(field->name()));
  }
}

TEST(EventFilterTest, EmptyRequestWantsEverything) {
  EventFilter filter = All();
  EXPECT_TRUE(filter.Matches(*AccountStatus(1, "account-1", 200)));
  EXPECT_TRUE(filter.Matches(*Fail(2, "account-2")));
}

TEST(EventFilterTest, FiltersByAccountAndKind) {
  SubscribeRequest request;
  request.add_accounts("account-2");
  request.add_kinds(telestra::v1::EVENT_KIND_FAIL);
  auto filter = EventFilter::Create(request, kAccounts);
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_TRUE(filter->Matches(*Fail(1, "account-2")));
  EXPECT_FALSE(filter->Matches(*Fail(2, "account-1")));
  EXPECT_FALSE(filter->Matches(*AccountStatus(3, "account-2", 200)));
  EXPECT_TRUE(filter->WantsAccount("account-2"));
  EXPECT_FALSE(filter->WantsAccount("account-1"));
}

TEST(EventFilterTest, UnknownAccountIsNotFoundAndUnknownKindInvalid) {
  SubscribeRequest request;
  request.add_accounts("nobody");
  EXPECT_EQ(EventFilter::Create(request, kAccounts).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(EventFilter::Create(request, kAccounts).status().message(), "Unknown account: nobody");
  SubscribeRequest kinds;
  kinds.add_kinds(telestra::v1::EVENT_KIND_UNSPECIFIED);
  EXPECT_EQ(EventFilter::Create(kinds, kAccounts).status().code(),
            absl::StatusCode::kInvalidArgument);
  SubscribeRequest future;
  future.add_kinds(static_cast<telestra::v1::EventKind>(99));
  EXPECT_EQ(EventFilter::Create(future, kAccounts).status().message(), "Unknown event kind: 99");
}

// The events of issue 20 (DTMF, transfer, call progress), one per kind,
// of `account`.
std::vector<Event> TelephonyEvents(const std::string& account) {
  std::vector<Event> events(6);
  events[0].mutable_dtmf()->set_account(account);
  events[1].mutable_dtmf_sent()->set_account(account);
  events[2].mutable_transfer_progress()->set_account(account);
  events[3].mutable_call_started()->set_account(account);
  events[4].mutable_call_progress()->set_account(account);
  events[5].mutable_call_quality()->set_account(account);
  return events;
}

TEST(ExtendedEventsTest, DtmfAndDtmfSentReachEveryStreamTheOthersOnlyExtendedOnes) {
  // docs/grpc-api.md, Session: Dtmf always comes (and DtmfSent is a reply);
  // TransferProgress, CallStarted, CallProgress, CallQuality are extended.
  std::vector<Event> events = TelephonyEvents("account-1");
  EXPECT_FALSE(IsExtendedOnlyEvent(events[0])) << "Dtmf";
  EXPECT_FALSE(IsExtendedOnlyEvent(events[1])) << "DtmfSent";
  EXPECT_TRUE(IsExtendedOnlyEvent(events[2])) << "TransferProgress";
  EXPECT_TRUE(IsExtendedOnlyEvent(events[3])) << "CallStarted";
  EXPECT_TRUE(IsExtendedOnlyEvent(events[4])) << "CallProgress";
  EXPECT_TRUE(IsExtendedOnlyEvent(events[5])) << "CallQuality";
}

TEST(EventFilterTest, TelephonyEventsAreFilteredByTheirAccountAndKind) {
  for (const Event& event : TelephonyEvents("account-2")) {
    EXPECT_EQ(AccountOfEvent(event), "account-2") << event.ShortDebugString();
  }
  SubscribeRequest request;
  request.add_accounts("account-2");
  request.add_kinds(telestra::v1::EVENT_KIND_TRANSFER_PROGRESS);
  request.add_kinds(telestra::v1::EVENT_KIND_CALL_STARTED);
  EventFilter filter = *EventFilter::Create(request, kAccounts);
  std::vector<bool> matched;
  for (const Event& event : TelephonyEvents("account-2")) matched.push_back(filter.Matches(event));
  EXPECT_EQ(matched, (std::vector<bool>{false, false, true, true, false, false}));
  for (const Event& event : TelephonyEvents("account-1")) {
    EXPECT_FALSE(filter.Matches(event)) << event.ShortDebugString();
  }
}

// The decision is the hub's (EventHub::PlanResume, tests/backend); here
// only what a Subscribe stream makes of it.
backend::ResumePoint Point(backend::ResumePoint::Outcome outcome, uint64_t after_seq,
                           uint64_t replay_after) {
  backend::ResumePoint point;
  point.outcome = outcome;
  point.instance = "e1";
  point.after_seq = after_seq;
  point.replay_after = replay_after;
  point.last_seq = 10;
  return point;
}

TEST(PlanResumeTest, NoAfterSeqMeansNoReplay) {
  ResumePlan plan = PlanResume(Point(backend::ResumePoint::Outcome::kFresh, 0, 0));
  EXPECT_FALSE(plan.replay);
  EXPECT_FALSE(plan.gap);
}

TEST(PlanResumeTest, AfterSeqWithinThisNumberingReplaysFromIt) {
  ResumePlan plan = PlanResume(Point(backend::ResumePoint::Outcome::kComplete, 7, 7));
  EXPECT_TRUE(plan.replay);
  EXPECT_EQ(plan.replay_after, 7u);
  EXPECT_FALSE(plan.gap);
  // "everything", distinct from no after_seq
  EXPECT_TRUE(PlanResume(Point(backend::ResumePoint::Outcome::kComplete, 0, 0)).replay);
}

TEST(PlanResumeTest, OtherEpochOrSeqAheadIsAGapReplayingTheWholeHistory) {
  backend::ResumePoint other = Point(backend::ResumePoint::Outcome::kOtherInstance, 7, 0);
  other.client_instance = "old";
  ResumePlan plan = PlanResume(other);
  EXPECT_TRUE(plan.gap);
  EXPECT_EQ(plan.replay_after, 0u);
  EXPECT_TRUE(absl::StartsWith(plan.gap_message, "Events lost: epoch old")) << plan.gap_message;

  plan = PlanResume(Point(backend::ResumePoint::Outcome::kAhead, 500, 0));
  EXPECT_TRUE(plan.gap);
  EXPECT_EQ(plan.replay_after, 0u);
  EXPECT_TRUE(absl::StrContains(plan.gap_message, "ahead of this gateway's newest seq 10"));
}

TEST(PlanResumeTest, EvictedHistoryIsAGap) {
  backend::ResumePoint evicted = Point(backend::ResumePoint::Outcome::kEvicted, 3, 3);
  evicted.events = {AccountStatus(50, "account-1", 0)};
  ResumePlan plan = PlanResume(evicted);
  EXPECT_TRUE(plan.gap);
  EXPECT_TRUE(plan.replay);
  EXPECT_EQ(plan.gap_message,
            "Events lost: the history no longer holds every event after seq 3 (the replay "
            "starts at seq 50); take a new snapshot");
}

TEST(InitialEventsTest, MergesHistoryAndLiveBySeqOnce) {
  ResumePlan plan;
  plan.replay = true;
  plan.replay_after = 2;
  std::vector<backend::EventPtr> history = {AccountStatus(3, "account-1", 100),
                                            AccountStatus(4, "account-1", 200),
                                            AccountStatus(5, "account-2", 0)};
  std::vector<backend::EventPtr> live = {AccountStatus(5, "account-2", 0),
                                         AccountStatus(6, "account-2", 100)};
  auto events = InitialEvents(plan, 2, history, live, 5, false, {}, All());
  EXPECT_EQ(Seqs(events), (std::vector<uint64_t>{3, 4, 5, 6}));
}

TEST(InitialEventsTest, SnapshotSitsAtItsSeqBetweenOlderAndNewerEvents) {
  ResumePlan plan;
  plan.replay = true;
  std::vector<backend::EventPtr> history = {AccountStatus(3, "account-1", 100),
                                            AccountStatus(4, "account-1", 200)};
  std::vector<backend::EventPtr> live = {AccountStatus(4, "account-1", 200),
                                         AccountStatus(5, "account-2", 100)};
  auto events = InitialEvents(plan, 2, history, live, 4, true,
                              {StatusOf("account-1", 200), StatusOf("account-2", 0)}, All());
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(Seqs(events), (std::vector<uint64_t>{3, 4, 4, 4, 5}));
  EXPECT_TRUE(events[2]->has_status());
  EXPECT_EQ(events[2]->status().account(), "account-1");
  EXPECT_TRUE(events[3]->has_status());
  EXPECT_TRUE(events[4]->has_account_status());
}

TEST(InitialEventsTest, WithoutResumeOnlyEventsAfterTheSnapshotSeqAreSent) {
  ResumePlan plan;
  std::vector<backend::EventPtr> live = {AccountStatus(9, "account-1", 100),
                                         AccountStatus(10, "account-1", 200)};
  auto events = InitialEvents(plan, 9, {}, live, 9, false, {}, All());
  EXPECT_EQ(Seqs(events), (std::vector<uint64_t>{10}));
}

TEST(InitialEventsTest, GapNoticeComesFirstAndFiltersApply) {
  ResumePlan plan;
  plan.replay = true;
  plan.gap = true;
  plan.gap_message = "Events lost: test";
  SubscribeRequest request;
  request.add_accounts("account-2");
  request.add_kinds(telestra::v1::EVENT_KIND_FAIL);
  EventFilter filter = *EventFilter::Create(request, kAccounts);
  std::vector<backend::EventPtr> history = {Fail(3, "account-1"), Fail(4, "account-2"),
                                            AccountStatus(5, "account-2", 401)};
  auto events = InitialEvents(plan, 0, history, {}, 5, true,
                              {StatusOf("account-1", 0), StatusOf("account-2", 401)}, filter);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]->seq(), 0u);
  EXPECT_EQ(events[0]->fail().error(), "Events lost: test");
  EXPECT_EQ(events[0]->fail().kind(), telestra::v1::FAIL_KIND_RESOURCE_EXHAUSTED);
  EXPECT_EQ(events[1]->seq(), 4u);
  // The snapshot ignores `kinds` but honours `accounts`.
  EXPECT_EQ(events[2]->status().account(), "account-2");
}

}  // namespace
}  // namespace telestra::gateway
