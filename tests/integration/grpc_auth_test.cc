// The real gateway binary's gRPC port: bearer token (plan value and
// token-env), TLS with a certificate made at test time, the health and
// reflection services, and shutdown. No registrar needed.
#include <signal.h>
#include <stdlib.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/gateway/grpc/grpc_test_client.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/grpc_gateway.h"
#include "tests/support/test_certificate.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

using telestra::v1::Telestra;

grpc::Status GetStatus(Telestra::Stub* stub, const std::string& token) {
  grpc::ClientContext context;
  Prepare(context, token);
  telestra::v1::GetStatusCommand request;
  request.set_account("account-1");
  telestra::v1::Status status;
  return stub->GetStatus(&context, request, &status);
}

class GrpcAuthTest : public ::testing::Test {
 protected:
  void Start(const GatewayOptions& options, const ChannelOptions& channel = {}) {
    auto gateway = GrpcGateway::Start(options, channel);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = *std::move(gateway);
  }
  void TearDown() override {
    if (HasFailure() && gateway_.process) {
      std::cerr << "gateway log:\n" << gateway_.process->ReadLog();
    }
  }
  GrpcGateway gateway_;
};

TEST_F(GrpcAuthTest, TokenIsRequiredOnEveryRpcAndNeverLogged) {
  GatewayOptions options = OneIdleAccount();
  options.grpc_settings = {"token = s3cret-token"};
  Start(options);
  Telestra::Stub* stub = gateway_.stub.get();

  grpc::Status missing = GetStatus(stub, "");
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(missing.error_message(),
            "Missing bearer token: send metadata 'authorization: Bearer <token>'");
  grpc::Status wrong = GetStatus(stub, "s3cret-tokem");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong.error_message(), "Invalid bearer token");
  EXPECT_TRUE(GetStatus(stub, "s3cret-token").ok());
  {
    grpc::ClientContext context;
    Prepare(context);
    telestra::v1::ListAccountsResponse list;
    EXPECT_EQ(stub->ListAccounts(&context, {}, &list).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    Prepare(context, "nope");
    telestra::v1::MakeCallCommand request;
    request.set_account("account-1");
    request.set_num("3002");
    telestra::v1::CallReturn response;
    EXPECT_EQ(stub->MakeCall(&context, request, &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  auto subscribe = EventStreamReader::Subscribe(stub, {}, "nope");
  auto end = subscribe->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto session = EventStreamReader::Session(stub);
  end = session->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto allowed = EventStreamReader::Session(stub, "s3cret-token");
  telestra::v1::Command command;
  command.mutable_get_status()->set_account("account-1");
  ASSERT_TRUE(allowed->Send(command));
  auto reply = allowed->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(reply->has_status());

  std::string log = gateway_.process->ReadLog();
  EXPECT_TRUE(absl::StrContains(log, "bearer token required"));
  EXPECT_FALSE(absl::StrContains(log, "s3cret-token"));
  EXPECT_FALSE(absl::StrContains(log, "s3cret-tokem"));
}

TEST_F(GrpcAuthTest, TokenFromEnvironment) {
  GatewayOptions options = OneIdleAccount();
  options.grpc_settings = {"token-env = TELESTRA_TEST_GRPC_TOKEN"};
  options.env = {{"TELESTRA_TEST_GRPC_TOKEN", "from-env"}};
  Start(options);
  EXPECT_EQ(GetStatus(gateway_.stub.get(), "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(GetStatus(gateway_.stub.get(), "from-env").ok());
}

TEST_F(GrpcAuthTest, TlsHandshakeWithTestCertificateAndToken) {
  auto cert = MakeSelfSignedCertificate(TestTempDir());
  ASSERT_TRUE(cert.ok()) << cert.status();
  GatewayOptions options = OneIdleAccount();
  options.grpc_settings = {"cert = " + cert->cert_path, "key = " + cert->key_path,
                           "token = over-tls"};
  ChannelOptions tls;
  tls.root_cert_pem = cert->cert_pem;
  Start(options, tls);
  EXPECT_TRUE(GetStatus(gateway_.stub.get(), "over-tls").ok());
  EXPECT_EQ(GetStatus(gateway_.stub.get(), "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Plaintext clients do not get through the handshake.
  auto plain = gateway_.NewStub();
  grpc::ClientContext context;
  Prepare(context, "over-tls", absl::Seconds(3));
  telestra::v1::GetStatusCommand request;
  request.set_account("account-1");
  telestra::v1::Status status;
  EXPECT_EQ(plain->GetStatus(&context, request, &status).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(absl::StrContains(gateway_.process->ReadLog(), "(TLS, bearer token required)"));
}

TEST_F(GrpcAuthTest, HealthAndReflectionForGenericTools) {
  Start(OneIdleAccount());
  std::string name = "telestra.v1.Telestra";
  auto health = CallRaw(gateway_.channel, "/grpc.health.v1.Health/Check",
                        std::string("\x0a", 1) + static_cast<char>(name.size()) + name);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, std::string("\x08\x01", 2));  // SERVING
  auto services =
      CallRaw(gateway_.channel, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
              std::string("\x3a\x00", 2));
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_TRUE(absl::StrContains(*services, "telestra.v1.Telestra"));
}

TEST_F(GrpcAuthTest, SigtermEndsStreamsWithUnavailableAndExitsZero) {
  Start(OneIdleAccount());
  auto subscriber = EventStreamReader::Subscribe(gateway_.stub.get(), {});
  auto session = EventStreamReader::Session(gateway_.stub.get());
  absl::Time start = absl::Now();
  ASSERT_EQ(kill(gateway_.process->process().pid(), SIGTERM), 0);
  for (EventStreamReader* stream : {subscriber.get(), session.get()}) {
    auto end = stream->WaitForEnd();
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(end->error_message(), "Gateway shutting down");
  }
  auto exit_status = gateway_.process->process().WaitForExit(start + absl::Seconds(5));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);
  EXPECT_TRUE(absl::StrContains(gateway_.process->ReadLog(), "gRPC API stopped: 2 streams"));
}

}  // namespace
}  // namespace telestra::testing
