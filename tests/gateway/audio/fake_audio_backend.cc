#include "tests/gateway/audio/fake_audio_backend.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/media/audio_format.h"

namespace telestra::gateway::testing {

using backend::CallAudioTap;

void FakeAudioBackend::AddCall(const std::string& account, int64_t call_id) {
  absl::MutexLock lock(&mu_);
  calls_[call_id] = account;
}

std::vector<std::shared_ptr<CallAudioTap>> FakeAudioBackend::Taps(int64_t call_id) const {
  absl::MutexLock lock(&mu_);
  auto it = taps_.find(call_id);
  return it == taps_.end() ? std::vector<std::shared_ptr<CallAudioTap>>{} : it->second;
}

std::shared_ptr<CallAudioTap> FakeAudioBackend::WaitForTap(int64_t call_id,
                                                           absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto has_tap = [&] {
    mu_.AssertHeld();
    auto it = taps_.find(call_id);
    return it != taps_.end() && !it->second.empty();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&has_tap), timeout)) return nullptr;
  return taps_.at(call_id).back();
}

void FakeAudioBackend::Attach(CallAudioTap& tap, const std::string& codec) {
  if (tap.OnAttached(codec)) tap.RunWakeup();
}

void FakeAudioBackend::Hear(CallAudioTap& tap, int16_t level) {
  std::vector<int16_t> frame(backend::kFrameSamples, level);
  HearFrame(tap, frame.data());
}

void FakeAudioBackend::HearFrame(CallAudioTap& tap, const int16_t* frame) {
  if (tap.OnHeard(frame)) tap.RunWakeup();
}

bool FakeAudioBackend::TakeSpoken(CallAudioTap& tap, std::vector<int16_t>* frame) {
  frame->resize(backend::kFrameSamples);
  bool wake = false;
  bool taken = tap.TakeSpoken(frame->data(), &wake);
  if (wake) tap.RunWakeup();
  return taken;
}

void FakeAudioBackend::Dtmf(CallAudioTap& tap, char digit, int duration_ms) {
  if (tap.OnDtmf(digit, duration_ms)) tap.RunWakeup();
}

void FakeAudioBackend::Stop(CallAudioTap& tap, const std::string& reason) {
  if (tap.OnStopped(reason)) tap.RunWakeup();
}

absl::Status FakeAudioBackend::OpenCallAudio(absl::string_view account, int64_t call_id,
                                             std::shared_ptr<CallAudioTap> tap) {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second != account) {
    return absl::NotFoundError(
        absl::StrCat("Unknown call id ", call_id, " for account: ", account));
  }
  std::vector<std::shared_ptr<CallAudioTap>>& taps = taps_[call_id];
  int open = 0;
  for (const auto& t : taps) open += t->stopped() ? 0 : 1;
  if (open >= max_streams_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "Too many audio streams on call ", call_id, " (max-streams-per-call is ", max_streams_,
        ")"));
  }
  taps.push_back(std::move(tap));
  return absl::OkStatus();
}

absl::Status FakeAudioBackend::Login(const telestra::v1::LoginCommand&) {
  return absl::UnimplementedError("fake");
}
absl::Status FakeAudioBackend::Logout(absl::string_view) {
  return absl::UnimplementedError("fake");
}
absl::StatusOr<int64_t> FakeAudioBackend::MakeCall(absl::string_view, absl::string_view,
                                                   absl::FunctionRef<void(int64_t)>) {
  return absl::UnimplementedError("fake");
}
absl::Status FakeAudioBackend::AnswerCall(absl::string_view, int64_t) {
  return absl::UnimplementedError("fake");
}
absl::Status FakeAudioBackend::SwitchCall(absl::string_view, int64_t) {
  return absl::UnimplementedError("fake");
}
absl::Status FakeAudioBackend::HangupCall(absl::string_view, int64_t) {
  return absl::UnimplementedError("fake");
}
absl::Status FakeAudioBackend::SendDtmf(absl::string_view, int64_t, absl::string_view, int,
                                        DtmfDone) {
  return absl::UnimplementedError("fake");
}
absl::Status FakeAudioBackend::TransferCall(absl::string_view, int64_t, absl::string_view,
                                            std::optional<int64_t>) {
  return absl::UnimplementedError("fake");
}
absl::StatusOr<telestra::v1::Status> FakeAudioBackend::GetStatus(absl::string_view account) const {
  telestra::v1::Status status;
  status.set_account(std::string(account));
  return status;
}
std::vector<telestra::v1::Status> FakeAudioBackend::ListAccounts() const { return {}; }

}  // namespace telestra::gateway::testing
