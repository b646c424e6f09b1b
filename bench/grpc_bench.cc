// gRPC front end benchmarks (bench/run-grpc.sh, docs/benchmarks.md).
//
//   --mode=unary --port=P: GetStatus round trips against a running gateway,
//       one request at a time per client: latency percentiles, throughput.
//   --mode=session --port=P: the same request (a get_status Command) on one
//       Session stream per client, waiting for each reply.
//   --mode=fanout: Subscribe throughput in-process: the real GrpcServer and
//       EventHub (a static backend), N subscribers on their own loopback
//       connections (gRPC callback clients). The publisher broadcasts
//       --events events, never more than --window ahead of the slowest
//       subscriber (below the per-stream queue limit, so nothing is dropped);
//       the clock runs from the first broadcast until every subscriber has
//       every event.
//
// Loopback only; bounded by --requests / --events and --max_seconds.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "backend/backend.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "gateway/grpc/grpc_server.h"
#include "grpcpp/grpcpp.h"
#include "proto/telestra_service.grpc.pb.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, mode, "unary", "unary, session or fanout");
ABSL_FLAG(int, port, 3561, "unary: gRPC port of the gateway (on 127.0.0.1)");
ABSL_FLAG(std::string, account, "account-1", "unary: account to ask about");
ABSL_FLAG(int, clients, 1, "unary: concurrent clients (one channel each)");
ABSL_FLAG(int, requests, 20000, "unary: requests per client");
ABSL_FLAG(int, warmup, 500, "unary: unmeasured requests per client first");
ABSL_FLAG(int, subscribers, 1, "fanout: Subscribe streams");
ABSL_FLAG(int, events, 100000, "fanout: events to publish");
ABSL_FLAG(int, window, 2048, "fanout: most events the publisher may be ahead");
ABSL_FLAG(double, max_seconds, 60, "Stop after this long");

namespace {

using Clock = std::chrono::steady_clock;
using telestra::v1::Event;

std::shared_ptr<grpc::Channel> Channel(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection per channel
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[static_cast<size_t>(p * (sorted.size() - 1))];
}

int Unary(bool session) {
  const int clients = std::max(1, absl::GetFlag(FLAGS_clients));
  const int requests = absl::GetFlag(FLAGS_requests);
  const int warmup = absl::GetFlag(FLAGS_warmup);
  const auto max_time = std::chrono::duration<double>(absl::GetFlag(FLAGS_max_seconds));
  std::vector<std::vector<double>> latencies(clients);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  Clock::time_point start;
  absl::Notification go;
  std::atomic<int> ready{0};
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto stub = telestra::v1::Telestra::NewStub(Channel(absl::GetFlag(FLAGS_port)));
      telestra::v1::GetStatusCommand request;
      request.set_account(absl::GetFlag(FLAGS_account));
      grpc::ClientContext session_context;
      std::unique_ptr<grpc::ClientReaderWriter<telestra::v1::Command, Event>> stream;
      telestra::v1::Command command;
      *command.mutable_get_status() = request;
      if (session) stream = stub->Session(&session_context);
      auto once = [&] {
        if (session) {
          Event reply;
          return stream->Write(command) && stream->Read(&reply) && reply.has_status();
        }
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        telestra::v1::Status status;
        return stub->GetStatus(&context, request, &status).ok();
      };
      for (int i = 0; i < warmup; ++i) once();
      ready++;
      go.WaitForNotification();
      latencies[c].reserve(requests);
      for (int i = 0; i < requests && Clock::now() - start < max_time; ++i) {
        auto t0 = Clock::now();
        if (!once()) errors++;
        latencies[c].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      if (session) {
        stream->WritesDone();
        Event rest;
        while (stream->Read(&rest)) {
        }
        (void)stream->Finish();
      }
    });
  }
  while (ready < clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  start = Clock::now();
  go.Notify();
  for (auto& thread : threads) thread.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  std::printf(
      "%s: %d clients, %zu requests, errors %d: median %.1f us, p99 %.1f us, "
      "p99.9 %.1f us, %.0f req/s\n",
      session ? "Session get_status" : "GetStatus", clients, all.size(), errors.load(),
      Percentile(all, 0.5), Percentile(all, 0.99), Percentile(all, 0.999), all.size() / seconds);
  return errors == 0 ? 0 : 1;
}

// One account, never changing: the fan-out measures the front end only.
class StaticBackend : public telestra::backend::Backend {
 public:
  absl::Status Login(const telestra::v1::LoginCommand&) override { return absl::OkStatus(); }
  absl::Status Logout(absl::string_view) override { return absl::OkStatus(); }
  absl::StatusOr<int64_t> MakeCall(absl::string_view, absl::string_view,
                                   absl::FunctionRef<void(int64_t)>) override {
    return absl::UnimplementedError("bench");
  }
  absl::Status AnswerCall(absl::string_view, int64_t) override { return absl::OkStatus(); }
  absl::Status SwitchCall(absl::string_view, int64_t) override { return absl::OkStatus(); }
  absl::Status HangupCall(absl::string_view, int64_t) override { return absl::OkStatus(); }
  absl::Status TransferCall(absl::string_view, int64_t, absl::string_view,
                            std::optional<int64_t>) override {
    return absl::UnimplementedError("no");
  }
  absl::Status OpenCallAudio(absl::string_view, int64_t,
                             std::shared_ptr<telestra::backend::CallAudioTap>) override {
    return absl::UnimplementedError("no");
  }
  absl::Status SendDtmf(absl::string_view, int64_t, absl::string_view, int, DtmfDone) override {
    return absl::OkStatus();
  }
  absl::StatusOr<telestra::v1::Status> GetStatus(absl::string_view) const override {
    return Status();
  }
  std::vector<telestra::v1::Status> ListAccounts() const override { return {Status()}; }

 private:
  static telestra::v1::Status Status() {
    telestra::v1::Status status;
    status.set_account("account-1");
    status.set_account_status(200);
    return status;
  }
};

// A Subscribe stream read with gRPC's callback client API.
class Subscriber : public grpc::ClientReadReactor<Event> {
 public:
  Subscriber(telestra::v1::Telestra::Stub* stub) {
    stub->async()->Subscribe(&context_, &request_, this);
    StartRead(&event_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    received.fetch_add(1, std::memory_order_relaxed);
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override {
    final_status = status;
    done.Notify();
  }
  void Cancel() { context_.TryCancel(); }

  std::atomic<int64_t> received{0};
  absl::Notification done;
  grpc::Status final_status;

 private:
  grpc::ClientContext context_;
  telestra::v1::SubscribeRequest request_;
  Event event_;
};

int Fanout() {
  spdlog::set_level(spdlog::level::warn);
  const int subscribers = std::max(1, absl::GetFlag(FLAGS_subscribers));
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t window = absl::GetFlag(FLAGS_window);
  const auto max_time = std::chrono::duration<double>(absl::GetFlag(FLAGS_max_seconds));

  telestra::backend::EventHub hub;
  StaticBackend backend;
  telestra::backend::CommandDispatcher dispatcher(&backend, &hub);
  telestra::gateway::GrpcServer::Options options;
  options.port = 0;
  options.max_queued_events = static_cast<size_t>(window) * 2;
  telestra::gateway::GrpcServer server(options, &backend, &hub, &dispatcher);
  if (absl::Status status = server.Start(); !status.ok()) {
    std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::vector<std::unique_ptr<telestra::v1::Telestra::Stub>> stubs;
  std::vector<std::unique_ptr<Subscriber>> readers;
  for (int i = 0; i < subscribers; ++i) {
    stubs.push_back(telestra::v1::Telestra::NewStub(Channel(server.port())));
    readers.push_back(std::make_unique<Subscriber>(stubs.back().get()));
  }
  // Every stream attached (the hub counts them).
  auto attach_deadline = Clock::now() + std::chrono::seconds(10);
  while (hub.client_count() < static_cast<size_t>(subscribers) && Clock::now() < attach_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto slowest = [&] {
    int64_t low = events;
    for (auto& reader : readers) {
      low = std::min(low, reader->received.load(std::memory_order_relaxed));
    }
    return low;
  };

  Event event;
  event.mutable_account_status()->set_account("account-1");
  event.mutable_account_status()->set_reason("bench");
  auto start = Clock::now();
  int64_t published = 0;
  bool timed_out = false;
  while (published < events) {
    if (Clock::now() - start > max_time) {
      timed_out = true;
      break;
    }
    int64_t low = slowest();
    if (published - low >= window) {
      std::this_thread::yield();
      continue;
    }
    int64_t burst = std::min(events - published, window - (published - low));
    for (int64_t i = 0; i < burst; ++i) {
      event.mutable_account_status()->set_account_status(static_cast<int32_t>(published++));
      hub.Broadcast(event);
    }
  }
  while (slowest() < published && Clock::now() - start < max_time) std::this_thread::yield();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  int64_t delivered = 0;
  for (auto& reader : readers) delivered += reader->received;
  auto stats = server.stats();
  std::printf(
      "Subscribe fan-out: %d subscribers, %lld events each in %.3f s: %.0f events/s per "
      "subscriber, %.0f deliveries/s in total; dropped streams %llu%s\n",
      subscribers, static_cast<long long>(published), seconds, slowest() / seconds,
      delivered / seconds, static_cast<unsigned long long>(stats.slow_stream_drops),
      timed_out ? " (TIMED OUT)" : "");
  for (auto& reader : readers) reader->Cancel();
  for (auto& reader : readers) reader->done.WaitForNotification();
  server.Stop();
  return timed_out || stats.slow_stream_drops != 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_mode) == "unary") return Unary(false);
  if (absl::GetFlag(FLAGS_mode) == "session") return Unary(true);
  if (absl::GetFlag(FLAGS_mode) == "fanout") return Fanout();
  std::fprintf(stderr, "--mode must be unary or fanout\n");
  return 2;
}
