// telestra_gateway: keeps the SIP plan's accounts registered and serves the
// native API (TCP, null-terminated JSON). See README.md and docs/.
#include <csignal>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "backend/gateway_backend.h"
#include "backend/media/rtp_media_engine.h"
#include "backend/sip/sofia_sip_stack.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/signal_set.hpp"
#include "gateway/audio/call_audio_metrics.h"
#include "gateway/audio/call_audio_session.h"
#include "gateway/front_end_options.h"
#include "gateway/grpc/grpc_server.h"
#include "gateway/io_threads.h"
#include "gateway/metrics/backend_metrics.h"
#include "gateway/metrics/metrics.h"
#include "gateway/native/native_server.h"
#include "gateway/plan/plan.h"
#include "gateway/restart_state.h"
#include "gateway/systemd_notify.h"
#include "gateway/web/web_root.h"
#include "gateway/web/web_server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

// jemalloc's settings: malloc_conf.cc.

ABSL_FLAG(std::string, plan, "", "SIP plan file (INI); see docs/configuration.md");
ABSL_FLAG(int, native_port, -1, "Override [tcp-settings] port (0 = any free port)");
ABSL_FLAG(std::string, native_bind, "", "Override [tcp-settings] bind");
ABSL_FLAG(int, sip_port, -1, "Override [sip-settings] port (0 = any free port)");
ABSL_FLAG(int, grpc_port, -1, "Override [grpc-settings] port");
ABSL_FLAG(int, web_port, -1, "Override [web-settings] port");
ABSL_FLAG(int, metrics_port, -1, "Override [metrics-settings] port (0 = no metrics)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, off");
ABSL_FLAG(int, io_threads, 1, "Threads serving the API ports");
ABSL_FLAG(bool, mutex_deadlock_detection, false,
          "Abseil's Mutex deadlock detection (lock-order checks on every lock; for debugging)");
ABSL_FLAG(int, sip_thread_nice, 100,
          "Override [sip-settings] thread-nice: the SIP thread's nice value, -20..19");
// Deprecated and ignored (a warning is logged): kept so that old command
// lines still start the gateway.
ABSL_FLAG(int, sip_busy_poll_us, -1, "Deprecated and ignored");
ABSL_FLAG(bool, native_on_sip_thread, true,
          "Read and run the native port's commands on the SIP thread (one thread wake-up "
          "per command instead of two); false: on the API threads");
ABSL_FLAG(int, sip_answer_poll_us, -1, "Deprecated and ignored");
ABSL_FLAG(int, shutdown_seconds, 3,
          "How long shutdown (unregister, end calls, write out the native clients' queued "
          "events) may take");
// gRPC front end (docs/grpc-api.md).
ABSL_FLAG(int, grpc_max_queued_events, 8192,
          "Events queued for one gRPC stream before it is ended as too slow");
// Web front end (docs/websocket-api.md).
ABSL_FLAG(std::string, web_root, "",
          "Folder of the dashboard's files (default: the binary's runfiles, else ./web)");
ABSL_FLAG(int, web_max_sessions, 256, "WebSocket sessions at once");
ABSL_FLAG(int, web_max_message_bytes, 65536, "Largest WebSocket message a client may send");
ABSL_FLAG(int, web_max_queued_bytes, 4 << 20,
          "Outbound bytes queued per WebSocket before it is dropped as not reading");
ABSL_FLAG(int, web_idle_timeout_seconds, 60,
          "Close a WebSocket silent this long (pinged after half of it)");
ABSL_FLAG(int, web_header_timeout_seconds, 10,
          "Close an HTTP connection whose request has not arrived whole after this long");
ABSL_FLAG(int, web_max_connections_per_address, 32,
          "HTTP connections (not upgraded to a WebSocket) one client address may hold");

namespace {

using telestra::backend::CommandDispatcher;
using telestra::backend::EventHub;
using telestra::gateway::RestartState;
using telestra::backend::GatewayBackend;
using telestra::backend::RtpMediaEngine;
using telestra::backend::SofiaSipStack;
using telestra::gateway::GrpcOptionsFrom;
using telestra::gateway::GrpcServer;
using telestra::gateway::MetricsWriter;
using telestra::gateway::NativeOptionsFrom;
using telestra::gateway::NativeServer;
using telestra::gateway::Plan;
using telestra::gateway::WebOptionsFrom;
using telestra::gateway::WebServer;

// A flag's value, unset when it has its "not given" default.
std::optional<int> IfSet(int value, int unset = -1) {
  return value == unset ? std::nullopt : std::optional<int>(value);
}

// The plan file with the command line's values applied and checked
// (gateway/plan/plan.h: ApplyCommandLine holds every range).
absl::StatusOr<Plan> LoadPlan() {
  const std::string plan_path = absl::GetFlag(FLAGS_plan);
  if (plan_path.empty()) return absl::InvalidArgumentError("--plan=FILE is required");
  absl::StatusOr<Plan> plan = telestra::gateway::LoadPlanFile(plan_path);
  if (!plan.ok()) return plan.status();
  telestra::gateway::CommandLineOverrides flags;
  flags.native_port = IfSet(absl::GetFlag(FLAGS_native_port));
  if (std::string bind = absl::GetFlag(FLAGS_native_bind); !bind.empty()) flags.native_bind = bind;
  flags.sip_port = IfSet(absl::GetFlag(FLAGS_sip_port));
  if (int nice = absl::GetFlag(FLAGS_sip_thread_nice); nice != 100) flags.sip_thread_nice = nice;
  flags.grpc_port = IfSet(absl::GetFlag(FLAGS_grpc_port));
  flags.web_port = IfSet(absl::GetFlag(FLAGS_web_port));
  flags.metrics_port = IfSet(absl::GetFlag(FLAGS_metrics_port));
  flags.io_threads = absl::GetFlag(FLAGS_io_threads);
  flags.shutdown_seconds = absl::GetFlag(FLAGS_shutdown_seconds);
  flags.grpc_max_queued_events = absl::GetFlag(FLAGS_grpc_max_queued_events);
  flags.web_max_sessions = absl::GetFlag(FLAGS_web_max_sessions);
  flags.web_max_message_bytes = absl::GetFlag(FLAGS_web_max_message_bytes);
  flags.web_max_queued_bytes = absl::GetFlag(FLAGS_web_max_queued_bytes);
  flags.web_idle_timeout_seconds = absl::GetFlag(FLAGS_web_idle_timeout_seconds);
  flags.web_header_timeout_seconds = absl::GetFlag(FLAGS_web_header_timeout_seconds);
  flags.web_max_connections_per_address = absl::GetFlag(FLAGS_web_max_connections_per_address);
  if (absl::Status status = ApplyCommandLine(flags, &*plan); !status.ok()) return status;
  // The SIP thread's old tuning knobs: accepted so that every command line
  // that worked still starts the gateway, ignored with a warning.
  using telestra::gateway::DeprecatedKnobWarning;
  if (absl::GetFlag(FLAGS_sip_busy_poll_us) != -1) {
    plan->warnings.push_back(DeprecatedKnobWarning("--sip_busy_poll_us"));
  }
  if (absl::GetFlag(FLAGS_sip_answer_poll_us) != -1) {
    plan->warnings.push_back(DeprecatedKnobWarning("--sip_answer_poll_us"));
  }
  return plan;
}

// The dashboard's folder: --web_root (which must hold it), else found in the
// runfiles or ./web, else "" (the WebSocket only, with a warning).
absl::StatusOr<std::string> DashboardRoot() {
  const std::string flag = absl::GetFlag(FLAGS_web_root);
  absl::StatusOr<std::string> root = telestra::gateway::FindWebRoot(flag, "");
  if (root.ok() || !flag.empty()) return root;
  spdlog::warn("{}; serving the WebSocket only", std::string(root.status().message()));
  return std::string();
}

// SIGHUP: reads the plan again and applies its accounts (GatewayBackend::
// Reload); settings sections that changed need a restart and are named in
// a warning. A plan that does not parse changes nothing.
void ReloadPlan(const Plan& running, GatewayBackend& backend) {
  absl::StatusOr<Plan> reloaded = LoadPlan();
  if (!reloaded.ok()) {
    spdlog::error("reload: {}; the running plan stays", std::string(reloaded.status().message()));
    return;
  }
  std::vector<std::string> changed = telestra::gateway::ChangedSettingsSections(running, *reloaded);
  if (!changed.empty()) {
    spdlog::warn("reload: [{}] changed; these settings apply at the next restart",
                 absl::StrJoin(changed, "], ["));
  }
  GatewayBackend::ReloadSummary summary = backend.Reload(reloaded->accounts);
  spdlog::info("reload: {} accounts added ({}), {} removed ({}), {} changed ({}), {} unchanged",
               summary.added.size(), absl::StrJoin(summary.added, ", "), summary.removed.size(),
               absl::StrJoin(summary.removed, ", "), summary.changed.size(),
               absl::StrJoin(summary.changed, ", "), summary.unchanged.size());
}

// Logs why a part did not start; true when it did.
bool Started(const absl::Status& status) {
  if (!status.ok()) spdlog::critical("{}", std::string(status.message()));
  return status.ok();
}

// Builds the parts, starts them, waits for SIGINT/SIGTERM and stops them in
// reverse order. An early return stops what was started through the parts'
// destructors (newest first); the SIP stack last, within a second.
int Run() {
  absl::StatusOr<Plan> loaded = LoadPlan();
  absl::StatusOr<std::string> web_root = loaded.ok() ? DashboardRoot() : "";
  for (const absl::Status& status : {loaded.status(), web_root.status()}) {
    if (status.ok()) continue;
    std::fprintf(stderr, "telestra_gateway: %s\n", std::string(status.message()).c_str());
    return 2;
  }
  const Plan plan = *std::move(loaded);
  for (const std::string& warning : plan.warnings) spdlog::warn("{}", warning);

  // [state-settings] dir: what the last run left (docs/restart.md). Made
  // first: every part that notes in the journal is destroyed before it.
  absl::StatusOr<RestartState> opened = RestartState::Open(plan);
  if (!Started(opened.status())) return 1;
  RestartState restart = *std::move(opened);
  EventHub hub(static_cast<size_t>(plan.tcp.history_events));  // [tcp-settings] history-events
  if (!Started(restart.RestoreHub(hub))) return 1;
  hub.StartDeliveryThread();  // broadcasts leave the SIP thread at once
  RtpMediaEngine media(plan.rtp, plan.sip.bind);
  restart.ReservePorts(media);  // before spare pairs are bound
  if (!Started(media.Start())) return 1;
  SofiaSipStack stack(plan.sip, plan.rtp, &media);
  GatewayBackend backend(plan.accounts, &stack, &hub);
  backend.set_max_audio_streams_per_call(plan.rtp.max_streams_per_call);
  backend.set_media(&media);  // live call quality in get-status
  restart.Attach(stack, backend);
  CommandDispatcher dispatcher(&backend, &hub);
  if (!Started(stack.Start(&backend))) return 1;
  restart.RestoreCalls(backend, stack);  // before the accounts register (backend.Start)
  struct StopStackOnExit {
    SofiaSipStack& stack;
    ~StopStackOnExit() { stack.Shutdown(absl::Seconds(1)); }  // idempotent
  } stop_stack_on_exit{stack};

  telestra::gateway::CallAudioStats call_audio_stats;  // gRPC CallAudio and /ws/audio
  boost::asio::io_context io;
  const bool native_on_sip_thread = absl::GetFlag(FLAGS_native_on_sip_thread);
  NativeServer native(NativeOptionsFrom(plan, native_on_sip_thread ? &stack : nullptr), io,
                      &dispatcher, &hub);
  if (!Started(native.Start())) return 1;
  WebServer::Options web_options = WebOptionsFrom(plan, *web_root);
  web_options.call_audio_stats = &call_audio_stats;
  WebServer web(std::move(web_options), io, &backend, &dispatcher, &hub);
  if (!Started(web.Start())) return 1;
  GrpcServer::Options grpc_options = GrpcOptionsFrom(plan);
  grpc_options.call_audio_stats = &call_audio_stats;
  GrpcServer grpc(std::move(grpc_options), &backend, &hub, &dispatcher);
  if (!Started(grpc.Start())) return 1;

  // Metrics (docs/metrics.md): each part writes its own, read at scrape time.
  auto metrics = std::make_shared<telestra::gateway::MetricsRegistry>();
  metrics->AddSource([&](MetricsWriter& out) {
    telestra::gateway::ExportEventHubMetrics(hub, out);
    native.ExportMetrics(out);
    telestra::gateway::ExportBackendMetrics(backend, out);
    telestra::gateway::ExportMediaMetrics(media, out);
    telestra::gateway::ExportCallAudioMetrics(call_audio_stats, out);
    telestra::gateway::ExportSipStackMetrics(stack, out);
    grpc.ExportMetrics(out);
    web.ExportMetrics(out);
    if (restart.journal() != nullptr) {
      telestra::gateway::ExportJournalMetrics(*restart.journal(), out);
    }
  });
  if (plan.metrics.port > 0) {
    if (!Started(metrics->Serve(metrics, plan.metrics.bind, plan.metrics.port))) return 1;
    spdlog::info("metrics on http://{}:{}/metrics", plan.metrics.bind, metrics->port());
  }

  // SIGINT/SIGTERM end the wait below; the shutdown runs here.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  // SIGHUP (systemctl reload) re-reads the plan's accounts.
  boost::asio::signal_set reload_signal(io, SIGHUP);
  std::function<void()> wait_for_reload = [&] {
    reload_signal.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;  // cancelled: shutting down
      telestra::gateway::NotifyReloading();  // systemd: "reloading" until the READY=1
      ReloadPlan(plan, backend);
      telestra::gateway::NotifyReady();
      wait_for_reload();
    });
  };
  wait_for_reload();
  std::promise<int> stop_signal;
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (!ec) stop_signal.set_value(signal);
  });
  telestra::gateway::IoThreads io_threads(io, plan.process.io_threads);
  backend.Start();
  spdlog::info("ready: {} accounts, native port {}, SIP port {}", plan.accounts.size(),
               native.port(), stack.port());
  telestra::gateway::NotifyReady();  // systemd (Type=notify); nothing without it

  const int signal = stop_signal.get_future().get();
  reload_signal.cancel();
  spdlog::info("signal {}: shutting down ({})", signal,
               restart.keep_calls_on_stop()
                   ? "keeping calls and registrations for the next start"
                   : "ending calls, unregistering accounts");
  telestra::gateway::NotifyStopping();
  // Unregistering, ending calls and writing out the clients' queued events
  // (their call-ended among them) all end by this deadline.
  const absl::Duration shutdown_time = absl::Seconds(plan.process.shutdown_seconds);
  const absl::Time shutdown_deadline = absl::Now() + shutdown_time;
  if (restart.keep_calls_on_stop()) {
    // An upgrade: calls and registrations stay for the next start.
    stack.StopKeepingCalls(shutdown_time);
  } else {
    stack.Shutdown(shutdown_time);
  }
  hub.AwaitDelivered(shutdown_deadline);  // call-ended reaches every session's queue
  web.Stop(shutdown_deadline);            // its sessions write out their queues meanwhile
  grpc.Stop();
  native.Stop(shutdown_deadline);
  web.WaitForFlush(shutdown_deadline);
  io_threads.Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Telestra SIP Gateway. Usage: telestra_gateway --plan=FILE");
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil without NDEBUG, which leaves Mutex deadlock
  // detection on: every lock then also takes a global spin lock shared by
  // all threads (the SIP and API threads meet there on every call). Off in
  // the service unless asked for; the integration tests ask for it.
  if (!absl::GetFlag(FLAGS_mutex_deadlock_detection)) {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  auto logger = spdlog::stderr_color_mt("telestra");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  return Run();
}
