#pragma once

#include "absl/status/status.h"
#include "proto/telestra.pb.h"

namespace telestra::gateway {

// Checks what the proto model cannot express: required fields (proto3 has no
// presence for strings, so an empty string counts as missing) and ranges.
// Texts are the native port's (docs/native-api.md): "Missing field: account",
// "Missing field: num", "Field call_id is out of range". Everything about
// accounts, calls and states is the backend's to check.
// Thread: any.
absl::Status ValidateLogin(const telestra::v1::LoginCommand& command);
absl::Status ValidateLogout(const telestra::v1::LogoutCommand& command);
absl::Status ValidateMakeCall(const telestra::v1::MakeCallCommand& command);
absl::Status ValidateAnswerCall(const telestra::v1::AnswerCallCommand& command);
absl::Status ValidateSwitchCall(const telestra::v1::SwitchCallCommand& command);
absl::Status ValidateHangupCall(const telestra::v1::HangupCallCommand& command);
// The fields' presence; the digits and duration are the backend's to check.
absl::Status ValidateSendDtmf(const telestra::v1::SendDtmfCommand& command);
// The call ids' range; num versus to_call_id is the backend's to check.
absl::Status ValidateTransferCall(const telestra::v1::TransferCallCommand& command);
absl::Status ValidateGetStatus(const telestra::v1::GetStatusCommand& command);

// The check of whichever command `command` holds ("Missing field: cmd" when
// it holds none).
absl::Status ValidateCommand(const telestra::v1::Command& command);

}  // namespace telestra::gateway
