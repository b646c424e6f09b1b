// telestra_gateway: keeps the SIP plan's accounts registered and serves the
// native API (TCP, null-terminated JSON). See README.md and docs/.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "backend/gateway_backend.h"
#include "backend/media/rtp_media_engine.h"
#include "backend/sip/sofia_sip_stack.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/signal_set.hpp"
#include "gateway/grpc/grpc_server.h"
#include "gateway/metrics/metrics.h"
#include "gateway/native/native_server.h"
#include "gateway/plan/plan.h"
#include "gateway/web/web_root.h"
#include "gateway/web/web_server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

// jemalloc (the gateway's malloc, gateway/BUILD.bazel):
// - background_thread: freed memory goes back to the system from jemalloc's
//   own threads rather than from whichever thread happens to allocate:
//   otherwise the SIP thread pays an madvise() of about 0.1 ms every few
//   calls, on the path of call setup.
// - thp, metadata_thp: its memory is backed by transparent huge pages
//   where the kernel allows them (madvise(MADV_HUGEPAGE)). sofia-sip keeps
//   each transaction's messages for up to 32 s (timer D), so a gateway's
//   heap grows for its first half-minute of calls; in 4 KiB pages that was
//   about 18 page faults per call on the SIP thread, in call setup
//   (docs/benchmarks.md, "Huge pages").
// Read by jemalloc at start-up (MALLOC_CONF in the environment overrides
// it, e.g. MALLOC_CONF=thp:default); ignored by the sanitizers' allocators.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true,thp:always,metadata_thp:always";
}

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
          "Override [sip-settings] thread-nice (-20..19; the default 100 = the plan's)");
ABSL_FLAG(int, sip_busy_poll_us, -1,
          "Override [sip-settings] busy-poll-us (0..100000; -1 = the plan's)");
ABSL_FLAG(bool, native_on_sip_thread, true,
          "Read and run the native port's commands on the SIP thread (one thread wake-up "
          "per command instead of two); false: on the API threads");
ABSL_FLAG(int, sip_answer_poll_us, -1,
          "Override [sip-settings] answer-poll-us (0..100000; -1 = the plan's)");
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

using telestra::gateway::Plan;

int Run() {
  const std::string plan_path = absl::GetFlag(FLAGS_plan);
  if (plan_path.empty()) {
    std::fprintf(stderr, "telestra_gateway: --plan=FILE is required\n");
    return 2;
  }
  absl::StatusOr<Plan> loaded = telestra::gateway::LoadPlanFile(plan_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "telestra_gateway: %s\n", std::string(loaded.status().message()).c_str());
    return 2;
  }
  Plan plan = *std::move(loaded);
  if (int port = absl::GetFlag(FLAGS_native_port); port >= 0) plan.tcp.port = port;
  if (std::string bind = absl::GetFlag(FLAGS_native_bind); !bind.empty()) plan.tcp.bind = bind;
  if (int port = absl::GetFlag(FLAGS_sip_port); port >= 0) plan.sip.port = port;
  if (int port = absl::GetFlag(FLAGS_grpc_port); port >= 0) plan.grpc.port = port;
  if (int port = absl::GetFlag(FLAGS_web_port); port >= 0) plan.web.port = port;
  if (int port = absl::GetFlag(FLAGS_metrics_port); port >= 0) plan.metrics.port = port;
  if (int nice = absl::GetFlag(FLAGS_sip_thread_nice); nice != 100) {
    if (nice < -20 || nice > 19) {
      spdlog::critical("--sip_thread_nice={} is outside -20..19", nice);
      return 1;
    }
  }
  if (int busy_poll = absl::GetFlag(FLAGS_sip_busy_poll_us); busy_poll != -1) {
    if (busy_poll < 0 || busy_poll > 100000) {
      spdlog::critical("--sip_busy_poll_us={} is outside 0..100000", busy_poll);
      return 1;
    }
  }
  if (int answer_poll = absl::GetFlag(FLAGS_sip_answer_poll_us); answer_poll != -1) {
    if (answer_poll < 0 || answer_poll > 100000) {
      spdlog::critical("--sip_answer_poll_us={} is outside 0..100000", answer_poll);
      return 1;
    }
  }

  telestra::backend::EventHub hub;
  telestra::backend::RtpMediaEngine media(plan.rtp, plan.sip.bind);
  if (absl::Status status = media.Start(); !status.ok()) {
    spdlog::critical("{}", std::string(status.message()));
    return 1;
  }
  telestra::backend::SofiaSipStack stack(plan.sip, plan.rtp, &media);
  telestra::backend::GatewayBackend backend(plan.accounts, &stack, &hub);
  telestra::backend::CommandDispatcher dispatcher(&backend, &hub);

  if (absl::Status status = stack.Start(&backend); !status.ok()) {
    spdlog::critical("{}", std::string(status.message()));
    return 1;
  }

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  telestra::gateway::NativeServer::Options native_options;
  native_options.bind = plan.tcp.bind;
  native_options.port = plan.tcp.port;
  native_options.extended_events = plan.tcp.extended_events;
  native_options.max_clients = plan.tcp.max_clients;
  native_options.max_message_bytes = plan.tcp.max_message_bytes;
  native_options.allow = plan.tcp.allow;
  native_options.token = plan.tcp.token;
  native_options.cert = plan.tcp.cert;
  native_options.key = plan.tcp.key;
  native_options.idle_timeout = std::chrono::seconds(plan.tcp.idle_timeout);
  if (absl::GetFlag(FLAGS_native_on_sip_thread)) native_options.read_loop = &stack;
  telestra::gateway::NativeServer native(native_options, io, &dispatcher, &hub);
  if (absl::Status status = native.Start(); !status.ok()) {
    spdlog::critical("{}", std::string(status.message()));
    stack.Shutdown(absl::Seconds(1));
    return 1;
  }

  // Web front end: dashboard + WebSocket (gateway/web/, docs/websocket-api.md).
  telestra::gateway::WebServer::Options web_options;
  web_options.bind = plan.web.bind;
  web_options.port = plan.web.port;
  web_options.token = plan.web.token;
  web_options.cert = plan.web.cert;
  web_options.key = plan.web.key;
  web_options.max_sessions = std::max(1, absl::GetFlag(FLAGS_web_max_sessions));
  web_options.max_message_bytes = std::max(256, absl::GetFlag(FLAGS_web_max_message_bytes));
  web_options.max_queued_bytes = std::max(1024, absl::GetFlag(FLAGS_web_max_queued_bytes));
  web_options.idle_timeout =
      std::chrono::seconds(std::max(1, absl::GetFlag(FLAGS_web_idle_timeout_seconds)));
  web_options.header_timeout =
      std::chrono::seconds(std::max(1, absl::GetFlag(FLAGS_web_header_timeout_seconds)));
  web_options.max_connections_per_address =
      std::max(1, absl::GetFlag(FLAGS_web_max_connections_per_address));
  web_options.hosts = plan.web.hosts;
  if (absl::StatusOr<std::string> web_root =
          telestra::gateway::FindWebRoot(absl::GetFlag(FLAGS_web_root), "");
      web_root.ok()) {
    web_options.web_root = *web_root;
  } else if (!absl::GetFlag(FLAGS_web_root).empty()) {
    spdlog::critical("{}", std::string(web_root.status().message()));
    native.Stop();
    stack.Shutdown(absl::Seconds(1));
    return 2;
  } else {
    spdlog::warn("{}; serving the WebSocket only", std::string(web_root.status().message()));
  }
  telestra::gateway::WebServer web(web_options, io, &backend, &dispatcher, &hub);
  if (absl::Status status = web.Start(); !status.ok()) {
    spdlog::critical("{}", std::string(status.message()));
    native.Stop();
    stack.Shutdown(absl::Seconds(1));
    return 1;
  }

  // gRPC front end (gateway/grpc/, docs/grpc-api.md).
  telestra::gateway::GrpcServer::Options grpc_options;
  grpc_options.bind = plan.grpc.bind;
  grpc_options.port = plan.grpc.port;
  grpc_options.token = plan.grpc.token;
  grpc_options.cert_file = plan.grpc.cert;
  grpc_options.key_file = plan.grpc.key;
  grpc_options.max_queued_events =
      static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_grpc_max_queued_events)));
  grpc_options.max_streams = static_cast<size_t>(plan.grpc.max_streams);
  telestra::gateway::GrpcServer grpc(grpc_options, &backend, &hub, &dispatcher);
  if (absl::Status status = grpc.Start(); !status.ok()) {
    spdlog::critical("{}", std::string(status.message()));
    web.Stop();
    native.Stop();
    stack.Shutdown(absl::Seconds(1));
    return 1;
  }

  // Metrics (docs/metrics.md): read from the components at scrape time.
  auto metrics = std::make_shared<telestra::gateway::MetricsRegistry>();
  metrics->AddSource([&](telestra::gateway::MetricsWriter& out) {
    out.Counter("telestra_events_total", "Events published (the last seq)", hub.last_seq());
    out.Counter("telestra_undeliverable_replies_total", "Replies whose client had gone",
                hub.undeliverable_replies());
    out.Gauge("telestra_api_clients", "Clients attached to the event hub", hub.client_count());
    telestra::gateway::NativeServer::Stats native_stats = native.stats();
    out.Gauge("telestra_native_clients", "Native port connections", native_stats.clients);
    out.Counter("telestra_native_connections_total", "Native connections accepted",
                native_stats.accepted);
    out.Counter("telestra_native_refused_total", "Native connections refused (max-clients)",
                native_stats.refused);
    out.Counter("telestra_native_not_allowed_total",
                "Native connections refused ([tcp-settings] allow)", native_stats.not_allowed);
    out.Counter("telestra_native_slow_disconnects_total",
                "Native clients disconnected for not reading", native_stats.slow_disconnects);
    out.Counter("telestra_native_undelivered_events_total",
                "Events lost with disconnected slow native clients",
                native_stats.undelivered_events);
    out.Counter("telestra_native_http_closed_total",
                "Native connections closed at once because they sent an HTTP request",
                native_stats.http_closed);
    out.Counter("telestra_native_unauthenticated_total",
                "Native connections closed without authenticating ([tcp-settings] token)",
                native_stats.unauthenticated);
    out.Counter("telestra_native_idle_timeouts_total",
                "Native connections closed by [tcp-settings] idle-timeout",
                native_stats.idle_timeouts);
    out.Counter("telestra_native_tls_failures_total",
                "Native connections whose TLS handshake failed or timed out",
                native_stats.tls_failures);
    std::map<std::string, int> calls_by_state;
    for (const telestra::v1::Status& account : backend.ListAccounts()) {
      out.Gauge("telestra_account_status", "account_status of each account (200 registered)",
                account.account_status(), {{"account", account.account()}});
      for (const auto& call : account.calls()) {
        calls_by_state[telestra::v1::CallState_Name(call.state())]++;
      }
    }
    for (const auto& [state, count] : calls_by_state) {
      out.Gauge("telestra_calls", "Calls by state", count, {{"state", state}});
    }
    out.Counter("telestra_calls_started_total", "Calls placed or received",
                backend.calls_started());
    out.Gauge("telestra_media_calls", "Calls with RTP ports open", media.open_calls());
    telestra::backend::RtpMediaEngine::Counters media_counters = media.counters();
    out.Counter("telestra_media_discarded_datagrams_total",
                "Datagrams that arrived on an RTP/RTCP port of no call (read and discarded)",
                media_counters.datagrams_discarded);
    out.Counter("telestra_media_foreign_datagrams_total",
                "RTP/RTCP datagrams of a call from a source other than its far end (discarded)",
                media_counters.datagrams_foreign);
    out.Counter("telestra_media_frames_skipped_total",
                "20 ms media ticks the media thread missed beyond its 3-frame catch-up",
                media_counters.frames_skipped);
  });
  metrics->AddSource([&](telestra::gateway::MetricsWriter& out) {  // SIP user agent
    telestra::backend::SofiaSipStack::Stats stats = stack.stats();
    out.Counter("telestra_sip_untrusted_requests_total",
                "INVITEs from neither a registrar nor a [sip-settings] trusted network "
                "(answered 403)",
                stats.untrusted_requests);
    out.Counter("telestra_sip_foreign_realm_challenges_total",
                "Calls ended because a challenge came from another realm than the registrar's",
                stats.foreign_realm_challenges);
    out.Counter("telestra_sip_ring_timeouts_total",
                "Incoming calls not answered within ring-timeout (answered 480)",
                stats.ring_timeouts);
    out.Counter("telestra_sip_invite_timeouts_total",
                "Outgoing calls without a final answer within invite-timeout (cancelled)",
                stats.invite_timeouts);
    out.Counter("telestra_sip_ringing_refused_total",
                "Incoming calls refused 486 over max-ringing", stats.ringing_refused);
  });
  metrics->AddSource([&](telestra::gateway::MetricsWriter& out) {  // gRPC front end
    telestra::gateway::GrpcStats stats = grpc.stats();
    out.Gauge("telestra_grpc_streams", "gRPC Subscribe/Session streams open", stats.streams);
    out.Counter("telestra_grpc_streams_total", "gRPC Subscribe/Session streams opened",
                stats.streams_opened);
    out.Counter("telestra_grpc_streams_refused_total",
                "gRPC streams ended RESOURCE_EXHAUSTED because max-streams were open",
                stats.streams_refused);
    out.Counter("telestra_grpc_slow_stream_drops_total",
                "gRPC streams ended RESOURCE_EXHAUSTED for not keeping up",
                stats.slow_stream_drops);
    out.Counter("telestra_grpc_undelivered_events_total", "Events lost with those gRPC streams",
                stats.undelivered_events);
    out.Counter("telestra_grpc_unauthenticated_total",
                "gRPC calls refused for a missing or wrong token", stats.unauthenticated);
    out.Counter("telestra_grpc_resume_gaps_total",
                "Subscribe resumes that could not replay every missed event", stats.gaps_reported);
  });
  metrics->AddSource([&](telestra::gateway::MetricsWriter& out) {  // web front end
    telestra::gateway::WebStats stats = web.stats();
    out.Gauge("telestra_web_sessions", "WebSocket sessions open", stats.sessions);
    out.Gauge("telestra_web_http_connections", "HTTP connections open (not upgraded)",
              stats.http_connections);
    out.Counter("telestra_web_sessions_refused_total",
                "WebSocket sessions refused (max-sessions): fail, then close 1013",
                stats.sessions_refused);
    out.Counter("telestra_web_http_refused_total",
                "HTTP connections closed at once: every slot busy with a request",
                stats.http_refused);
    out.Counter("telestra_web_http_address_refused_total",
                "HTTP connections closed at once: too many from that client address",
                stats.http_address_refused);
    out.Counter("telestra_web_http_evicted_total",
                "HTTP connections waiting for a request closed to make room for a new one",
                stats.http_evicted);
    out.Counter("telestra_web_http_timeouts_total",
                "HTTP connections closed because a request did not arrive whole in time",
                stats.http_timeouts);
    out.Counter("telestra_web_hosts_refused_total",
                "HTTP requests and WebSocket upgrades refused for their Host (DNS rebinding)",
                stats.hosts_refused);
    out.Counter("telestra_web_unauthorized_total", "Web requests refused for the token",
                stats.unauthorized);
    out.Counter("telestra_web_slow_disconnects_total",
                "WebSocket sessions disconnected for not reading", stats.slow_disconnects);
    out.Counter("telestra_web_undelivered_events_total",
                "Events lost with disconnected or shut-down WebSocket sessions",
                stats.undelivered_events);
  });
  if (plan.metrics.port > 0) {
    if (absl::Status status = metrics->Serve(metrics, plan.metrics.bind, plan.metrics.port);
        !status.ok()) {
      spdlog::critical("{}", std::string(status.message()));
      grpc.Stop();
      web.Stop();
      native.Stop();
      stack.Shutdown(absl::Seconds(1));
      return 1;
    }
    spdlog::info("metrics on http://{}:{}/metrics", plan.metrics.bind, metrics->port());
  }

  // SIGINT/SIGTERM end the io loop's wait below; the shutdown runs here.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  std::promise<int> stop_signal;
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (!ec) stop_signal.set_value(signal);
  });

  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_io_threads)); ++i) {
    threads.emplace_back([&io, i] {
      // Thread names for top -H, perf and gdb (at most 15 characters).
      pthread_setname_np(pthread_self(), absl::StrCat("telestra-io-", i).substr(0, 15).c_str());
      io.run();
    });
  }
  backend.Start();
  spdlog::info("ready: {} accounts, native port {}, SIP port {}", plan.accounts.size(),
               native.port(), stack.port());

  int signal = stop_signal.get_future().get();
  spdlog::info("signal {}: shutting down (unregistering accounts)", signal);
  // Unregistering, ending calls and writing out the clients' queued events
  // (their call-ended among them) all end by this deadline.
  const absl::Time shutdown_deadline =
      absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_shutdown_seconds));
  stack.Shutdown(absl::Seconds(absl::GetFlag(FLAGS_shutdown_seconds)));
  // Web front end: its sessions write out their queues meanwhile.
  web.Stop(shutdown_deadline);
  grpc.Stop();  // gRPC front end
  native.Stop(shutdown_deadline);
  web.WaitForFlush(shutdown_deadline);
  work.reset();
  // Let the sessions flush and close, then stop the loop.
  boost::asio::post(io, [&io] { io.stop(); });
  for (std::thread& thread : threads) thread.join();
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
