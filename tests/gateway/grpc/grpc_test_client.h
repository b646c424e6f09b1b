// Test helpers for the gRPC front end: channels, stubs and a stream reader
// that collects events on its own thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/telestra_service.grpc.pb.h"

namespace telestra::testing {

struct ChannelOptions {
  std::string token;          // sent as "authorization: Bearer <token>" when set
  std::string root_cert_pem;  // TLS when set (target name "localhost")
  // A small receive window and no BDP probing: a client that does not read
  // then stalls the server's writes after a few events.
  bool small_window = false;
};

// A channel to 127.0.0.1:port.
std::shared_ptr<grpc::Channel> MakeChannel(int port, const ChannelOptions& options = {});

// Sets the bearer token and a deadline (default 10 s) on a client context.
void Prepare(grpc::ClientContext& context, const std::string& token = "",
             absl::Duration timeout = absl::Seconds(10));

// The client's view of an Event, for messages: "account_status{account-1 200} #12".
std::string Describe(const telestra::v1::Event& event);

// One Subscribe or Session stream, read on a background thread.
// Thread: the test thread calls everything; the reader thread only appends.
class EventStreamReader {
 public:
  using Match = std::function<bool(const telestra::v1::Event&)>;

  // Subscribe. Returns once the server's initial metadata arrived (so the
  // stream is attached to the hub), or the stream failed. With `paused`,
  // nothing is read until Resume(): a stalled client.
  static std::unique_ptr<EventStreamReader> Subscribe(telestra::v1::Telestra::Stub* stub,
                                                      const telestra::v1::SubscribeRequest& request,
                                                      const std::string& token = "",
                                                      bool paused = false);

  // Session: the same, plus Send().
  static std::unique_ptr<EventStreamReader> Session(telestra::v1::Telestra::Stub* stub,
                                                    const std::string& token = "");

  // Starts reading (after `paused`).
  void Resume();

  ~EventStreamReader();

  // Session only: writes one command; false if the stream is broken.
  bool Send(const telestra::v1::Command& command);
  // Session only: closes the sending side.
  void SendDone();

  // The first event not yet returned by Next/WaitFor that satisfies `match`
  // (events skipped on the way are consumed); nullopt on timeout or end.
  std::optional<telestra::v1::Event> WaitFor(const Match& match,
                                             absl::Duration timeout = absl::Seconds(10));
  std::optional<telestra::v1::Event> Next(absl::Duration timeout = absl::Seconds(10));

  // Everything received so far.
  std::vector<telestra::v1::Event> events() const;
  size_t count() const;
  // Waits until at least `n` events arrived.
  bool WaitForCount(size_t n, absl::Duration timeout = absl::Seconds(10));

  // The status the stream ended with, once it ended (nullopt on timeout).
  std::optional<grpc::Status> WaitForEnd(absl::Duration timeout = absl::Seconds(10));

  // Initial metadata value ("" if absent).
  std::string Metadata(const std::string& key) const;
  bool got_metadata() const { return got_metadata_; }

  // Cancels the RPC.
  void Cancel() { context_.TryCancel(); }

 private:
  EventStreamReader() = default;
  void ReadInitialMetadata();

  std::function<bool(telestra::v1::Event*)> read_;
  std::function<grpc::Status()> finish_;

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<telestra::v1::Event>> reader_;
  std::unique_ptr<grpc::ClientReaderWriter<telestra::v1::Command, telestra::v1::Event>> session_;
  bool got_metadata_ = false;
  std::multimap<std::string, std::string> metadata_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::vector<telestra::v1::Event> events_ ABSL_GUARDED_BY(mu_);
  size_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
};

// Calls `method` (e.g. "/grpc.health.v1.Health/Check") with a serialized
// request and returns the first serialized response: for services whose
// stubs the tests do not have (health, reflection).
absl::StatusOr<std::string> CallRaw(const std::shared_ptr<grpc::Channel>& channel,
                                    const std::string& method, const std::string& request);

// Polls GetStatus until account_status == want (or the deadline); returns
// the last status seen (-1 if none).
int WaitForAccountStatus(telestra::v1::Telestra::Stub* stub, const std::string& account, int want,
                         const std::string& token = "", absl::Duration timeout = absl::Seconds(10));

}  // namespace telestra::testing
