// The gRPC front end against stream exhaustion (issue 17): [grpc-settings]
// max-streams bounds the Subscribe + Session streams open at once for the
// whole server, counted by the application, so that the stream beyond it
// ends at once with RESOURCE_EXHAUSTED (HTTP/2's own limit is per
// connection and only makes a client queue). No registrar is needed: the
// account does not register.
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/telestra_service.grpc.pb.h"
#include "tests/gateway/grpc/grpc_test_client.h"
#include "tests/hardening/hardening_support.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/grpc_gateway.h"

namespace telestra::testing {
namespace {

// An admitted stream announces the run's epoch in its initial metadata; a
// refused one ends without it.
bool Admitted(EventStreamReader& stream) { return stream.Metadata("telestra-epoch").size() == 16; }

TEST(GrpcSecurityTest, StreamsBeyondMaxStreamsEndResourceExhaustedAndFreedSlotsAreReused) {
  GatewayOptions options = OneIdleAccount();
  options.grpc_settings = {"max-streams = 3"};
  auto gateway = GrpcGateway::Start(options);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  telestra::v1::Telestra::Stub* stub = gateway->stub.get();

  // Three streams, of both kinds, on one connection: admitted.
  std::vector<std::unique_ptr<EventStreamReader>> open;
  open.push_back(EventStreamReader::Subscribe(stub, {}));
  open.push_back(EventStreamReader::Subscribe(stub, {}));
  open.push_back(EventStreamReader::Session(stub));
  for (auto& stream : open) ASSERT_TRUE(Admitted(*stream)) << gateway->process->ReadLog();

  // One more of each kind, on another connection too: refused at once.
  auto other_stub = gateway->NewStub();
  std::vector<std::unique_ptr<EventStreamReader>> refused;
  refused.push_back(EventStreamReader::Subscribe(stub, {}));
  refused.push_back(EventStreamReader::Session(stub));
  refused.push_back(EventStreamReader::Subscribe(other_stub.get(), {}));
  for (auto& stream : refused) {
    std::optional<grpc::Status> end = stream->WaitForEnd(absl::Seconds(5));
    ASSERT_TRUE(end.has_value()) << "a stream over max-streams was not ended";
    EXPECT_EQ(end->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(end->error_message(), "Too many streams (max-streams is 3)");
    EXPECT_FALSE(Admitted(*stream));
  }

  // The admitted streams and unary calls are unaffected.
  telestra::v1::Command command;
  command.set_token("t1");
  command.mutable_get_status()->set_account("account-1");
  ASSERT_TRUE(open[2]->Send(command));
  auto reply = open[2]->WaitFor(
      [](const telestra::v1::Event& e) { return e.has_status() && e.token() == "t1"; });
  EXPECT_TRUE(reply.has_value());
  EXPECT_EQ(WaitForAccountStatus(stub, "account-1", 0), 0);

  // Ending one frees its slot (once the server has seen it end).
  open[0]->Cancel();
  ASSERT_TRUE(open[0]->WaitForEnd(absl::Seconds(5)).has_value());
  int refused_while_freeing = 0;
  std::unique_ptr<EventStreamReader> replacement;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    replacement = EventStreamReader::Subscribe(stub, {});
    if (Admitted(*replacement)) break;
    ++refused_while_freeing;
    replacement.reset();
  }
  ASSERT_NE(replacement, nullptr) << "the freed slot was not reused";
  EXPECT_EQ(Metric(*gateway->process, "telestra_grpc_streams"), 3);
  EXPECT_EQ(Metric(*gateway->process, "telestra_grpc_streams_refused_total"),
            3 + refused_while_freeing);
  EXPECT_TRUE(absl::StrContains(gateway->process->ReadLog(), "refused: max-streams (3) open"));
  std::cout << "max-streams 3: 3 streams admitted, 3 refused with RESOURCE_EXHAUSTED; slot "
               "reused after "
            << refused_while_freeing << " more refusals\n";
}

}  // namespace
}  // namespace telestra::testing
