// Call setup latency through a real Kamailio, the gateway against baresip:
//
//   gateway: make-call (account-1 -> 3002) sent on the native port ->
//            call-incoming for account-2 (the same gateway) received;
//   baresip: "dial sip:3008@..." sent on A's ctrl_tcp -> CALL_INCOMING
//            received on B's ctrl_tcp (two baresip 1.0 instances, 3007/3008).
//
// Both include the 407 round trip of the caller's INVITE. Each call is
// cancelled by the caller after the callee saw it, and the next one starts
// when both ends reported the end. Sequential, --calls per flow after
// --warmup unmeasured calls. Run by bench/run-call-setup.sh (which sets
// TEST_SRCDIR so that the gateway and examples/kamailio.cfg are found).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"
#include "tests/support/kamailio.h"

ABSL_FLAG(int, calls, 100, "Measured calls per flow");
ABSL_FLAG(int, warmup, 10, "Unmeasured calls per flow first");
ABSL_FLAG(double, max_seconds, 120, "Give up on a flow after this long");
ABSL_FLAG(std::string, kamailio_cfg, "",
          "Kamailio configuration (default examples/kamailio.cfg); for experiments");

namespace telestra::testing {
namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  std::vector<double> ms;
  int failures = 0;
};

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

void Print(const char* name, const Result& r) {
  std::printf("%-8s calls %zu  failures %d  median %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n",
              name, r.ms.size(), r.failures, Percentile(r.ms, 0.5), Percentile(r.ms, 0.9),
              Percentile(r.ms, 0.99), r.ms.empty() ? 0 : *std::max_element(r.ms.begin(), r.ms.end()));
}

Result RunGateway(const KamailioProcess& kamailio) {
  Result result;
  GatewayOptions options;
  options.accounts = {{"account-1", "3001", "sip3001", kamailio.server(), true},
                      {"account-2", "3002", "sip3002", kamailio.server(), true}};
  options.extra_args = {"--log_level=warn"};
  auto gateway = GatewayProcess::Start(options);
  if (!gateway.ok()) {
    std::fprintf(stderr, "gateway: %s\n", gateway.status().ToString().c_str());
    result.failures = -1;
    return result;
  }
  auto client = NativeClient::Connect((*gateway)->native_port());
  if (!client.ok() || WaitForAccountStatus(**client, "account-1", 200) != 200 ||
      WaitForAccountStatus(**client, "account-2", 200) != 200) {
    std::fprintf(stderr, "gateway accounts did not register\n");
    result.failures = -1;
    return result;
  }
  NativeClient& c = **client;
  int total = absl::GetFlag(FLAGS_warmup) + absl::GetFlag(FLAGS_calls);
  Clock::time_point give_up =
      Clock::now() + std::chrono::milliseconds(
                         static_cast<int64_t>(absl::GetFlag(FLAGS_max_seconds) * 1000));
  for (int i = 0; i < total && Clock::now() < give_up; ++i) {
    Clock::time_point start = Clock::now();
    c.Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
    int64_t caller_id = -1;
    auto incoming = c.WaitFor([&](const NativeEvent& e) {
      if (e.event() == "call-return") caller_id = e.Int("call_id");
      return e.event() == "call-incoming" && e.Str("account") == "account-2";
    });
    Clock::time_point end = Clock::now();
    if (!incoming || caller_id < 0) {
      ++result.failures;
      continue;
    }
    if (i >= absl::GetFlag(FLAGS_warmup)) {
      result.ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
    c.Send(absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", caller_id,
                        "}"));
    int64_t callee_id = incoming->Int("call_id");
    bool ended = c.WaitForAll(
        {[&](const NativeEvent& e) {
           return e.event() == "call-ended" && e.Int("call_id") == caller_id;
         },
         [&](const NativeEvent& e) {
           return e.event() == "call-ended" && e.Int("call_id") == callee_id;
         }});
    if (!ended) ++result.failures;
  }
  return result;
}

Result RunBaresip(const KamailioProcess& kamailio) {
  Result result;
  BaresipProcess::Options a_options;
  a_options.user = "3007";
  a_options.server = kamailio.server();
  BaresipProcess::Options b_options = a_options;
  b_options.user = "3008";
  b_options.auto_answer = false;
  auto a = BaresipProcess::Start(a_options);
  auto b = BaresipProcess::Start(b_options);
  if (!a.ok() || !b.ok()) {
    std::fprintf(stderr, "baresip: %s %s\n", a.status().ToString().c_str(),
                 b.status().ToString().c_str());
    result.failures = -1;
    return result;
  }
  std::string target = absl::StrCat("sip:3008@", kamailio.server());
  int total = absl::GetFlag(FLAGS_warmup) + absl::GetFlag(FLAGS_calls);
  Clock::time_point give_up =
      Clock::now() + std::chrono::milliseconds(
                         static_cast<int64_t>(absl::GetFlag(FLAGS_max_seconds) * 1000));
  for (int i = 0; i < total && Clock::now() < give_up; ++i) {
    Clock::time_point start = Clock::now();
    (*a)->SendCommand("dial", target);
    auto incoming = (*b)->WaitEvent("CALL_INCOMING");
    Clock::time_point end = Clock::now();
    if (!incoming) {
      ++result.failures;
      continue;
    }
    if (i >= absl::GetFlag(FLAGS_warmup)) {
      result.ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
    bool ok = (*a)->Command("hangup", "").ok();
    ok = (*a)->WaitEvent("CALL_CLOSED").has_value() && ok;
    ok = (*b)->WaitEvent("CALL_CLOSED").has_value() && ok;
    if (!ok) ++result.failures;
  }
  return result;
}

}  // namespace
}  // namespace telestra::testing

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace telestra::testing;
  KamailioOptions kamailio_options;
  kamailio_options.config_path = absl::GetFlag(FLAGS_kamailio_cfg);
  auto kamailio = KamailioProcess::Start(kamailio_options);
  if (!kamailio.ok()) {
    std::fprintf(stderr, "kamailio: %s\n", kamailio.status().ToString().c_str());
    return 1;
  }
  Result gateway = RunGateway(**kamailio);
  Result baresip = RunBaresip(**kamailio);
  std::printf("call setup, make-call/dial -> incoming at the callee, via Kamailio (407 auth)\n");
  Print("gateway", gateway);
  Print("baresip", baresip);
  double g = Percentile(gateway.ms, 0.5);
  double b = Percentile(baresip.ms, 0.5);
  if (g > 0 && b > 0) {
    std::printf("gateway median / baresip median = %.2f (target <= 0.5)\n", g / b);
  }
  return gateway.failures == 0 && baresip.failures == 0 ? 0 : 1;
}
