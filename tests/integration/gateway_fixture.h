// The one integration fixture: a private Kamailio (demo users 3001..3008),
// the real gateway binary with a plan written for the test, and its clients,
// all on free loopback ports. Every integration, hardening and end-to-end
// suite builds on it instead of writing its own copy:
//
//   class CallTest : public GatewayTest { ... };      // one Kamailio per suite
//   TEST_F(CallTest, X) {
//     StartGateway(TwoAccounts(kamailio().server()));  // gateway_ + client_,
//     ...                                              // both accounts at 200
//   }
//
// Suites without a registrar (the account never registers) or with a
// Kamailio of their own (to stop, freeze or restart it) use the free
// functions below.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"
#include "tests/support/kamailio.h"

namespace telestra::testing {

// ---- Plans

// Kamailio demo user `user` (password "sip<user>") at `server` as account `name`.
TestAccount DemoAccount(const std::string& name, int user, const std::string& server,
                        bool register_on_start = true);

// account-1 (3001) that never registers (its registrar, 127.0.0.1:9, is never
// asked): for tests of the front ends that need no Kamailio.
GatewayOptions OneIdleAccount();

// ---- Starting and connecting (each a test failure and nullptr when it fails)

// Starts the gateway with `options`.
std::unique_ptr<GatewayProcess> StartGatewayProcess(const GatewayOptions& options);

// Starts the gateway with `options` and waits (10 s) until its web port
// accepts connections.
std::unique_ptr<GatewayProcess> StartWebGateway(const GatewayOptions& options);

// For a test that needs a registrar of its own (it stops, freezes or
// restarts it) or a suite that shares one gateway across its tests: a fresh
// Kamailio and the gateway with account-1 (3001) and account-2 (3002) at it
// and `options`' other settings (TwoAccounts). Members are destroyed gateway
// first.
struct GatewayAndRegistrar {
  std::unique_ptr<KamailioProcess> kamailio;
  std::unique_ptr<GatewayProcess> gateway;
};
absl::StatusOr<GatewayAndRegistrar> StartWithOwnRegistrar(GatewayOptions options = {});

// A native client of `gateway`.
std::unique_ptr<NativeClient> ConnectNative(const GatewayProcess& gateway);

// ---- Waiting (with deadlines) and looking

// Waits (10 s) until Kamailio holds `want` contacts for `user`; the last count.
int WaitForContacts(KamailioProcess& kamailio, const std::string& user, int want);

// Call `id`'s object in a get-status of `account`, as an event to read its
// fields from (an extended client gets the media figures, such as
// packets_received); "{}" when the call is absent or no status came.
NativeEvent CallInStatus(NativeClient& client, const std::string& account, int64_t id);

// The state of call `id` in get-status of `account` ("" if absent, "no
// status" if get-status got no answer).
std::string CallState(NativeClient& client, const std::string& account, int64_t id);

// Asks CallState until it is `want` or `timeout` passes; the last state.
std::string WaitForCallState(NativeClient& client, const std::string& account, int64_t id,
                             const std::string& want, absl::Duration timeout = absl::Seconds(10));

// GET http://127.0.0.1:port<path>; the body. Error when not 200.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

// The value of an unlabelled sample `name` in Prometheus text; nullopt if absent.
std::optional<double> MetricValue(const std::string& exposition, const std::string& name);

// Sample `name` of the gateway's /metrics; -1 (and a test failure when
// /metrics does not answer) when absent.
double Metric(const GatewayProcess& gateway, const std::string& name);

// ---- Native event matchers

using NativeMatch = std::function<bool(const NativeEvent&)>;

// `event` of call `id` of `account` (e.g. "call-answered").
NativeMatch IsCallEvent(const std::string& event, const std::string& account, int64_t id);
// `event` of `account`, any call.
NativeMatch IsEventOf(const std::string& event, const std::string& account);
// `event`, any account.
NativeMatch IsEvent(const std::string& event);

// ---- The fixture

// One Kamailio for the whole suite (started in SetUpTestSuite, stopped in
// TearDownTestSuite), a gateway and a native client per test, and more
// gateways beside it when a test asks (StartOtherGateway). When a test
// fails, TearDown prints every gateway's log and FailureDetails().
// Thread: the test's thread.
class GatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  // More to print when a test failed (peers' logs); empty by default.
  virtual std::string FailureDetails() { return ""; }

  // The suite's Kamailio.
  static KamailioProcess& kamailio();

  // Kamailio demo user `user` at the suite's Kamailio as account `name`.
  static TestAccount Account(const std::string& name, int user, bool register_on_start = true);

  // (Re)starts gateway_ with `options`, connects client_ and waits until each
  // of `registered` reports account_status 200.
  void StartGateway(const GatewayOptions& options,
                    const std::vector<std::string>& registered = {"account-1", "account-2"});

  // Stops client_ and gateway_ (a test that starts its own gateway again).
  void StopGateway();

  // make-call of `account` to `number` on client_; the call id of its
  // call-return (-1, with a test failure, if none came).
  int64_t MakeCall(const std::string& account, const std::string& number);

  // {"cmd":`cmd`,"account":`account`,"call_id":`id`} on client_
  // (answer-call, switch-call, hangup-call).
  void Command(const std::string& cmd, const std::string& account, int64_t id);

  // A gateway started beside gateway_, and a native client of it.
  struct OtherGateway {
    std::unique_ptr<GatewayProcess> process;
    std::unique_ptr<NativeClient> client;
  };

  // Starts one more gateway with `options` (its own plan and free ports, at
  // the suite's Kamailio when its accounts are: a site of several gateways,
  // docs/scaling.md), connects a native client to it and waits until each
  // of `registered` reports account_status 200. It runs until the test
  // ends. nullptr (and a test failure) when it did not start, connect or
  // register.
  OtherGateway* StartOtherGateway(const GatewayOptions& options,
                                  const std::vector<std::string>& registered);

  std::unique_ptr<GatewayProcess> gateway_;
  std::unique_ptr<NativeClient> client_;
  std::vector<std::unique_ptr<OtherGateway>> other_gateways_;

 private:
  static KamailioProcess* kamailio_;
};

// GatewayTest with sipp peers: the sipp processes a test starts are killed
// after it, and described when it failed.
class SipPeerTest : public GatewayTest {
 protected:
  std::string FailureDetails() override;

  // StartGateway with account-1 (3001) and account-2 (3002) at the suite's
  // Kamailio, `options`' other settings and extended events.
  void StartTwoAccounts(GatewayOptions options = {});

  // Keeps `sipp` until the test ends; nullptr (a test failure) if it did not start.
  SippProcess* Track(absl::StatusOr<std::unique_ptr<SippProcess>> sipp);
  SippProcess* StartSipp(const SippProcess::Options& options) {
    return Track(SippProcess::Start(options));
  }

  // sipp's scenario ends (25 s) with exit status 0.
  static void ExpectSippSucceeds(SippProcess& sipp);

  // sipp's own SIP user (password sip3005).
  static constexpr char kSippUser[] = "3005";

  // A sipp UAS for kSippUser running `scenario` (more sipp `args`):
  // registered first, then started on that port and listening.
  SippProcess* StartUas(const std::string& scenario, std::vector<std::string> args = {});

  // A sipp UAC running `scenario`, calling `user` through Kamailio as
  // kSippUser (its 407 answered).
  SippProcess* StartUac(const std::string& scenario, const std::string& user,
                        std::vector<std::string> args = {});

  std::vector<std::unique_ptr<SippProcess>> sipps_;
};

}  // namespace telestra::testing
