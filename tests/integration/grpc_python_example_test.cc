// The Python example client (examples/python/telestra_client.py, Debian's
// /usr/bin/python3 with python3-grpcio) against the real gateway and
// Kamailio: it generates its stubs, lists the accounts, subscribes, places a
// call from account-1 to 3002 (account-2), answers it and hangs up.
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_fixture.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/grpc_gateway.h"
#include "tests/support/kamailio.h"
#include "tests/support/test_files.h"

namespace telestra::testing {
namespace {

class GrpcPythonExampleTest : public GatewayTest {};

TEST_F(GrpcPythonExampleTest, SubscribesAndPlacesACall) {
  auto gateway = GrpcGateway::Start(TwoAccounts(kamailio().server()));
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  ASSERT_EQ(WaitForAccountStatus(gateway->stub.get(), "account-1", 200), 200);
  ASSERT_EQ(WaitForAccountStatus(gateway->stub.get(), "account-2", 200), 200);

  std::string log = TestTempDir() + "/python-example.log";
  auto python =
      Subprocess::Start({"/usr/bin/python3", Runfile("examples/python/telestra_client.py"),
                         absl::StrCat("--target=127.0.0.1:", gateway->process->grpc_port()),
                         "--account=account-1", "--call=3002", "--answer", "--talk=0.3",
                         "--timeout=20", absl::StrCat("--proto-root=", Runfile(""))},
                        log);
  ASSERT_TRUE(python.ok()) << python.status();
  auto exit = (*python)->WaitForExit(absl::Now() + absl::Seconds(60));
  std::string output = ReadFileText(log);
  std::cout << "python example output:\n" << output;
  ASSERT_TRUE(exit.ok()) << exit.status() << "\n" << output;
  EXPECT_EQ(*exit, 0) << output;

  EXPECT_TRUE(absl::StrContains(output, "account account-1: status 200, 0 calls")) << output;
  EXPECT_TRUE(absl::StrContains(output, "subscribed (epoch ")) << output;
  EXPECT_TRUE(absl::StrContains(output, "event seq ")) << output;  // the snapshot at least
  ASSERT_TRUE(absl::StrContains(output, "make_call: ")) << output;
  if (absl::StrContains(output, "make_call failed: UNIMPLEMENTED")) {
    GTEST_SKIP() << "calls are not supported by this build";
  }
  EXPECT_TRUE(absl::StrContains(output, "make_call: call_id=")) << output;
  EXPECT_TRUE(absl::StrContains(output, "call_incoming: account: \"account-2\"")) << output;
  EXPECT_TRUE(absl::StrContains(output, "answer_call: account-2")) << output;
  EXPECT_TRUE(absl::StrContains(output, "hangup_call: ")) << output;
  EXPECT_TRUE(absl::StrContains(output, "call_ended: account: \"account-1\"")) << output;
  EXPECT_TRUE(absl::StrContains(output, "done")) << output;
}

}  // namespace
}  // namespace telestra::testing
