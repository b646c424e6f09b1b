// Media load: N calls in one RtpMediaEngine looped back over 127.0.0.1 to
// N calls in a second engine (both in this process, each with its own media
// thread), G.711 both ways, for a bounded time. Reports CPU (getrusage and
// per media thread), RSS growth per call leg, packets and loss.
//
//   media_load --calls=1000 --seconds=10 [--codec=PCMU] [--record_dir=DIR]
//
// One "call" of the gateway is one leg here; the run carries 2 x N legs, so
// the machine does twice the work a gateway with N calls would.

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/media/rtp_media_engine.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(int, calls, 100, "calls per engine (1..10000)");
ABSL_FLAG(int, seconds, 10, "measured run time (1..600)");
ABSL_FLAG(std::string, codec, "PCMU", "PCMU or PCMA");
ABSL_FLAG(std::string, source, "tone:1000", "what both sides send");
ABSL_FLAG(std::string, record_dir, "", "record every leg into this folder");
ABSL_FLAG(int, port_base, 24000,
          "engine A uses 2 x 1.1 x calls ports from here, engine B the ones after");
ABSL_FLAG(int, jitter_ms, 60, "jitter buffer depth");

namespace telestra::backend {
namespace {

int64_t RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

// Time this process's threads spent runnable but waiting for a CPU
// (/proc/self/task/*/schedstat, second field): what other load on the
// machine cost the media threads.
double RunQueueWaitSeconds() {
  double total = 0;
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) return 0;
  // Bounded by the process's threads (a handful).
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream stat(std::string("/proc/self/task/") + entry->d_name + "/schedstat");
    long long running = 0;
    long long waiting = 0;
    if (stat >> running >> waiting) total += waiting / 1e9;
  }
  closedir(tasks);
  return total;
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct Totals {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t lost = 0;
  uint64_t rtcp_sent = 0;
  uint64_t rtcp_received = 0;
  uint64_t send_errors = 0;
  uint64_t underruns = 0;
  uint64_t concealed = 0;
  uint64_t late = 0;
  uint64_t overflows = 0;
  double jitter_sum_ms = 0;
  double jitter_max_ms = 0;
  int calls = 0;
};

void Add(const RtpMediaEngine& engine, int64_t id, Totals* totals) {
  std::optional<MediaStats> stats = engine.Stats(id);
  std::optional<MediaCallDiagnostics> diagnostics = engine.Diagnostics(id);
  if (!stats || !diagnostics) return;
  totals->sent += stats->packets_sent;
  totals->received += stats->packets_received;
  totals->lost += stats->packets_lost;
  totals->rtcp_sent += stats->rtcp_sent;
  totals->rtcp_received += stats->rtcp_received;
  totals->send_errors += diagnostics->send_errors;
  totals->underruns += diagnostics->jitter_buffer.underruns;
  totals->concealed += diagnostics->jitter_buffer.frames_concealed;
  totals->late += diagnostics->jitter_buffer.packets_late;
  totals->overflows += diagnostics->jitter_buffer.overflows;
  totals->jitter_sum_ms += stats->jitter_ms;
  totals->jitter_max_ms = std::max(totals->jitter_max_ms, stats->jitter_ms);
  ++totals->calls;
}

int Run() {
  const int calls = std::clamp(absl::GetFlag(FLAGS_calls), 1, 10000);
  const int seconds = std::clamp(absl::GetFlag(FLAGS_seconds), 1, 600);
  const int payload_type = absl::GetFlag(FLAGS_codec) == "PCMA" ? 8 : 0;
  const int base = absl::GetFlag(FLAGS_port_base);
  absl::StatusOr<AudioSource> source = ParseAudioSource(absl::GetFlag(FLAGS_source));
  if (!source.ok()) {
    std::fprintf(stderr, "%s\n", source.status().ToString().c_str());
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);

  RtpConfig config;
  config.rtp_timeout = 0;
  config.jitter_buffer_ms = absl::GetFlag(FLAGS_jitter_ms);
  // Each engine gets 10% spare pairs (at least 50): ports that other
  // programs on the machine hold are skipped.
  const int pairs = calls + std::max(50, calls / 10);
  config.port_min = base;
  config.port_max = base + 2 * pairs - 1;
  RtpMediaEngine a(config, "127.0.0.1");
  config.port_min = base + 2 * pairs;
  config.port_max = base + 4 * pairs - 1;
  RtpMediaEngine b(config, "127.0.0.1");
  for (RtpMediaEngine* engine : {&a, &b}) {
    absl::Status started = engine->Start();
    if (!started.ok()) {
      std::fprintf(stderr, "%s\n", started.ToString().c_str());
      return 1;
    }
  }

  const int64_t rss_before = RssKiB();
  MediaOptions options;
  options.source = *source;
  options.record_dir = absl::GetFlag(FLAGS_record_dir);
  std::vector<int> a_ports(calls);
  std::vector<int> b_ports(calls);
  for (int i = 0; i < calls; ++i) {
    options.account = "a";
    absl::StatusOr<int> a_port = a.Open(i, options);
    options.account = "b";
    absl::StatusOr<int> b_port = b.Open(i, options);
    if (!a_port.ok() || !b_port.ok()) {
      std::fprintf(stderr, "call %d: %s %s\n", i, a_port.status().ToString().c_str(),
                   b_port.status().ToString().c_str());
      return 1;
    }
    a_ports[i] = *a_port;
    b_ports[i] = *b_port;
  }
  for (int i = 0; i < calls; ++i) {
    MediaParams params;
    params.remote_address = "127.0.0.1";
    params.payload_type = payload_type;
    params.direction = MediaDirection::kSendRecv;
    params.remote_rtp_port = b_ports[i];
    a.Update(i, params);
    params.remote_rtp_port = a_ports[i];
    b.Update(i, params);
  }
  // One second of warm-up (jitter buffers fill, RTCP starts), then measure.
  absl::SleepFor(absl::Seconds(1));
  const double cpu_start = CpuSeconds();
  const double wait_start = RunQueueWaitSeconds();
  const int64_t a_thread_start = a.counters().media_thread_cpu_ns;
  const int64_t b_thread_start = b.counters().media_thread_cpu_ns;
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  const double wall = absl::ToDoubleSeconds(absl::Now() - start);
  const double cpu = CpuSeconds() - cpu_start;
  const double waited = RunQueueWaitSeconds() - wait_start;
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  RtpMediaEngine::Counters a_counters = a.counters();
  RtpMediaEngine::Counters b_counters = b.counters();
  const int64_t rss_after = RssKiB();

  Totals totals;
  for (int i = 0; i < calls; ++i) {
    Add(a, i, &totals);
    Add(b, i, &totals);
  }
  for (int i = 0; i < calls; ++i) {
    a.Close(i);
    b.Close(i);
  }

  const int legs = 2 * calls;
  const double expected_packets = static_cast<double>(totals.received + totals.lost);
  std::printf(
      "calls=%d legs=%d codec=%s seconds=%.1f (after 1 s warm-up)\n"
      "  cpu: process %.2f s = %.1f%% of one core; media threads A %.1f%% B %.1f%%; "
      "%.1f us per leg per second\n"
      "  machine: load average %.2f; our threads waited %.2f s for a CPU (%.1f%% of the run)\n"
      "  rss: %lld KiB before, %lld KiB after; %.1f KiB per leg\n"
      "  rtp (whole calls): sent %llu received %llu lost %llu (%.4f%%); send errors %llu\n"
      "  jitter: mean %.2f ms max %.2f ms; jitter buffer underruns %llu concealed %llu "
      "late %llu overflows %llu\n"
      "  rtcp: sent %llu received %llu\n"
      "  ticks: A %llu (max %.2f ms, skipped %llu) B %llu (max %.2f ms, skipped %llu)\n",
      calls, legs, payload_type == 8 ? "PCMA" : "PCMU", wall, cpu, 100 * cpu / wall,
      100 * (a_counters.media_thread_cpu_ns - a_thread_start) / 1e9 / wall,
      100 * (b_counters.media_thread_cpu_ns - b_thread_start) / 1e9 / wall, 1e6 * cpu / wall / legs,
      load[0], waited, 100 * waited / wall, static_cast<long long>(rss_before),
      static_cast<long long>(rss_after), static_cast<double>(rss_after - rss_before) / legs,
      static_cast<unsigned long long>(totals.sent),
      static_cast<unsigned long long>(totals.received),
      static_cast<unsigned long long>(totals.lost),
      expected_packets > 0 ? 100.0 * totals.lost / expected_packets : 0.0,
      static_cast<unsigned long long>(totals.send_errors),
      totals.calls > 0 ? totals.jitter_sum_ms / totals.calls : 0.0, totals.jitter_max_ms,
      static_cast<unsigned long long>(totals.underruns),
      static_cast<unsigned long long>(totals.concealed),
      static_cast<unsigned long long>(totals.late),
      static_cast<unsigned long long>(totals.overflows),
      static_cast<unsigned long long>(totals.rtcp_sent),
      static_cast<unsigned long long>(totals.rtcp_received),
      static_cast<unsigned long long>(a_counters.ticks), a_counters.max_tick_ns / 1e6,
      static_cast<unsigned long long>(a_counters.frames_skipped),
      static_cast<unsigned long long>(b_counters.ticks), b_counters.max_tick_ns / 1e6,
      static_cast<unsigned long long>(b_counters.frames_skipped));
  return 0;
}

}  // namespace
}  // namespace telestra::backend

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return telestra::backend::Run();
}
