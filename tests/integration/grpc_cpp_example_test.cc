// The C++ example of docs/grpc-api.md, compiled and run against the real
// gateway binary so that the documentation stays true. RunExample() is the
// code the document shows (between the EXAMPLE markers).
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/grpc_gateway.h"

namespace telestra::testing {
namespace {

// EXAMPLE BEGIN
// #include <grpcpp/grpcpp.h>
// #include "proto/telestra_service.grpc.pb.h"   // //proto:telestra_service_cc_grpc
int RunExample(const std::string& target, const std::string& token, std::ostream& out) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = telestra::v1::Telestra::NewStub(channel);
  auto authorize = [&](grpc::ClientContext& context) {
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  };

  // Unary: one account's status.
  grpc::ClientContext status_context;
  authorize(status_context);
  telestra::v1::GetStatusCommand get_status;
  get_status.set_account("account-1");
  telestra::v1::Status status;
  grpc::Status result = stub->GetStatus(&status_context, get_status, &status);
  if (!result.ok()) {
    out << "GetStatus failed: " << result.error_code() << " " << result.error_message() << "\n";
    return 1;
  }
  out << "account-1 status " << status.account_status() << "\n";

  // Errors are gRPC status codes: account-1 is not registered here.
  grpc::ClientContext call_context;
  authorize(call_context);
  telestra::v1::MakeCallCommand make_call;
  make_call.set_account("account-1");
  make_call.set_num("3002");
  telestra::v1::CallReturn call;
  result = stub->MakeCall(&call_context, make_call, &call);
  out << "MakeCall: code " << result.error_code() << " (" << result.error_message() << ")\n";

  // Stream: a snapshot of account-1, then its events (here: until a logout).
  grpc::ClientContext stream_context;
  authorize(stream_context);
  telestra::v1::SubscribeRequest subscribe;
  subscribe.set_snapshot(true);
  subscribe.add_accounts("account-1");
  std::unique_ptr<grpc::ClientReader<telestra::v1::Event>> events =
      stub->Subscribe(&stream_context, subscribe);
  telestra::v1::Event event;
  while (events->Read(&event)) {
    out << "event " << event.seq() << ": " << event.ShortDebugString() << "\n";
    if (event.has_status()) {  // the snapshot is in: cause an event
      grpc::ClientContext logout_context;
      authorize(logout_context);
      telestra::v1::LogoutCommand logout;
      logout.set_account("account-1");
      telestra::v1::LogoutResponse done;
      stub->Logout(&logout_context, logout, &done);
    }
    if (event.has_account_status()) stream_context.TryCancel();  // enough
  }
  grpc::Status end = events->Finish();  // CANCELLED: we cancelled it
  out << "stream ended: code " << end.error_code() << "\n";
  return 0;
}
// EXAMPLE END

TEST(GrpcCppExampleTest, DocumentedExampleRunsAgainstTheGateway) {
  GatewayOptions options = OneIdleAccount();
  options.grpc_settings = {"token = example-token"};
  auto gateway = GrpcGateway::Start(options);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  // The account must be "logged in" for logout to change its status.
  {
    grpc::ClientContext context;
    Prepare(context, "example-token");
    telestra::v1::LoginCommand login;
    login.set_account("account-1");
    login.set_user("3001");
    login.set_server("127.0.0.1:9");
    telestra::v1::LoginResponse response;
    ASSERT_TRUE(gateway->stub->Login(&context, login, &response).ok());
  }
  std::ostringstream out;
  EXPECT_EQ(
      RunExample(absl::StrCat("127.0.0.1:", gateway->process->grpc_port()), "example-token", out),
      0);
  std::string text = out.str();
  std::cout << text;
  EXPECT_TRUE(absl::StrContains(text, "MakeCall: code 9 (Account is not registered: account-1)") ||
              absl::StrContains(text, "MakeCall: code 12"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "status { account: \"account-1\"")) << text;
  EXPECT_TRUE(
      absl::StrContains(text, "account_status { account: \"account-1\" reason: \"Logged out\" }"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "stream ended: code 1")) << text;
}

}  // namespace
}  // namespace telestra::testing
