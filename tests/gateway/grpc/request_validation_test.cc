#include "gateway/grpc/request_validation.h"

#include <string>

#include "gateway/grpc/status_mapping.h"
#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

TEST(ToGrpcStatusTest, KeepsCodeAndMessage) {
  grpc::Status status = ToGrpcStatus(absl::NotFoundError("Unknown account: x"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "Unknown account: x");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_EQ(ToGrpcStatus(absl::FailedPreconditionError("x")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(absl::UnimplementedError("x")).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(ToGrpcStatus(absl::UnauthenticatedError("x")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("x")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(ToGrpcStatusTest, LongMessagesAreCutAtACharacterBoundary) {
  const std::string fits = "Unknown account: " + std::string(kMaxStatusMessageBytes - 17, 'a');
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError(fits)).error_message(), fits);

  // 60 KiB of two-byte characters: the cut must not split one.
  std::string name;
  for (int i = 0; i < 30 * 1024; ++i) name += "\xc3\xb6";
  const std::string long_message = "Unknown account: " + name;
  grpc::Status status = ToGrpcStatus(absl::NotFoundError(long_message));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  const std::string& message = status.error_message();
  EXPECT_LE(message.size(), kMaxStatusMessageBytes);
  const std::string suffix = "... (" + std::to_string(long_message.size()) + " bytes)";
  ASSERT_GT(message.size(), suffix.size());
  EXPECT_EQ(message.substr(message.size() - suffix.size()), suffix);
  const std::string kept = message.substr(0, message.size() - suffix.size());
  EXPECT_EQ(long_message.compare(0, kept.size(), kept), 0);
  EXPECT_EQ((kept.size() - 17) % 2, 0u) << "a character was split";
}

TEST(RequestValidationTest, EmptyAccountIsAMissingField) {
  telestra::v1::GetStatusCommand get_status;
  absl::Status status = ValidateGetStatus(get_status);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "Missing field: account");
  telestra::v1::LogoutCommand logout;
  EXPECT_EQ(ValidateLogout(logout).message(), "Missing field: account");
  telestra::v1::LoginCommand login;
  EXPECT_EQ(ValidateLogin(login).message(), "Missing field: account");
  login.set_account("account-1");
  EXPECT_TRUE(ValidateLogin(login).ok());  // user/server: the backend's checks
}

TEST(RequestValidationTest, MakeCallNeedsANumber) {
  telestra::v1::MakeCallCommand make_call;
  make_call.set_account("account-1");
  EXPECT_EQ(ValidateMakeCall(make_call).message(), "Missing field: num");
  make_call.set_num("3002");
  EXPECT_TRUE(ValidateMakeCall(make_call).ok());
}

TEST(RequestValidationTest, CallIdMustBeInTheNativeRange) {
  telestra::v1::HangupCallCommand hangup;
  hangup.set_account("account-1");
  hangup.set_call_id(-1);
  EXPECT_EQ(ValidateHangupCall(hangup).message(), "Field call_id is out of range");
  hangup.set_call_id((int64_t{1} << 53) + 1);
  EXPECT_EQ(ValidateHangupCall(hangup).code(), absl::StatusCode::kInvalidArgument);
  hangup.set_call_id(42);
  EXPECT_TRUE(ValidateHangupCall(hangup).ok());
  telestra::v1::AnswerCallCommand answer;
  answer.set_call_id(1);
  EXPECT_EQ(ValidateAnswerCall(answer).message(), "Missing field: account");
}

TEST(RequestValidationTest, SendDtmfNeedsACallAndDigitsAndLeavesTheirSyntaxToTheBackend) {
  telestra::v1::SendDtmfCommand send;
  send.set_call_id(1);
  send.set_digits("1");
  EXPECT_EQ(ValidateSendDtmf(send).message(), "Missing field: account");
  send.set_account("account-1");
  send.set_call_id(-1);
  EXPECT_EQ(ValidateSendDtmf(send).message(), "Field call_id is out of range");
  send.set_call_id(1);
  send.clear_digits();
  EXPECT_EQ(ValidateSendDtmf(send).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSendDtmf(send).message(), "Missing field: digits");
  // A bad digit or duration is the backend's to refuse, with the text every
  // front end gives (grpc_server_test: GrpcOverGatewayBackendTest).
  send.set_digits("E");
  send.set_duration_ms(5000);
  EXPECT_TRUE(ValidateSendDtmf(send).ok());
  telestra::v1::Command command;
  *command.mutable_send_dtmf() = send;
  command.mutable_send_dtmf()->clear_digits();
  EXPECT_EQ(ValidateCommand(command).message(), "Missing field: digits");
}

TEST(RequestValidationTest, TransferCallChecksItsCallIdsAndLeavesNumToTheBackend) {
  telestra::v1::TransferCallCommand transfer;
  transfer.set_call_id(1);
  transfer.set_num("3003");
  EXPECT_EQ(ValidateTransferCall(transfer).message(), "Missing field: account");
  transfer.set_account("account-1");
  EXPECT_TRUE(ValidateTransferCall(transfer).ok());
  transfer.set_call_id((int64_t{1} << 53) + 1);
  EXPECT_EQ(ValidateTransferCall(transfer).message(), "Field call_id is out of range");
  transfer.set_call_id(1);
  transfer.set_to_call_id(-1);
  EXPECT_EQ(ValidateTransferCall(transfer).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateTransferCall(transfer).message(), "Field to_call_id is out of range");
  transfer.set_to_call_id((int64_t{1} << 53) + 1);
  EXPECT_EQ(ValidateTransferCall(transfer).message(), "Field to_call_id is out of range");
  // to_call_id 0 is a call id (proto3 optional: present), not "absent".
  transfer.set_to_call_id(0);
  EXPECT_TRUE(ValidateTransferCall(transfer).ok());
  // Both or neither of num and to_call_id: the backend's "Give either num
  // or to_call_id, not both" / "Missing field: num", for every front end.
  transfer.clear_num();
  transfer.clear_to_call_id();
  EXPECT_TRUE(ValidateTransferCall(transfer).ok());
  telestra::v1::Command command;
  *command.mutable_transfer_call() = transfer;
  command.mutable_transfer_call()->set_to_call_id(-5);
  EXPECT_EQ(ValidateCommand(command).message(), "Field to_call_id is out of range");
}

TEST(RequestValidationTest, CommandWithoutKindIsMissingCmd) {
  telestra::v1::Command command;
  EXPECT_EQ(ValidateCommand(command).message(), "Missing field: cmd");
  command.mutable_subscribe()->set_extended(false);
  EXPECT_TRUE(ValidateCommand(command).ok());
  command.mutable_switch_call()->set_call_id(3);
  EXPECT_EQ(ValidateCommand(command).message(), "Missing field: account");
}

}  // namespace
}  // namespace telestra::gateway
