// A Backend for the call audio tests of the front ends: OpenCallAudio keeps
// the taps of the calls it knows, and the test plays the media thread on
// them (the rest of the Backend is Unimplemented).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/backend.h"
#include "backend/call_audio_tap.h"

namespace telestra::gateway::testing {

// Thread: any.
class FakeAudioBackend : public backend::Backend {
 public:
  // Calls OpenCallAudio accepts: `call_id` of `account`; others NotFound,
  // and ResourceExhausted beyond `max_streams` per call.
  void AddCall(const std::string& account, int64_t call_id);
  void set_max_streams(int max) { max_streams_ = max; }

  // The taps opened on `call_id` so far, oldest first.
  std::vector<std::shared_ptr<backend::CallAudioTap>> Taps(int64_t call_id) const;
  // The newest tap of `call_id`, waiting up to `timeout` for one; null if none.
  std::shared_ptr<backend::CallAudioTap> WaitForTap(int64_t call_id,
                                                    absl::Duration timeout = absl::Seconds(5)) const;

  // As the media thread: attach (with `codec`), a heard frame of `level`,
  // the next spoken frame (false: none), the call's end. Each runs the
  // tap's wakeup when due.
  static void Attach(backend::CallAudioTap& tap, const std::string& codec = "PCMU");
  static void Hear(backend::CallAudioTap& tap, int16_t level);
  static void HearFrame(backend::CallAudioTap& tap, const int16_t* frame);
  static bool TakeSpoken(backend::CallAudioTap& tap, std::vector<int16_t>* frame);
  static void Dtmf(backend::CallAudioTap& tap, char digit, int duration_ms);
  static void Stop(backend::CallAudioTap& tap, const std::string& reason = "Call ended");

  // backend::Backend.
  absl::Status OpenCallAudio(absl::string_view account, int64_t call_id,
                             std::shared_ptr<backend::CallAudioTap> tap) override;
  absl::Status Login(const telestra::v1::LoginCommand&) override;
  absl::Status Logout(absl::string_view) override;
  absl::StatusOr<int64_t> MakeCall(absl::string_view, absl::string_view,
                                   absl::FunctionRef<void(int64_t)>) override;
  absl::Status AnswerCall(absl::string_view, int64_t) override;
  absl::Status SwitchCall(absl::string_view, int64_t) override;
  absl::Status HangupCall(absl::string_view, int64_t) override;
  absl::Status SendDtmf(absl::string_view, int64_t, absl::string_view, int, DtmfDone) override;
  absl::Status TransferCall(absl::string_view, int64_t, absl::string_view,
                            std::optional<int64_t>) override;
  absl::StatusOr<telestra::v1::Status> GetStatus(absl::string_view account) const override;
  std::vector<telestra::v1::Status> ListAccounts() const override;

 private:
  mutable absl::Mutex mu_;  // Lock order: a leaf.
  std::map<int64_t, std::string> calls_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::vector<std::shared_ptr<backend::CallAudioTap>>> taps_
      ABSL_GUARDED_BY(mu_);
  int max_streams_ = 4;
};

}  // namespace telestra::gateway::testing
