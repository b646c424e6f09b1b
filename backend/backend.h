#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/call_audio_tap.h"
#include "proto/telestra.pb.h"

namespace telestra::backend {

// The call-control operations every front end offers, typed.
// Errors are absl::Status with the stable texts of docs/native-api.md
// (NotFound "Unknown account: X", InvalidArgument, FailedPrecondition ...).
// Events that arise later (registration results, call progress) are
// broadcast through the EventHub.
// Thread: any.
class Backend {
 public:
  virtual ~Backend() = default;

  virtual absl::Status Login(const telestra::v1::LoginCommand& login) = 0;
  virtual absl::Status Logout(absl::string_view account) = 0;

  // `on_call_id` runs with the new call's id before anything else of the
  // call can happen, so the caller can reply call-return first.
  virtual absl::StatusOr<int64_t> MakeCall(
      absl::string_view account, absl::string_view number,
      absl::FunctionRef<void(int64_t)> on_call_id) = 0;
  virtual absl::Status AnswerCall(absl::string_view account, int64_t call_id) = 0;
  virtual absl::Status SwitchCall(absl::string_view account, int64_t call_id) = 0;
  virtual absl::Status HangupCall(absl::string_view account, int64_t call_id) = 0;

  // What becomes of a SendDtmf once it was queued: OK with the digits sent
  // (normalized: a-d as A-D), or Unavailable "DTMF to call N failed: ...".
  // Runs once, on the SIP thread, without the backend's lock; never if the
  // call ends first.
  using DtmfDone = std::function<void(const absl::Status& result, const std::string& digits)>;

  // Queues `digits` (1..64 of 0-9 * # A-D, a-d taken as A-D), each lasting
  // `duration_ms` (0: 100; else 40..2000), on an established call.
  // `on_done` may be empty.
  virtual absl::Status SendDtmf(absl::string_view account, int64_t call_id,
                                absl::string_view digits, int duration_ms, DtmfDone on_done) = 0;

  // Transfers an established call: blind to `number` (checked as
  // make-call's num) or, with `to_call_id`, attended to the far end of the
  // account's other established call. InvalidArgument when both or neither
  // are given.
  virtual absl::Status TransferCall(absl::string_view account, int64_t call_id,
                                    absl::string_view number,
                                    std::optional<int64_t> to_call_id) = 0;

  // Attaches an application's audio stream to a call of `account`, in any
  // state (docs/audio.md): NotFound for an unknown account or call (or a
  // call of another account), ResourceExhausted "Too many audio streams on
  // call N (max-streams-per-call is M)". The rest reaches the tap later,
  // through its wakeup: attached (with the codec), or stopped ("Call
  // ended" when the call ended meanwhile or ends later).
  virtual absl::Status OpenCallAudio(absl::string_view account, int64_t call_id,
                                     std::shared_ptr<CallAudioTap> tap) = 0;

  virtual absl::StatusOr<telestra::v1::Status> GetStatus(
      absl::string_view account) const = 0;
  // Every account of the plan, in plan order.
  virtual std::vector<telestra::v1::Status> ListAccounts() const = 0;
};

}  // namespace telestra::backend
