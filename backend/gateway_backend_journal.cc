#include "backend/gateway_backend.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

// The backend's part of the journal (docs/restart.md): each call as the API
// reports it, noted while it lasts; restored with its old id after a
// restart.

namespace telestra::backend {
namespace {

int64_t UnixMillis(absl::Time time) {
  return time == absl::InfinitePast() ? 0 : absl::ToUnixMillis(time);
}

absl::Time FromUnixMillis(int64_t millis) {
  return millis == 0 ? absl::InfinitePast() : absl::FromUnixMillis(millis);
}

// What the event history says of the calls: those with an event but no
// call-ended (by id: their account), and those that ended.
struct CallsSeen {
  std::map<int64_t, std::string> open;
  std::set<int64_t> ended;
};

CallsSeen CallsIn(const std::vector<telestra::v1::Event>& history) {
  CallsSeen seen;
  // The call id and account of each event about a call (any event whose
  // payload has both fields), found through the model's descriptors.
  for (const telestra::v1::Event& event : history) {
    const google::protobuf::Reflection* reflection = event.GetReflection();
    std::vector<const google::protobuf::FieldDescriptor*> fields;
    reflection->ListFields(event, &fields);
    for (const google::protobuf::FieldDescriptor* field : fields) {
      if (field->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE ||
          field->containing_oneof() == nullptr) {
        continue;
      }
      const google::protobuf::Message& payload = reflection->GetMessage(event, field);
      const google::protobuf::Descriptor* type = payload.GetDescriptor();
      const google::protobuf::FieldDescriptor* id = type->FindFieldByName("call_id");
      const google::protobuf::FieldDescriptor* account = type->FindFieldByName("account");
      if (id == nullptr || account == nullptr ||
          id->type() != google::protobuf::FieldDescriptor::TYPE_INT64) {
        continue;
      }
      const int64_t call_id = payload.GetReflection()->GetInt64(payload, id);
      if (event.has_call_ended()) {
        seen.open.erase(call_id);
        seen.ended.insert(call_id);
      } else if (seen.ended.count(call_id) == 0) {
        seen.open[call_id] = payload.GetReflection()->GetString(payload, account);
      }
    }
  }
  return seen;
}

}  // namespace

void GatewayBackend::NoteCall(const CallRecord& call) {
  if (journal_ == nullptr) return;
  telestra::state::JournalCallInfo info;
  info.set_account(call.account);
  info.set_direction(call.direction);
  info.set_state(call.state);
  info.set_peer(call.peer);
  info.set_peer_name(call.peer_name);
  info.set_start_unix_ms(UnixMillis(call.start_time));
  info.set_answer_unix_ms(UnixMillis(call.answer_time));
  journal_->PutInfo(call.id, info);
}

std::vector<RestoredCall> GatewayBackend::RestoreCalls(
    const std::vector<telestra::state::JournalCall>& calls, int64_t next_call_id,
    const std::vector<telestra::v1::Event>& history) {
  const std::set<int64_t> ended = CallsIn(history).ended;
  std::vector<RestoredCall> out;
  absl::MutexLock lock(&mu_);
  next_call_id_ = std::max(next_call_id_, next_call_id);
  for (const telestra::state::JournalCall& saved : calls) {
    const telestra::state::JournalCallInfo& info = saved.info();
    const telestra::state::JournalDialog& dialog = saved.dialog();
    next_call_id_ = std::max(next_call_id_, saved.call_id() + 1);
    if (ended.count(saved.call_id()) > 0) {
      // Its call-ended went out just before the crash, before the journal
      // dropped it: over already.
      if (journal_ != nullptr) journal_->Drop(saved.call_id());
      continue;
    }
    if (dialog.phase() == telestra::state::JournalDialog::PHASE_UNSPECIFIED) {
      // Noted by the backend only (the stack never got to it): nothing on
      // the wire to restore or end.
      if (journal_ != nullptr) journal_->Drop(saved.call_id());
      continue;
    }
    CallRecord& call = calls_[saved.call_id()];
    call.id = saved.call_id();
    call.account = info.account();
    call.direction = static_cast<telestra::v1::CallDirection>(info.direction());
    call.peer = info.peer();
    call.peer_name = info.peer_name();
    call.start_time = FromUnixMillis(info.start_unix_ms());
    if (call.start_time == absl::InfinitePast()) call.start_time = absl::Now();
    call.answer_time = FromUnixMillis(info.answer_unix_ms());
    call.sip.sip_call_id = dialog.dialog_call_id();
    call.sip.remote_uri = dialog.remote_aor();
    if (dialog.phase() == telestra::state::JournalDialog::CONFIRMED) {
      call.local_hold = dialog.local_hold();
      call.hold_wanted = dialog.local_hold();
      call.remote_hold = dialog.remote_hold();
      call.state = telestra::v1::CALL_STATE_ACTIVE;  // established; the hold flags refine it
      UpdateHoldState(call, call.local_hold);
      if (call.answer_time == absl::InfinitePast()) call.answer_time = call.start_time;
    } else {
      call.state = static_cast<telestra::v1::CallState>(info.state());
    }
    RestoredCall restored;
    restored.call_id = call.id;
    restored.dialog = dialog;
    auto account = accounts_.find(call.account);
    if (account != accounts_.end()) restored.account = account->second.config;
    out.push_back(std::move(restored));
  }
  spdlog::info("journal: {} calls of the last run, new call ids from {}", out.size(),
               next_call_id_);
  return out;
}

int GatewayBackend::EndCallsLeftOpen(const std::vector<telestra::v1::Event>& history,
                                     const std::vector<telestra::state::JournalCall>& calls) {
  std::map<int64_t, std::string> open = CallsIn(history).open;
  for (const telestra::state::JournalCall& call : calls) open.erase(call.call_id());
  EventHub::ReplyScope deliver_after_unlock(hub_);
  absl::MutexLock lock(&mu_);
  for (const auto& [call_id, account] : open) {
    next_call_id_ = std::max(next_call_id_, call_id + 1);
    telestra::v1::Event event;
    auto* ended = event.mutable_call_ended();
    ended->set_account(account);
    ended->set_call_id(call_id);
    ended->set_code(0);
    ended->set_reason("Gateway restarted");
    hub_->Broadcast(std::move(event));
    spdlog::warn("call {}: begun just before the restart, not in the journal's calls; ended",
                 call_id);
  }
  return static_cast<int>(open.size());
}

}  // namespace telestra::backend
