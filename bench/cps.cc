// Sustained calls per second through a real Kamailio to a sipp UAS:
//
//   gateway: one native client keeps --window calls in flight from
//            account-1 (3001) to 3005 (sipp, uas_answer.xml): make-call,
//            hangup-call as soon as call-answered arrives, the next
//            make-call when call-ended arrives. Each call is INVITE (with
//            the credentials of the account's last challenge), 100, 180,
//            200, ACK, BYE, 200. The client pipelines its commands (all
//            that the events read so far call for go in one write) and
//            reads each event's fields with one reused JSON parser, so
//            that the load generator takes little of the 2 cores.
//   bare sofia (--sofia_floor): the gateway's SIP flow on sofia-sip alone
//            (bench/bare_sofia.h: 3003 -> 3005, --window calls in flight,
//            BYE on the 200), in this process: no API, no events, no media.
//   ceiling: sipp UAC (uac_call.xml -d 0, the same SIP flow with 407 auth)
//            -> the same Kamailio -> the same sipp UAS, at each of
//            --ceiling_rates in turn until one runs without a failed call.
//
// A call counts as failed when its call-ended is not the answer of our own
// hangup ("Hung up", code 0). Reports completed calls/s over the measured
// --seconds (after --warmup_seconds; both flows run for the warm-up too and
// a failure at any time counts), the failures, and the CPU time each
// process group used per call (a figure less sensitive to other load on
// the machine than the rates). Run by
// bench/run-cps.sh (which sets TEST_SRCDIR and TEST_TMPDIR).
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "bench/bare_sofia.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/native_client.h"
#include "tests/integration/sip_peers.h"
#include "tests/support/kamailio.h"
#include "tests/support/ports.h"

ABSL_FLAG(double, seconds, 30, "Measured seconds per run");
ABSL_FLAG(double, warmup_seconds, 35,
          "Unmeasured seconds first, in both flows: a steady state. sofia-sip keeps a "
          "completed INVITE client transaction for 32 s (64 x T1), so the gateway's memory "
          "grows (page faults) for the first 32 s of a load");
ABSL_FLAG(int, window, 64, "Gateway: calls in flight at once");
ABSL_FLAG(std::vector<std::string>, ceiling_rates,
          std::vector<std::string>({"3800", "3600", "3400", "3200", "3100", "3000", "2900", "2800",
                                    "2700", "2600", "2500", "2400", "2300", "2200", "2000", "1800",
                                    "1600", "1400", "1200", "1000", "800",  "600"}),
          "sipp UAC: calls started per second, tried in this order until a run has no "
          "failed call (empty = skip the ceiling)");
ABSL_FLAG(bool, gateway, true, "Run the gateway flow");
ABSL_FLAG(bool, sofia_floor_soa, true,
          "The bare sofia-sip flow with nua's offer/answer engine (false: NUTAG_MEDIA_ENABLE(0), "
          "our SDP as a plain body)");
ABSL_FLAG(bool, sofia_floor, false,
          "Also run the bare sofia-sip flow (bench/bare_sofia.h): the gateway's SIP flow with "
          "nothing of the gateway around it, in this process, with the same window, warm-up "
          "and nice value");
ABSL_FLAG(int, shm_mb, 1024, "Kamailio shared memory (MB)");
ABSL_FLAG(std::string, kamailio_memory, "tlsf",
          "Kamailio's memory manager for shared and private memory (-x/-X): qm, fm or tlsf");
ABSL_FLAG(int, uac_nice, -5,
          "Nice value of the calling side's one busy thread in both flows: the gateway's SIP "
          "thread (--sip_thread_nice) and sipp UAC (0 = leave both alone)");
ABSL_FLAG(bool, journal, false,
          "Run the gateway with the journal on ([state-settings] dir, docs/restart.md)");
ABSL_FLAG(std::vector<std::string>, gateway_flags, {},
          "More flags for the gateway, comma-separated (A/B experiments, e.g. "
          "--native_on_sip_thread=false)");
ABSL_FLAG(std::string, gateway_env, "", "NAME=VALUE for the gateway's environment (experiments)");

namespace telestra::testing {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU seconds (user + system) used so far by every process of group `pgid`
// (Kamailio's workers, sipp, the gateway: each runs in its own group).
double GroupCpuSeconds(pid_t pgid) {
  double total = 0;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return 0;
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  while (dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + entry->d_name + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t paren = text.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(text.substr(paren + 2));
    // After "pid (comm) ": state ppid pgrp session tty tpgid flags minflt
    // cminflt majflt cmajflt utime stime ... (8 fields between pgrp and
    // utime; before 2026-11-26 night this skipped 7 and read cmajflt and
    // utime: user time only).
    std::string state;
    long long ppid, pgrp, skip, utime, stime;
    fields >> state >> ppid >> pgrp;
    if (pgrp != pgid) continue;
    for (int i = 0; i < 8; ++i) fields >> skip;
    fields >> utime >> stime;
    total += static_cast<double>(utime + stime) / ticks;
  }
  closedir(proc);
  return total;
}

// CPU use of the processes under test over one measured interval.
struct CpuMeter {
  std::vector<std::pair<std::string, pid_t>> groups;
  std::vector<double> start;
  void Start() {
    start.clear();
    for (auto& [name, pgid] : groups) start.push_back(GroupCpuSeconds(pgid));
  }
  // "gateway 0.41 ms, kamailio 0.52 ms ..." CPU per call.
  std::string PerCall(int64_t calls) const {
    std::string text;
    for (size_t i = 0; i < groups.size(); ++i) {
      double used = GroupCpuSeconds(groups[i].second) - start[i];
      absl::StrAppend(&text, i == 0 ? "" : ", ", groups[i].first, " ",
                      absl::StrFormat("%.3f", calls > 0 ? used * 1000 / calls : 0), " ms");
    }
    return text;
  }
};

struct GatewayResult {
  int64_t completed = 0;   // ended normally within the measured interval
  int64_t failed = 0;      // any time
  int64_t unfinished = 0;  // still in flight when the drain gave up
  double seconds = 0;
  std::map<std::string, int> failure_reasons;
  std::string cpu_per_call;
};

GatewayResult RunGateway(const KamailioProcess& kamailio, CpuMeter meter) {
  GatewayResult result;
  GatewayOptions options;
  options.accounts = {{"account-1", "3001", "sip3001", kamailio.server(), true}};
  options.rtp_settings = {"port-min = 20000", "port-max = 29999"};
  options.tcp_settings = {"extended-events = true"};
  if (absl::GetFlag(FLAGS_journal)) options.state_settings = {"dir = STATE"};
  options.extra_args = {"--log_level=warn", "--mutex_deadlock_detection=false",
                        absl::StrCat("--sip_thread_nice=", absl::GetFlag(FLAGS_uac_nice))};
  for (const std::string& flag : absl::GetFlag(FLAGS_gateway_flags)) {
    options.extra_args.push_back(flag);
  }
  std::string env = absl::GetFlag(FLAGS_gateway_env);
  if (size_t eq = env.find('='); eq != std::string::npos) {
    options.env[env.substr(0, eq)] = env.substr(eq + 1);
  }
  auto gateway = GatewayProcess::Start(options);
  if (!gateway.ok()) {
    std::fprintf(stderr, "gateway: %s\n", gateway.status().ToString().c_str());
    result.failed = -1;
    return result;
  }
  auto client = NativeClient::Connect((*gateway)->native_port());
  if (!client.ok() || WaitForAccountStatus(**client, "account-1", 200) != 200) {
    std::fprintf(stderr, "account-1 did not register\n");
    result.failed = -1;
    return result;
  }
  NativeClient& c = **client;
  const std::string make_call = R"({"cmd":"make-call","account":"account-1","num":"3005"})";
  const int window = absl::GetFlag(FLAGS_window);
  Clock::time_point start = Clock::now();
  Clock::time_point measure_from =
      start +
      std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_warmup_seconds) * 1000));
  Clock::time_point stop =
      measure_from +
      std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_seconds) * 1000));
  Clock::time_point drain_deadline = stop + std::chrono::seconds(40);
  int in_flight = 0;
  std::set<int64_t> answered;
  meter.groups.insert(meter.groups.begin(), {"gateway", (*gateway)->process().pid()});
  bool metering = false;
  while (true) {
    Clock::time_point now = Clock::now();
    if (!metering && now >= measure_from) {
      meter.Start();
      metering = true;
    }
    if (metering && now >= stop && result.cpu_per_call.empty()) {
      result.cpu_per_call = meter.PerCall(result.completed);
    }
    if (now >= drain_deadline) break;
    if (now >= stop && in_flight == 0) break;
    while (now < stop && in_flight < window) {
      c.Queue(make_call);
      ++in_flight;
    }
    // Commands are pipelined: the ones that the events read so far call
    // for leave in one write when no further event is waiting.
    if (!c.HasBufferedEvent()) c.Flush();
    std::optional<NativeEvent> event = c.Next(absl::Milliseconds(100));
    if (!event) {
      if (c.closed()) break;
      continue;
    }
    std::string type = event->event();
    if (type == "call-answered") {
      int64_t id = event->Int("call_id");
      answered.insert(id);
      c.Queue(absl::StrCat(R"({"cmd":"hangup-call","account":"account-1","call_id":)", id, "}"));
    } else if (type == "call-ended") {
      --in_flight;
      int64_t id = event->Int("call_id");
      bool ok = answered.erase(id) == 1 && event->Str("reason") == "Hung up";
      Clock::time_point at = Clock::now();
      if (!ok) {
        ++result.failed;
        ++result.failure_reasons[absl::StrCat(event->Int("code"), " ", event->Str("reason"))];
      } else if (at >= measure_from && at < stop) {
        ++result.completed;
      }
    } else if (type == "fail") {
      --in_flight;
      ++result.failed;
      ++result.failure_reasons[event->Str("error")];
    }
  }
  result.unfinished = in_flight;
  result.seconds = Seconds(stop - measure_from);
  return result;
}

// The bare sofia-sip flow: 3003 -> 3005 with --window calls in flight, BYE
// as soon as the 200 arrives, the next INVITE when a call is over; all on
// the sofia thread (at --uac_nice), no API, no media.
GatewayResult RunSofiaFloor(const KamailioProcess& kamailio, CpuMeter meter) {
  GatewayResult result;
  struct State {
    absl::Mutex mu;
    bench::BareSofia* ua = nullptr;
    Clock::time_point measure_from, stop;
    int in_flight ABSL_GUARDED_BY(mu) = 0;
    std::set<uint64_t> answered;  // sofia thread only
  } state;
  auto next_call = [&state] {  // sofia thread
    state.ua->Invite(0, "3005");
  };
  bench::BareSofia::Options options;
  options.server = kamailio.server();
  options.accounts = {{"3003", "sip3003"}};
  options.nice = absl::GetFlag(FLAGS_uac_nice);
  options.soa = absl::GetFlag(FLAGS_sofia_floor_soa);
  options.hooks.on_final = [&state](uint64_t call, int status) {
    if (status >= 200 && status < 300) {
      state.answered.insert(call);
      state.ua->Bye(call);
    }
  };
  options.hooks.on_ended = [&state, &result, &next_call](uint64_t call, int status) {
    bool ok = state.answered.erase(call) == 1 && status == 200;
    Clock::time_point at = Clock::now();
    absl::MutexLock lock(&state.mu);
    if (!ok) {
      ++result.failed;
      ++result.failure_reasons[absl::StrCat(status)];
    } else if (at >= state.measure_from && at < state.stop) {
      ++result.completed;
    }
    if (at < state.stop) {
      next_call();
    } else {
      --state.in_flight;
    }
  };
  auto ua = bench::BareSofia::Start(options);
  if (!ua.ok()) {
    std::fprintf(stderr, "bare sofia: %s\n", ua.status().ToString().c_str());
    result.failed = -1;
    return result;
  }
  state.ua = ua->get();
  const int window = absl::GetFlag(FLAGS_window);
  Clock::time_point start = Clock::now();
  state.measure_from =
      start +
      std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_warmup_seconds) * 1000));
  state.stop = state.measure_from +
               std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_seconds) * 1000));
  {
    absl::MutexLock lock(&state.mu);
    state.in_flight = window;
  }
  (*ua)->Post([&] {
    for (int i = 0; i < window; ++i) next_call();
  });
  meter.groups.insert(meter.groups.begin(), {"bare sofia (this process)", getpgrp()});
  std::this_thread::sleep_until(state.measure_from);
  meter.Start();
  std::this_thread::sleep_until(state.stop);
  {
    absl::MutexLock lock(&state.mu);
    result.cpu_per_call = meter.PerCall(result.completed);
    auto drained = [&state]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) { return state.in_flight == 0; };
    state.mu.AwaitWithTimeout(absl::Condition(&drained), absl::Seconds(40));
    result.unfinished = state.in_flight;
  }
  ua->reset();  // stops the sofia thread before `state` goes
  result.seconds = Seconds(state.stop - state.measure_from);
  return result;
}

struct SippResult {
  int64_t successful = -1;
  int64_t failed = -1;
  int exit_status = -1;
  double seconds = 0;
  std::string cpu_per_call;
};

// The last number on the last line of sipp's final screen that starts with
// `label` (the cumulative column).
int64_t SippCounter(const std::string& output, const std::string& label) {
  size_t at = output.rfind(label);
  if (at == std::string::npos) return -1;
  std::string line = output.substr(at, output.find('\n', at) - at);
  std::smatch match;
  std::regex last_number(R"((\d+)\s*$)");
  if (!std::regex_search(line, match, last_number)) return -1;
  return std::stoll(match[1]);
}

// How long each ceiling run lasts: the warm-up and the measured seconds
// (sipp's counters cover the whole run).
double CeilingRunSeconds() {
  return absl::GetFlag(FLAGS_warmup_seconds) + absl::GetFlag(FLAGS_seconds);
}

SippResult RunCeiling(const KamailioProcess& kamailio, CpuMeter meter, int rate) {
  SippResult result;
  double seconds = CeilingRunSeconds();
  SippProcess::Options options;
  options.scenario = SippProcess::Scenario("uac_call.xml");
  options.calls = static_cast<int>(rate * seconds);
  options.args = {"-s",
                  "3005",
                  "-key",
                  "caller",
                  "3004",
                  "-au",
                  "3004",
                  "-ap",
                  "sip3004",
                  "-d",
                  "0",
                  "-r",
                  absl::StrCat(rate),
                  "-l",
                  "100000",
                  "-buff_size",
                  "2097152",
                  "-recv_timeout",
                  "10s"};
  options.remote = kamailio.server();
  options.timeout = absl::Seconds(seconds + 60);
  options.trace = false;
  // sipp's own CPU: it is gone from /proc when it is done; count it as a
  // reaped child instead.
  auto children_cpu = [] {
    rusage usage = {};
    getrusage(RUSAGE_CHILDREN, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  };
  double children_before = children_cpu();
  Clock::time_point start = Clock::now();
  auto sipp = SippProcess::Start(options);
  if (!sipp.ok()) {
    std::fprintf(stderr, "sipp uac: %s\n", sipp.status().ToString().c_str());
    return result;
  }
  if (int nice = absl::GetFlag(FLAGS_uac_nice); nice != 0) {
    // The same priority as the gateway's SIP thread gets in its flow (sipp
    // does all its SIP work on its main thread).
    if (setpriority(PRIO_PROCESS, static_cast<id_t>((*sipp)->pid()), nice) != 0) {
      std::fprintf(stderr, "sipp uac: cannot set nice %d: %s\n", nice, std::strerror(errno));
    }
  }
  meter.Start();
  absl::StatusOr<int> status = (*sipp)->Wait(absl::Seconds(seconds + 90));
  result.seconds = Seconds(Clock::now() - start);
  result.exit_status = status.ok() ? *status : -1;
  std::string output = (*sipp)->Output();
  result.successful = SippCounter(output, "Successful call");
  result.failed = SippCounter(output, "Failed call");
  double uac_cpu = children_cpu() - children_before;
  result.cpu_per_call = absl::StrFormat(
      "sipp uac %.3f ms, %s", result.successful > 0 ? uac_cpu * 1000 / result.successful : 0,
      meter.PerCall(result.successful));
  return result;
}

// Prints a windowed flow's figures; sets `rate` (calls/s); false if any
// call failed or did not finish.
bool Report(const char* name, const GatewayResult& r, double* rate) {
  *rate = r.seconds > 0 ? static_cast<double>(r.completed) / r.seconds : 0;
  std::printf(
      "%s: window %d, %.0f s: %lld calls completed = %.1f calls/s, %lld failed, "
      "%lld unfinished\n",
      name, absl::GetFlag(FLAGS_window), r.seconds, static_cast<long long>(r.completed), *rate,
      static_cast<long long>(r.failed), static_cast<long long>(r.unfinished));
  std::printf("  CPU per call: %s\n", r.cpu_per_call.c_str());
  for (const auto& [reason, count] : r.failure_reasons) {
    std::printf("  failure: %d x %s\n", count, reason.c_str());
  }
  return r.failed == 0 && r.unfinished == 0;
}

}  // namespace
}  // namespace telestra::testing

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace telestra::testing;
  KamailioOptions kamailio_options;
  kamailio_options.shm_mb = absl::GetFlag(FLAGS_shm_mb);
  kamailio_options.pkg_mb = 32;
  kamailio_options.shm_manager = absl::GetFlag(FLAGS_kamailio_memory);
  kamailio_options.pkg_manager = absl::GetFlag(FLAGS_kamailio_memory);
  auto kamailio = KamailioProcess::Start(kamailio_options);
  if (!kamailio.ok()) {
    std::fprintf(stderr, "kamailio: %s\n", kamailio.status().ToString().c_str());
    return 1;
  }
  // The callee: sipp answering every call, registered as 3005.
  int uas_port = PickFreePort(SOCK_DGRAM);
  if (!SippRegister((*kamailio)->server(), "3005", uas_port)) {
    std::fprintf(stderr, "sipp could not register 3005\n");
    return 1;
  }
  SippProcess::Options uas_options;
  uas_options.scenario = SippProcess::Scenario("uas_answer.xml");
  uas_options.port = uas_port;
  uas_options.calls = 100000000;
  uas_options.args = {"-s", "3005", "-buff_size", "2097152"};
  uas_options.timeout = absl::Seconds(600);
  uas_options.trace = false;
  auto uas = SippProcess::Start(uas_options);
  if (!uas.ok() || !(*uas)->WaitUntilListening(absl::Seconds(5))) {
    std::fprintf(stderr, "sipp uas did not start\n");
    return 1;
  }

  CpuMeter meter;
  meter.groups = {{"kamailio", (*kamailio)->pid()}, {"sipp uas", (*uas)->pid()}};
  bool ok = true;
  double gateway_rate = 0;
  if (absl::GetFlag(FLAGS_gateway)) {
    ok = Report("gateway", RunGateway(**kamailio, meter), &gateway_rate) && ok;
  }
  double floor_rate = 0;
  if (absl::GetFlag(FLAGS_sofia_floor)) {
    ok = Report("bare sofia", RunSofiaFloor(**kamailio, meter), &floor_rate) && ok;
  }
  double ceiling = 0;
  for (const std::string& rate_text : absl::GetFlag(FLAGS_ceiling_rates)) {
    int rate = std::stoi(rate_text);
    SippResult s = RunCeiling(**kamailio, meter, rate);
    double run_seconds = CeilingRunSeconds();
    double achieved = s.successful > 0 ? static_cast<double>(s.successful) / run_seconds : 0;
    std::printf(
        "ceiling: sipp uac -r %d for %.0f s (warm-up included): %lld successful, %lld failed, "
        "exit %d (%.1f s wall) = %.1f calls/s\n",
        rate, run_seconds, static_cast<long long>(s.successful), static_cast<long long>(s.failed),
        s.exit_status, s.seconds, achieved);
    std::printf("  CPU per call: %s\n", s.cpu_per_call.c_str());
    if (s.failed == 0 && s.exit_status == 0) {
      ceiling = achieved;
      break;
    }
  }
  if (!absl::GetFlag(FLAGS_ceiling_rates).empty()) {
    if (ceiling == 0) {
      std::printf("ceiling: no rate ran without failures\n");
      ok = false;
    } else if (gateway_rate > 0) {
      std::printf("gateway / ceiling = %.1f / %.1f = %.2f (target >= 0.80)\n", gateway_rate,
                  ceiling, gateway_rate / ceiling);
    }
    if (ceiling > 0 && floor_rate > 0) {
      std::printf("bare sofia / ceiling = %.1f / %.1f = %.2f\n", floor_rate, ceiling,
                  floor_rate / ceiling);
    }
  }
  return ok ? 0 : 1;
}
