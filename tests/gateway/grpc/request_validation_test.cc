#include "gateway/grpc/request_validation.h"

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
