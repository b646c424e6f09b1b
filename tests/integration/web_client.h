// Test clients for the gateway's web front end: a blocking WebSocket client
// (Boost.Beast) and a one-shot HTTP client.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/integration/native_client.h"

namespace telestra::testing {

struct WebClientOptions {
  std::string target = "/ws";                  // path and query
  std::map<std::string, std::string> headers;  // extra handshake headers
  bool tls = false;                            // wss://, certificate not verified
  int receive_buffer_bytes = 0;                // SO_RCVBUF before connecting (0: default)
  absl::Duration timeout = absl::Seconds(10);  // connect + handshake
  // Keep binary messages too (NextMessage); otherwise they are dropped.
  bool keep_binary = false;
};

// One WebSocket message, text or binary.
struct WebMessage {
  bool text = false;
  std::string data;
};

// A WebSocket client that reads in the background of its own calls: messages
// are collected whenever Next/WaitFor/Send run its event loop (and Beast
// answers the server's pings meanwhile). PauseReading() stops collecting, so
// the client looks stalled to the server.
// Thread: one thread.
class WebClient {
 public:
  // Connects to 127.0.0.1:port. On a refused upgrade the error names the
  // HTTP status ("HTTP 401").
  static absl::StatusOr<std::unique_ptr<WebClient>> Connect(int port,
                                                            const WebClientOptions& options = {});
  ~WebClient();

  // Sends one text (or binary) message; false once the connection failed.
  bool Send(const std::string& text, absl::Duration timeout = absl::Seconds(5));
  bool SendBinary(const std::string& bytes, absl::Duration timeout = absl::Seconds(5));

  // The next text message, or nullopt on timeout or when the connection
  // closed (see closed()).
  std::optional<NativeEvent> Next(absl::Duration timeout = absl::Seconds(5));
  std::optional<NativeEvent> WaitFor(const std::function<bool(const NativeEvent&)>& match,
                                     absl::Duration timeout = absl::Seconds(10));
  // With keep_binary: the next message, text or binary, in the order they
  // came (Next then drops the binary messages before the next text).
  std::optional<WebMessage> NextMessage(absl::Duration timeout = absl::Seconds(5));

  // Stops reading: the server's messages pile up in the kernel buffers.
  void PauseReading();
  // Collects messages again (from the next Next/WaitFor on).
  void ResumeReading();

  // Sends a close frame (normal closure) and waits for the server's.
  void Close(absl::Duration timeout = absl::Seconds(5));

  bool closed() const;
  // The close code the server sent (0 if none), and the error that ended
  // the connection.
  int close_code() const;
  std::string close_error() const;
  // Bytes of the messages received so far.
  const std::vector<NativeEvent>& skipped() const;

 private:
  struct Impl;
  explicit WebClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string Header(const std::string& lower_name) const;
};

// One request to 127.0.0.1:port over a fresh connection.
absl::StatusOr<HttpResult> HttpRequest(int port, const std::string& method,
                                       const std::string& target,
                                       const std::map<std::string, std::string>& headers = {},
                                       bool tls = false);

// Sends `raw` bytes as they are and returns the status line's code (for
// targets no client library would send, like "/../x").
absl::StatusOr<int> RawHttpStatus(int port, const std::string& raw);

}  // namespace telestra::testing
