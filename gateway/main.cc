// telestra_gateway: keeps the SIP plan's accounts registered and serves the
// native API (TCP, null-terminated JSON). See README.md and docs/.
#include <csignal>
#include <future>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "backend/gateway_backend.h"
#include "backend/sip/sofia_sip_stack.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/signal_set.hpp"
#include "gateway/native/native_server.h"
#include "gateway/plan/plan.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, plan, "", "SIP plan file (INI); see docs/configuration.md");
ABSL_FLAG(int, native_port, -1, "Override [tcp-settings] port (0 = any free port)");
ABSL_FLAG(std::string, native_bind, "", "Override [tcp-settings] bind");
ABSL_FLAG(int, sip_port, -1, "Override [sip-settings] port (0 = any free port)");
ABSL_FLAG(int, grpc_port, -1, "Override [grpc-settings] port");
ABSL_FLAG(int, web_port, -1, "Override [web-settings] port");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, off");
ABSL_FLAG(int, io_threads, 1, "Threads serving the API ports");
ABSL_FLAG(int, shutdown_seconds, 3, "How long SIP shutdown (unregister) may take");

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
    std::fprintf(stderr, "telestra_gateway: %s\n",
                 std::string(loaded.status().message()).c_str());
    return 2;
  }
  Plan plan = *std::move(loaded);
  if (int port = absl::GetFlag(FLAGS_native_port); port >= 0) plan.tcp.port = port;
  if (std::string bind = absl::GetFlag(FLAGS_native_bind); !bind.empty()) plan.tcp.bind = bind;
  if (int port = absl::GetFlag(FLAGS_sip_port); port >= 0) plan.sip.port = port;
  if (int port = absl::GetFlag(FLAGS_grpc_port); port >= 0) plan.grpc.port = port;
  if (int port = absl::GetFlag(FLAGS_web_port); port >= 0) plan.web.port = port;

  telestra::backend::EventHub hub;
  telestra::backend::SofiaSipStack stack(plan.sip);
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
  telestra::gateway::NativeServer native(native_options, io, &dispatcher, &hub);
  if (absl::Status status = native.Start(); !status.ok()) {
    spdlog::critical("{}", std::string(status.message()));
    stack.Shutdown(absl::Seconds(1));
    return 1;
  }

  // SIGINT/SIGTERM end the io loop's wait below; the shutdown runs here.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  std::promise<int> stop_signal;
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (!ec) stop_signal.set_value(signal);
  });

  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_io_threads)); ++i) {
    threads.emplace_back([&io] { io.run(); });
  }
  backend.Start();
  spdlog::info("ready: {} accounts, native port {}, SIP port {}", plan.accounts.size(),
               native.port(), stack.port());

  int signal = stop_signal.get_future().get();
  spdlog::info("signal {}: shutting down (unregistering accounts)", signal);
  stack.Shutdown(absl::Seconds(absl::GetFlag(FLAGS_shutdown_seconds)));
  native.Stop();
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
  auto logger = spdlog::stderr_color_mt("telestra");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  return Run();
}
