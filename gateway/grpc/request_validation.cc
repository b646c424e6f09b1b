#include "gateway/grpc/request_validation.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace telestra::gateway {
namespace {

// The native port's limit: call ids travel as JSON numbers there.
constexpr int64_t kMaxCallId = int64_t{1} << 53;

absl::Status Require(const std::string& value, absl::string_view name) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat("Missing field: ", name));
  return absl::OkStatus();
}

absl::Status RequireCall(const std::string& account, int64_t call_id) {
  if (absl::Status status = Require(account, "account"); !status.ok()) return status;
  if (call_id < 0 || call_id > kMaxCallId) {
    return absl::InvalidArgumentError("Field call_id is out of range");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateLogin(const telestra::v1::LoginCommand& command) {
  // Empty user/server are the backend's to reject (same text everywhere).
  return Require(command.account(), "account");
}

absl::Status ValidateLogout(const telestra::v1::LogoutCommand& command) {
  return Require(command.account(), "account");
}

absl::Status ValidateMakeCall(const telestra::v1::MakeCallCommand& command) {
  if (absl::Status status = Require(command.account(), "account"); !status.ok()) return status;
  return Require(command.num(), "num");
}

absl::Status ValidateAnswerCall(const telestra::v1::AnswerCallCommand& command) {
  return RequireCall(command.account(), command.call_id());
}

absl::Status ValidateSwitchCall(const telestra::v1::SwitchCallCommand& command) {
  return RequireCall(command.account(), command.call_id());
}

absl::Status ValidateHangupCall(const telestra::v1::HangupCallCommand& command) {
  return RequireCall(command.account(), command.call_id());
}

absl::Status ValidateSendDtmf(const telestra::v1::SendDtmfCommand& command) {
  if (absl::Status status = RequireCall(command.account(), command.call_id()); !status.ok()) {
    return status;
  }
  return Require(command.digits(), "digits");
}

absl::Status ValidateTransferCall(const telestra::v1::TransferCallCommand& command) {
  if (absl::Status status = RequireCall(command.account(), command.call_id()); !status.ok()) {
    return status;
  }
  if (command.has_to_call_id() && (command.to_call_id() < 0 || command.to_call_id() > kMaxCallId)) {
    return absl::InvalidArgumentError("Field to_call_id is out of range");
  }
  return absl::OkStatus();
}

absl::Status ValidateGetStatus(const telestra::v1::GetStatusCommand& command) {
  return Require(command.account(), "account");
}

absl::Status ValidateCommand(const telestra::v1::Command& command) {
  using telestra::v1::Command;
  switch (command.kind_case()) {
    case Command::kLogin:
      return ValidateLogin(command.login());
    case Command::kLogout:
      return ValidateLogout(command.logout());
    case Command::kMakeCall:
      return ValidateMakeCall(command.make_call());
    case Command::kAnswerCall:
      return ValidateAnswerCall(command.answer_call());
    case Command::kSwitchCall:
      return ValidateSwitchCall(command.switch_call());
    case Command::kHangupCall:
      return ValidateHangupCall(command.hangup_call());
    case Command::kGetStatus:
      return ValidateGetStatus(command.get_status());
    case Command::kSendDtmf:
      return ValidateSendDtmf(command.send_dtmf());
    case Command::kTransferCall:
      return ValidateTransferCall(command.transfer_call());
    case Command::kSubscribe:
    case Command::kListAccounts:
      return absl::OkStatus();
    case Command::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("Missing field: cmd");
}

}  // namespace telestra::gateway
