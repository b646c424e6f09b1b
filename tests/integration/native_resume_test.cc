// A native client that drops and comes back (issue 22, "Legacy clients
// resume"), against Kamailio, sipp and the real gateway: it subscribes
// extended, a call to a sipp UAS changes state while it is away (held,
// resumed, ended by sipp's BYE), and the resume with after_seq gives it
// each missed event exactly once, in order, before the live ones. With a
// history of 16 events a client away too long gets "Events lost: A..B",
// then a status of every account, then the live events.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"

namespace telestra::testing {
namespace {

class NativeResumeTest : public SipPeerTest {
 protected:
  // account-1 and account-2 (extended clients), no periodic call-quality
  // (the history keeps none of it; the controller's log is then exactly
  // the broadcasts and its own replies), `tcp` settings besides.
  void Start(std::vector<std::string> tcp = {}) {
    GatewayOptions options;
    options.tcp_settings = std::move(tcp);
    options.rtp_settings = {"quality-interval = 0"};
    StartTwoAccounts(options);
  }

  // Reads client_ (the controller) until `match`, keeping every event in
  // log_ (WaitFor would drop the one it returns from skipped()).
  std::optional<NativeEvent> Await(const NativeMatch& match,
                                   absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      std::optional<NativeEvent> event = client_->Next(deadline - absl::Now());
      if (!event) break;
      log_.push_back(*event);
      if (match(*event)) return event;
    }
    ADD_FAILURE() << "the controller waited in vain";
    return std::nullopt;
  }

  // make-call from client_; the call id (-1 if no call-return).
  int64_t MakeCall(const std::string& account, const std::string& number) {
    client_->Send(absl::StrCat(R"({"cmd":"make-call","account":")", account, R"(","num":")", number,
                               R"("})"));
    std::optional<NativeEvent> call_return = Await(IsEventOf("call-return", account));
    return call_return ? call_return->Int("call_id") : -1;
  }

  // account-1 calls account-2, which answers; account-1's call id.
  int64_t CallAccount2AndAnswer() {
    const int64_t id = MakeCall("account-1", "3002");
    std::optional<NativeEvent> incoming = Await(IsEventOf("call-incoming", "account-2"));
    if (!incoming) return -1;
    Command("answer-call", "account-2", incoming->Int("call_id"));
    if (!Await(IsCallEvent("call-answered", "account-1", id))) return -1;
    return id;
  }

  // The broadcasts the controller got with seq in (after, upto], as sent
  // (its replies, call-return and status, are not for other clients).
  std::vector<std::string> BroadcastsBetween(int64_t after, int64_t upto) {
    std::vector<std::string> out;
    for (const NativeEvent& event : log_) {
      if (event.event() == "call-return" || event.event() == "status") continue;
      const int64_t seq = event.Int("seq");
      if (seq > after && seq <= upto) out.push_back(event.json);
    }
    return out;
  }

  // Connects a client and subscribes extended, resuming after `after_seq`
  // of `instance` if given; the `subscribed` answer (what came before it
  // is not counted: docs/native-api.md, "Resuming").
  std::unique_ptr<NativeClient> Subscribe(std::optional<int64_t> after_seq,
                                          const std::string& instance,
                                          std::optional<NativeEvent>* subscribed) {
    std::unique_ptr<NativeClient> client = ConnectNative(*gateway_);
    if (client == nullptr) return nullptr;
    std::string command = R"({"cmd":"subscribe","extended":true)";
    if (after_seq) {
      absl::StrAppend(&command, R"(,"after_seq":)", *after_seq, R"(,"instance":")", instance,
                      R"(")");
    }
    client->Send(command + "}");
    *subscribed = client->WaitFor(IsEvent("subscribed"));
    EXPECT_TRUE(subscribed->has_value()) << "no subscribed";
    return client;
  }

  std::vector<NativeEvent> log_;
};

TEST_F(NativeResumeTest, AClientAwayDuringAHoldAndAHangupGetsEachMissedEventOnceInOrder) {
  ASSERT_NO_FATAL_FAILURE(Start());
  SippProcess* sipp = StartUas("uas_hold.xml");
  ASSERT_NE(sipp, nullptr);

  std::optional<NativeEvent> subscribed;
  std::unique_ptr<NativeClient> watcher = Subscribe(std::nullopt, "", &subscribed);
  ASSERT_TRUE(subscribed.has_value());
  const std::string instance = subscribed->Str("instance");
  EXPECT_EQ(instance.size(), 16u) << subscribed->json;

  // A call to sipp and one to account-2, both answered; the watcher sees
  // them.
  const int64_t to_sipp = MakeCall("account-1", kSippUser);
  ASSERT_TRUE(Await(IsCallEvent("call-answered", "account-1", to_sipp)));
  const int64_t to_b = CallAccount2AndAnswer();
  ASSERT_GE(to_b, 0);
  int64_t last_seen = subscribed->Int("seq");
  for (;;) {
    std::optional<NativeEvent> event = watcher->Next();
    ASSERT_TRUE(event.has_value()) << "the watcher did not see the calls answered";
    EXPECT_GT(event->Int("seq"), last_seen) << event->json;
    last_seen = event->Int("seq");
    if (IsCallEvent("call-answered", "account-1", to_b)(*event)) break;
  }
  // The watcher drops mid-call.
  watcher.reset();

  // Meanwhile: the call to sipp is held (switch to the other call) and
  // resumed, then sipp hangs up; the other call is hung up.
  Command("switch-call", "account-1", to_b);
  ASSERT_TRUE(Await(IsCallEvent("call-held", "account-1", to_sipp)));
  // Resume once sipp has the hold's ACK (else the resume INVITE may
  // overtake it in Kamailio and confuse the scenario).
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (Requests(ReceivedMessages(sipp->Messages()), "ACK").size() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));  // polls sipp's log, with a deadline
  }
  Command("switch-call", "account-1", to_sipp);
  ASSERT_TRUE(Await(IsCallEvent("call-resumed", "account-1", to_sipp)));
  std::optional<NativeEvent> ended = Await(IsCallEvent("call-ended", "account-1", to_sipp));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->Str("reason"), "Remote hangup") << ended->json;
  Command("hangup-call", "account-1", to_b);
  ASSERT_TRUE(Await(IsCallEvent("call-ended", "account-1", to_b)));
  ExpectSippSucceeds(*sipp);

  // It comes back with the last seq it saw.
  std::unique_ptr<NativeClient> back = Subscribe(last_seen, instance, &subscribed);
  ASSERT_TRUE(subscribed.has_value());
  EXPECT_EQ(subscribed->Str("instance"), instance);
  const int64_t resume_seq = subscribed->Int("seq");
  // The controller has seen everything up to the resume point too.
  while (log_.empty() || log_.back().Int("seq") < resume_seq) {
    ASSERT_TRUE(Await([](const NativeEvent&) { return true; }, absl::Seconds(5)));
  }
  const std::vector<std::string> missed = BroadcastsBetween(last_seen, resume_seq);
  ASSERT_GE(missed.size(), 5u);  // call-held x2, call-resumed, call-ended x3 at least
  for (size_t i = 0; i < missed.size(); ++i) {
    std::optional<NativeEvent> replayed = back->Next();
    ASSERT_TRUE(replayed.has_value()) << "replay ended after " << i << " of " << missed.size();
    EXPECT_EQ(replayed->json, missed[i]);  // the very event, with its seq
  }
  // Then live events, and nothing twice.
  const int64_t nobody = MakeCall("account-1", "3999");  // call-ended 404
  for (;;) {
    std::optional<NativeEvent> live = back->Next();
    ASSERT_TRUE(live.has_value());
    EXPECT_GT(live->Int("seq"), resume_seq) << live->json;
    if (IsCallEvent("call-ended", "account-1", nobody)(*live)) break;
  }
}

TEST_F(NativeResumeTest, AClientAwayTooLongGetsTheGapThenEveryAccountsStatusThenLiveEvents) {
  ASSERT_NO_FATAL_FAILURE(Start({"history-events = 16"}));
  std::optional<NativeEvent> subscribed;
  std::unique_ptr<NativeClient> watcher = Subscribe(std::nullopt, "", &subscribed);
  ASSERT_TRUE(subscribed.has_value());
  const std::string instance = subscribed->Str("instance");
  const int64_t last_seen = subscribed->Int("seq");
  watcher.reset();

  // Over 16 broadcasts while it is away: three calls answered and hung up
  // (call-incoming, call-ringing, call-answered x2, call-ended x2 each),
  // and a fourth left up.
  for (int i = 0; i < 3; ++i) {
    const int64_t id = CallAccount2AndAnswer();
    ASSERT_GE(id, 0);
    Command("hangup-call", "account-1", id);
    ASSERT_TRUE(Await(IsCallEvent("call-ended", "account-1", id)));
  }
  const int64_t up = CallAccount2AndAnswer();
  ASSERT_GE(up, 0);

  std::unique_ptr<NativeClient> back = Subscribe(last_seen, instance, &subscribed);
  ASSERT_TRUE(subscribed.has_value());
  const int64_t resume_seq = subscribed->Int("seq");
  ASSERT_GT(resume_seq - last_seen, 16);
  std::optional<NativeEvent> fail = back->Next();
  ASSERT_TRUE(fail.has_value());
  EXPECT_EQ(fail->json,
            absl::StrCat(R"({"event":"fail","account":"","error":"Events lost: )", last_seen + 1,
                         "..", resume_seq, R"(","seq":)", resume_seq, "}"));
  // The snapshot: every account's status as of resume_seq.
  for (const char* account : {"account-1", "account-2"}) {
    std::optional<NativeEvent> status = back->Next();
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->event(), "status") << status->json;
    EXPECT_EQ(status->Str("account"), account);
    EXPECT_EQ(status->Int("account_status"), 200);
    EXPECT_EQ(status->Int("seq"), resume_seq);
  }
  EXPECT_EQ(CallState(*back, "account-1", up), "active");  // a get-status of its own
  // Then the live events: the call that is up ends.
  Command("hangup-call", "account-1", up);
  std::optional<NativeEvent> ended = back->WaitFor(IsCallEvent("call-ended", "account-1", up));
  ASSERT_TRUE(ended.has_value());
  EXPECT_GT(ended->Int("seq"), resume_seq);
  for (const NativeEvent& skipped : back->skipped()) {
    EXPECT_NE(skipped.event(), "fail") << skipped.json;  // one gap report, no more
  }
}

}  // namespace
}  // namespace telestra::testing
