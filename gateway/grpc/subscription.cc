#include "gateway/grpc/subscription.h"

#include <chrono>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace telestra::gateway {
namespace {

using telestra::v1::Event;

const std::string kNoAccount;

void StampNow(Event& event) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  event.mutable_time()->set_seconds(nanos / 1000000000);
  event.mutable_time()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

}  // namespace

const std::string& AccountOfEvent(const Event& event) {
  switch (event.kind_case()) {
    case Event::kCallReturn:
      return event.call_return().account();
    case Event::kCallIncoming:
      return event.call_incoming().account();
    case Event::kCallAnswered:
      return event.call_answered().account();
    case Event::kCallEnded:
      return event.call_ended().account();
    case Event::kStatus:
      return event.status().account();
    case Event::kFail:
      return event.fail().account();
    case Event::kCallRinging:
      return event.call_ringing().account();
    case Event::kCallHeld:
      return event.call_held().account();
    case Event::kCallResumed:
      return event.call_resumed().account();
    case Event::kAccountStatus:
      return event.account_status().account();
    case Event::kDtmf:
      return event.dtmf().account();
    case Event::kCallProgress:
      return event.call_progress().account();
    case Event::kTransferProgress:
      return event.transfer_progress().account();
    case Event::kCallStarted:
      return event.call_started().account();
    case Event::kDtmfSent:
      return event.dtmf_sent().account();
    case Event::kCallQuality:
      return event.call_quality().account();
    case Event::kSubscribed:  // replies, never broadcast
    case Event::kAccounts:
    case Event::KIND_NOT_SET:
      break;
  }
  return kNoAccount;
}

bool IsExtendedOnlyEvent(const Event& event) {
  switch (event.kind_case()) {
    case Event::kCallRinging:
    case Event::kCallHeld:
    case Event::kCallResumed:
    case Event::kAccountStatus:
    case Event::kCallProgress:
    case Event::kTransferProgress:
    case Event::kCallStarted:
    case Event::kCallQuality:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<EventFilter> EventFilter::Create(const telestra::v1::SubscribeRequest& request,
                                                const std::vector<std::string>& known_accounts) {
  EventFilter filter;
  for (const std::string& account : request.accounts()) {
    bool known = false;
    for (const std::string& name : known_accounts) known = known || name == account;
    if (!known) return absl::NotFoundError(absl::StrCat("Unknown account: ", account));
    filter.accounts_.insert(account);
  }
  const google::protobuf::OneofDescriptor* kinds = Event::descriptor()->FindOneofByName("kind");
  for (int kind : request.kinds()) {
    bool known = false;
    for (int i = 0; i < kinds->field_count(); ++i)
      known = known || kinds->field(i)->number() == kind;
    if (!known) return absl::InvalidArgumentError(absl::StrCat("Unknown event kind: ", kind));
    filter.kinds_.insert(kind);
  }
  return filter;
}

bool EventFilter::WantsAccount(absl::string_view account) const {
  return accounts_.empty() || accounts_.find(account) != accounts_.end();
}

bool EventFilter::Matches(const Event& event) const {
  // EventKind values are Event's oneof field numbers, i.e. KindCase values.
  if (!kinds_.empty() && kinds_.count(static_cast<int>(event.kind_case())) == 0) return false;
  return WantsAccount(AccountOfEvent(event));
}

ResumePlan PlanResume(const backend::ResumePoint& point) {
  using Outcome = backend::ResumePoint::Outcome;
  ResumePlan plan;
  if (point.outcome == Outcome::kFresh) return plan;
  plan.replay = true;
  plan.replay_after = point.replay_after;
  plan.gap = point.gap();
  switch (point.outcome) {
    case Outcome::kOtherInstance:
      plan.gap_message =
          absl::StrCat("Events lost: epoch ", point.client_instance, " is not this gateway's (",
                       point.instance, "); replaying this gateway's history; take a new snapshot");
      break;
    case Outcome::kAhead:
      plan.gap_message = absl::StrCat("Events lost: after_seq ", point.after_seq,
                                      " is ahead of this gateway's newest seq ", point.last_seq,
                                      " (the gateway restarted?); replaying this gateway's "
                                      "history; take a new snapshot");
      break;
    case Outcome::kEvicted:
      plan.gap_message =
          point.events.empty()
              ? absl::StrCat("Events lost: the history no longer holds the events after seq ",
                             point.after_seq, "; take a new snapshot")
              : absl::StrCat("Events lost: the history no longer holds every event after seq ",
                             point.after_seq, " (the replay starts at seq ",
                             point.events.front()->seq(), "); take a new snapshot");
      break;
    default:
      break;
  }
  return plan;
}

std::vector<backend::EventPtr> InitialEvents(const ResumePlan& plan, uint64_t from,
                                             const std::vector<backend::EventPtr>& history,
                                             const std::vector<backend::EventPtr>& live,
                                             uint64_t snapshot_seq, bool with_snapshot,
                                             const std::vector<telestra::v1::Status>& snapshot,
                                             const EventFilter& filter) {
  std::vector<backend::EventPtr> out;
  if (plan.gap) {
    Event notice;
    StampNow(notice);
    notice.mutable_fail()->set_error(plan.gap_message);
    notice.mutable_fail()->set_kind(telestra::v1::FAIL_KIND_RESOURCE_EXHAUSTED);
    out.push_back(std::make_shared<const Event>(std::move(notice)));
  }
  // History and live overlap (the listener was attached before the history
  // was read): merge by seq.
  std::map<uint64_t, backend::EventPtr> merged;
  for (const auto* events : {&history, &live}) {
    for (const backend::EventPtr& event : *events) {
      if (event->seq() > from) merged.emplace(event->seq(), event);
    }
  }
  auto append_snapshot = [&] {
    if (!with_snapshot) return;
    Event base;
    base.set_seq(snapshot_seq);
    StampNow(base);
    for (const telestra::v1::Status& status : snapshot) {
      if (!filter.WantsAccount(status.account())) continue;
      auto event = std::make_shared<Event>(base);
      *event->mutable_status() = status;
      out.push_back(std::move(event));
    }
  };
  bool snapshot_sent = false;
  for (const auto& [seq, event] : merged) {
    if (!snapshot_sent && seq > snapshot_seq) {
      append_snapshot();
      snapshot_sent = true;
    }
    if (filter.Matches(*event)) out.push_back(event);
  }
  if (!snapshot_sent) append_snapshot();
  return out;
}

}  // namespace telestra::gateway
