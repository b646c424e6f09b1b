// The few messages that exist only on the WebSocket (docs/websocket-api.md):
// the opening snapshot, the resume acknowledgement and the gap report.
// Everything else on the socket is a JsonCodec event. Accounts inside the
// snapshot are rendered by JsonCodec too, so there is one JSON model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "backend/event_hub.h"
#include "proto/telestra.pb.h"

namespace telestra::gateway {

// {"event":"snapshot","instance":"…","seq":S,"accounts":[<status event>,…]}
// Each account is the `status` event JsonCodec renders (extended, with
// "seq":S). The state includes every event up to `seq`.
std::string SnapshotMessage(absl::string_view instance, uint64_t seq,
                            const std::vector<telestra::v1::Status>& accounts);

// {"event":"resumed","instance":"…","after_seq":N,"replayed":K}
std::string ResumedMessage(absl::string_view instance, uint64_t after_seq, size_t replayed);

// {"event":"gap","after_seq":N,"reason":"…"}; a snapshot follows.
std::string GapMessage(uint64_t after_seq, absl::string_view reason);

// How a new WebSocket session starts, from the hub's decision
// (EventHub::PlanResume, shared with the native port and gRPC) on the
// client's resume request (`/ws?after_seq=N&instance=I`).
struct WebResumePlan {
  bool resume = false;     // replay; otherwise (gap or fresh) snapshot
  std::string gap_reason;  // non-empty: send GapMessage before the snapshot
};

// kFresh: snapshot, no gap; kComplete: resume; every gap outcome: the gap's
// reason, then a snapshot.
WebResumePlan PlanWebResume(const backend::ResumePoint& point);

}  // namespace telestra::gateway
