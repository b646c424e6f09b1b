#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/event_hub.h"
#include "proto/telestra.pb.h"
#include "proto/telestra_service.pb.h"

namespace telestra::gateway {

// The account an event is about ("" for none).
const std::string& AccountOfEvent(const telestra::v1::Event& event);

// True for the events a native client only gets after opting in (the same
// set as JsonCodec::IsExtendedOnly but for DTMF): call-ringing,
// call-progress, call-held, call-resumed, account-status,
// transfer-progress, call-started, call-quality. A gRPC Session sends them
// unless it opts out.
bool IsExtendedOnlyEvent(const telestra::v1::Event& event);

// Which broadcasts one Subscribe stream wants (SubscribeRequest.accounts
// and .kinds; empty means all).
// Thread: any (immutable after Create).
class EventFilter {
 public:
  // INVALID_ARGUMENT for an unknown or unspecified kind, NOT_FOUND
  // "Unknown account: x" for an account not in `known_accounts`.
  static absl::StatusOr<EventFilter> Create(const telestra::v1::SubscribeRequest& request,
                                            const std::vector<std::string>& known_accounts);

  // Both filters: the event's account and kind.
  bool Matches(const telestra::v1::Event& event) const;
  // The account filter only (snapshots).
  bool WantsAccount(absl::string_view account) const;

 private:
  std::set<std::string, std::less<>> accounts_;  // empty: all
  std::set<int> kinds_;                          // Event::KindCase values; empty: all
};

// How a Subscribe stream starts (SubscribeRequest.after_seq / .epoch),
// decided by the hub (EventHub::PlanResume: the same decision as the
// native port's and the WebSocket's), before anything is sent.
struct ResumePlan {
  // Replay the history after this seq (only when `replay`).
  bool replay = false;
  uint64_t replay_after = 0;
  // Events may be missing between after_seq and what the replay can give:
  // `gap_message` (starting "Events lost") says why.
  bool gap = false;
  std::string gap_message;
};

// The stream's plan for the hub's decision. A resume whose epoch is not the
// gateway's instance, or whose after_seq is ahead of the newest seq, is of
// another numbering: it replays the whole history, as a gap; one whose
// events were evicted replays what is left, as a gap.
ResumePlan PlanResume(const backend::ResumePoint& point);

// The first events of a Subscribe stream, in the order they are sent:
//   1. the gap notice (if plan.gap): a Fail event with seq 0,
//   2. the events with seq in (from, snapshot_seq] (history and live merged,
//      each seq once, oldest first),
//   3. the snapshot: one Status per account, each with seq = snapshot_seq,
//   4. the events after snapshot_seq.
// `from` is after_seq when resuming, else snapshot_seq. Events and snapshot
// entries not wanted by `filter` are left out.
std::vector<backend::EventPtr> InitialEvents(const ResumePlan& plan, uint64_t from,
                                             const std::vector<backend::EventPtr>& history,
                                             const std::vector<backend::EventPtr>& live,
                                             uint64_t snapshot_seq, bool with_snapshot,
                                             const std::vector<telestra::v1::Status>& snapshot,
                                             const EventFilter& filter);

}  // namespace telestra::gateway
