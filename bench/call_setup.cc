// Call setup latency through a real Kamailio, the gateway against baresip:
//
//   gateway: make-call (account-1 -> 3002) sent on the native port ->
//            call-incoming for account-2 (the same gateway) received;
//   baresip: "dial sip:3008@..." sent on A's ctrl_tcp -> CALL_INCOMING
//            received on B's ctrl_tcp (two baresip 1.0 instances, 3007/3008);
//   sofia (--sofia_floor): nua_invite() -> the callee's nua_i_invite, both
//            on one thread of this process (bench/bare_sofia.h, 3003/3004):
//            sofia-sip alone, no control connection, no hand-over.
//
// baresip answers the 407 of every INVITE; the gateway and the bare sofia
// flow send the credentials of their last challenge with the next INVITE
// (their first, unmeasured calls are challenged). Each call is
// cancelled by the caller after the callee saw it, and the next one starts
// when both ends reported the end. Sequential, --calls per flow after
// --warmup unmeasured calls; the flows take turns call by call so that
// load from elsewhere on the machine hits all alike. Run by bench/run-call-setup.sh (which sets
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
#include "absl/synchronization/mutex.h"
#include "bench/bare_nta.h"
#include "bench/bare_sofia.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"
#include "tests/support/kamailio.h"
#include "tests/support/ports.h"

ABSL_FLAG(int, calls, 100, "Measured calls per flow");
ABSL_FLAG(int, warmup, 10, "Unmeasured calls per flow first");
ABSL_FLAG(double, max_seconds, 240, "Stop after this long");
ABSL_FLAG(std::string, kamailio_memory, "tlsf",
          "Kamailio's memory manager for shared and private memory (-x/-X): qm, fm or tlsf");
ABSL_FLAG(bool, sofia_floor, false,
          "Also time the bare sofia-sip flow (bench/bare_sofia.h): 3003 -> 3004 on one sofia "
          "thread in this process, from nua_invite() to the callee's nua_i_invite; no API port, "
          "no thread hand-over: the floor of any service built on sofia-sip");
ABSL_FLAG(bool, nua_no_soa_floor, false,
          "Also time the bare sofia-sip flow with nua's offer/answer engine off "
          "(NUTAG_MEDIA_ENABLE(0), our SDP as a plain body), 3003 -> 3004 like --sofia_floor "
          "(so not with it)");
ABSL_FLAG(bool, nta_floor, false,
          "Also time sofia-sip's transaction layer alone (bench/bare_nta.h): an INVITE from "
          "3005 to 3006 (answered 486), from creating the transaction to the callee's request "
          "callback, on one thread of this process");
ABSL_FLAG(bool, native_on_sip_thread, true,
          "The gateway's --native_on_sip_thread: its SIP thread reads the native port's "
          "commands (false: its API thread does)");
ABSL_FLAG(int, answer_poll_us, -1,
          "The gateway's [sip-settings] answer-poll-us (--sip_answer_poll_us; -1: its default)");
ABSL_FLAG(bool, journal, false,
          "Run the gateway with the journal on ([state-settings] dir, docs/restart.md)");
ABSL_FLAG(std::vector<std::string>, gateway_flags, {},
          "More flags for the gateway, comma-separated (A/B experiments, e.g. "
          "--sip_thread_nice=-5)");
ABSL_FLAG(int, busy_poll_us, 0,
          "The gateway's [sip-settings] busy-poll-us (--sip_busy_poll_us): how long its SIP "
          "thread keeps polling after each piece of work before it sleeps");
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
  double max = r.ms.empty() ? 0 : *std::max_element(r.ms.begin(), r.ms.end());
  std::printf(
      "%-8s calls %zu  failures %d  median %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n", name,
      r.ms.size(), r.failures, Percentile(r.ms, 0.5), Percentile(r.ms, 0.9), Percentile(r.ms, 0.99),
      max);
}

// One call of a flow: the setup latency in ms, or -1 if it failed.
class Flow {
 public:
  virtual ~Flow() = default;
  virtual double Call() = 0;
};

// make-call account-1 -> 3002 on one connection, timed to call-incoming of
// account-2 on another; then, once the caller has call-ringing, it hangs up
// (CANCEL) and both call-ended are awaited. Two connections, as the baresip flow has (dial on
// A's, CALL_INCOMING awaited on B's): the bench reads the command's reply
// (call-return) only after the timed part, as it reads baresip's reply to
// dial only after it.
class GatewayFlow : public Flow {
 public:
  static std::unique_ptr<GatewayFlow> Start(const KamailioProcess& kamailio) {
    auto flow = std::make_unique<GatewayFlow>();
    GatewayOptions options = TwoAccounts(kamailio.server());
    if (absl::GetFlag(FLAGS_journal)) options.state_settings = {"dir = STATE"};
    options.extra_args = {
        "--log_level=warn", "--mutex_deadlock_detection=false",
        absl::StrCat("--sip_busy_poll_us=", absl::GetFlag(FLAGS_busy_poll_us)),
        absl::StrCat("--native_on_sip_thread=", absl::GetFlag(FLAGS_native_on_sip_thread)),
        absl::StrCat("--sip_answer_poll_us=", absl::GetFlag(FLAGS_answer_poll_us))};
    for (const std::string& flag : absl::GetFlag(FLAGS_gateway_flags)) {
      options.extra_args.push_back(flag);
    }
    auto gateway = GatewayProcess::Start(options);
    if (!gateway.ok()) {
      std::fprintf(stderr, "gateway: %s\n", gateway.status().ToString().c_str());
      return nullptr;
    }
    flow->gateway_ = *std::move(gateway);
    auto caller = NativeClient::Connect(flow->gateway_->native_port());
    auto callee = NativeClient::Connect(flow->gateway_->native_port());
    if (caller.ok()) (*caller)->Send(R"({"cmd":"subscribe","extended":true})");  // call-ringing
    if (!caller.ok() || !callee.ok() || WaitForAccountStatus(**caller, "account-1", 200) != 200 ||
        WaitForAccountStatus(**caller, "account-2", 200) != 200) {
      std::fprintf(stderr, "gateway accounts did not register\n");
      return nullptr;
    }
    flow->caller_ = *std::move(caller);
    flow->callee_ = *std::move(callee);
    return flow;
  }

  double Call() override {
    NativeClient& a = *caller_;
    NativeClient& b = *callee_;
    Clock::time_point start = Clock::now();
    a.Send(R"({"cmd":"make-call","account":"account-1","num":"3002"})");
    auto incoming = b.WaitFor([&](const NativeEvent& e) {
      return e.event() == "call-incoming" && e.Str("account") == "account-2";
    });
    Clock::time_point end = Clock::now();
    if (!incoming) return Failed("no call-incoming");
    auto reply = a.WaitFor([](const NativeEvent& e) { return e.event() == "call-return"; });
    if (!reply) return Failed("no call-return");
    const int64_t caller_id = reply->Int("call_id");
    const int64_t callee_id = incoming->Int("call_id");
    // Hang up once the caller has heard ringing, as a person would: a
    // CANCEL that reaches Kamailio before it has relayed the callee's 180
    // can be lost there (its default cancel_b_method; then the callee's
    // call rings on).
    if (!a.WaitFor([&](const NativeEvent& e) {
          return e.event() == "call-ringing" && e.Int("call_id") == caller_id;
        })) {
      return Failed("no call-ringing");
    }
    a.Send(
        absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", caller_id, "}"));
    auto both_ended = [&](NativeClient& client) {
      return client.WaitForAll({[&](const NativeEvent& e) {
                                  return e.event() == "call-ended" && e.Int("call_id") == caller_id;
                                },
                                [&](const NativeEvent& e) {
                                  return e.event() == "call-ended" && e.Int("call_id") == callee_id;
                                }});
    };
    if (!both_ended(a) || !both_ended(b)) {
      return Failed(absl::StrCat("calls ", caller_id, " and ", callee_id, " did not both end"));
    }
    return std::chrono::duration<double, std::milli>(end - start).count();
  }

 private:
  double Failed(const std::string& why) {
    std::fprintf(stderr, "gateway call failed: %s; gateway log: %s\n", why.c_str(),
                 gateway_->ReadLog().substr(0, 4000).c_str());
    return -1;
  }

  std::unique_ptr<GatewayProcess> gateway_;
  std::unique_ptr<NativeClient> caller_, callee_;
};

// baresip A (3007) dials B (3008, no auto-answer), timed to B's
// CALL_INCOMING; then A hangs up (CANCEL) and both CALL_CLOSED are awaited.
class BaresipFlow : public Flow {
 public:
  static std::unique_ptr<BaresipFlow> Start(const KamailioProcess& kamailio) {
    auto flow = std::make_unique<BaresipFlow>();
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
      return nullptr;
    }
    flow->a_ = *std::move(a);
    flow->b_ = *std::move(b);
    flow->target_ = absl::StrCat("sip:3008@", kamailio.server());
    return flow;
  }

  double Call() override {
    Clock::time_point start = Clock::now();
    a_->SendCommand("dial", target_);
    auto incoming = b_->WaitEvent("CALL_INCOMING");
    Clock::time_point end = Clock::now();
    if (!incoming) return -1;
    bool ok = a_->Command("hangup", "").ok();
    ok = a_->WaitEvent("CALL_CLOSED").has_value() && ok;
    ok = b_->WaitEvent("CALL_CLOSED").has_value() && ok;
    if (!ok) return -1;
    return std::chrono::duration<double, std::milli>(end - start).count();
  }

 private:
  std::unique_ptr<BaresipProcess> a_, b_;
  std::string target_;
};

// The bare sofia-sip flow: 3003 INVITEs 3004, both on one sofia thread of
// this process; timed on that thread from just before nua_invite() to the
// callee's nua_i_invite. Then the caller CANCELs and both ends' termination
// is awaited.
class SofiaFlow : public Flow {
 public:
  static std::unique_ptr<SofiaFlow> Start(const KamailioProcess& kamailio, bool soa = true) {
    auto flow = std::make_unique<SofiaFlow>();
    SofiaFlow* raw = flow.get();
    bench::BareSofia::Options options;
    options.server = kamailio.server();
    options.accounts = {{"3003", "sip3003"}, {"3004", "sip3004"}};
    options.soa = soa;
    options.hooks.on_incoming = [raw](uint64_t call) {
      Clock::time_point now = Clock::now();
      absl::MutexLock lock(&raw->mu_);
      raw->end_ = now;
      raw->callee_ = call;
    };
    options.hooks.on_ended = [raw](uint64_t, int) {
      absl::MutexLock lock(&raw->mu_);
      ++raw->ended_;
    };
    auto ua = bench::BareSofia::Start(options);
    if (!ua.ok()) {
      std::fprintf(stderr, "bare sofia: %s\n", ua.status().ToString().c_str());
      return nullptr;
    }
    flow->ua_ = *std::move(ua);
    return flow;
  }

  double Call() override {
    {
      absl::MutexLock lock(&mu_);
      callee_ = 0;
      ended_ = 0;
    }
    ua_->Post([this] {
      Clock::time_point start = Clock::now();
      uint64_t caller = ua_->Invite(0, "3004");
      absl::MutexLock lock(&mu_);
      start_ = start;
      caller_ = caller;
    });
    absl::MutexLock lock(&mu_);
    auto incoming = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return callee_ != 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&incoming), absl::Seconds(5))) return -1;
    uint64_t caller = caller_;
    ua_->Post([this, caller] { ua_->Cancel(caller); });
    auto both_ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ended_ >= 2; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&both_ended), absl::Seconds(5))) return -1;
    return std::chrono::duration<double, std::milli>(end_ - start_).count();
  }

 private:
  std::unique_ptr<bench::BareSofia> ua_;
  absl::Mutex mu_;
  Clock::time_point start_ ABSL_GUARDED_BY(mu_);
  Clock::time_point end_ ABSL_GUARDED_BY(mu_);
  uint64_t caller_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t callee_ ABSL_GUARDED_BY(mu_) = 0;
  int ended_ ABSL_GUARDED_BY(mu_) = 0;
};

// sofia-sip's nta alone: 3005 INVITEs 3006 (which answers 486), both on one
// thread of this process; see bench/bare_nta.h.
class NtaFlow : public Flow {
 public:
  static std::unique_ptr<NtaFlow> Start(const KamailioProcess& kamailio) {
    bench::BareNta::Options options;
    options.server = kamailio.server();
    options.caller = "3005";
    options.callee = "3006";
    options.callee_port = PickFreePort(SOCK_DGRAM);
    if (options.callee_port <= 0 || !SippRegister(options.server, "3006", options.callee_port)) {
      std::fprintf(stderr, "bare nta: could not register 3006\n");
      return nullptr;
    }
    auto nta = bench::BareNta::Start(options);
    if (!nta.ok()) {
      std::fprintf(stderr, "bare nta: %s\n", nta.status().ToString().c_str());
      return nullptr;
    }
    auto flow = std::make_unique<NtaFlow>();
    flow->nta_ = *std::move(nta);
    return flow;
  }

  double Call() override { return nta_->Call(); }

 private:
  std::unique_ptr<bench::BareNta> nta_;
};

}  // namespace
}  // namespace telestra::testing

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace telestra::testing;
  KamailioOptions kamailio_options;
  kamailio_options.config_path = absl::GetFlag(FLAGS_kamailio_cfg);
  kamailio_options.shm_manager = absl::GetFlag(FLAGS_kamailio_memory);
  kamailio_options.pkg_manager = absl::GetFlag(FLAGS_kamailio_memory);
  auto kamailio = KamailioProcess::Start(kamailio_options);
  if (!kamailio.ok()) {
    std::fprintf(stderr, "kamailio: %s\n", kamailio.status().ToString().c_str());
    return 1;
  }
  std::vector<std::unique_ptr<Flow>> flows;
  flows.push_back(GatewayFlow::Start(**kamailio));
  flows.push_back(BaresipFlow::Start(**kamailio));
  std::vector<std::string> names = {"gateway", "baresip"};
  if (absl::GetFlag(FLAGS_sofia_floor)) {
    flows.push_back(SofiaFlow::Start(**kamailio));
    names.push_back("sofia");
  }
  if (absl::GetFlag(FLAGS_nua_no_soa_floor)) {
    if (absl::GetFlag(FLAGS_sofia_floor)) {
      std::fprintf(stderr, "--nua_no_soa_floor and --sofia_floor both use 3003/3004\n");
      return 1;
    }
    flows.push_back(SofiaFlow::Start(**kamailio, /*soa=*/false));
    names.push_back("nua-soa");
  }
  if (absl::GetFlag(FLAGS_nta_floor)) {
    flows.push_back(NtaFlow::Start(**kamailio));
    names.push_back("nta");
  }
  for (const auto& flow : flows) {
    if (!flow) return 1;
  }
  // The flows take turns call by call, so that all see the same load.
  std::vector<Result> results(flows.size());
  int total = absl::GetFlag(FLAGS_warmup) + absl::GetFlag(FLAGS_calls);
  Clock::time_point give_up =
      Clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_max_seconds) * 1000));
  for (int i = 0; i < total && Clock::now() < give_up; ++i) {
    for (size_t f = 0; f < flows.size(); ++f) {
      double ms = flows[f]->Call();
      if (ms < 0) {
        ++results[f].failures;
      } else if (i >= absl::GetFlag(FLAGS_warmup)) {
        results[f].ms.push_back(ms);
      }
    }
  }
  const Result& gateway = results[0];
  const Result& baresip = results[1];
  std::printf("call setup, make-call/dial -> incoming at the callee, via Kamailio (407 auth)\n");
  Print("gateway", gateway);
  Print("baresip", baresip);
  double g = Percentile(gateway.ms, 0.5);
  double b = Percentile(baresip.ms, 0.5);
  if (g > 0 && b > 0) {
    std::printf("gateway median / baresip median = %.2f (target <= 0.5)\n", g / b);
  }
  bool ok = gateway.failures == 0 && baresip.failures == 0;
  for (size_t f = 2; f < results.size(); ++f) {
    Print(names[f].c_str(), results[f]);
    double m = Percentile(results[f].ms, 0.5);
    if (m > 0 && b > 0) {
      std::printf("bare %s median / baresip median = %.2f\n", names[f].c_str(), m / b);
    }
    ok = ok && results[f].failures == 0;
  }
  return ok ? 0 : 1;
}
