// What the web front end's server and its sessions share. Internal to
// gateway/web/; the public API is web_server.h.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/backend.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "gateway/session/session_registry.h"
#include "gateway/web/static_files.h"

namespace boost::asio::ssl {
class context;
}

namespace telestra::gateway {

struct CallAudioStats;  // gateway/audio/call_audio_session.h

// Settings of the web front end ([web-settings] plus the --web_* flags).
struct WebOptions {
  std::string bind = "127.0.0.1";
  int port = 3552;  // 0: any free port (see WebServer::port())
  // Required from every client (page, files and /ws) when non-empty.
  std::string token;
  // TLS (https/wss) when both are set: PEM certificate chain and key files.
  std::string cert;
  std::string key;
  // The dashboard's folder; "" serves no dashboard (404), the WebSocket works.
  std::string web_root;
  // Host names (lower-case) a request's Host may name besides IP literals
  // and localhost ([web-settings] hosts; DNS-rebinding protection).
  std::vector<std::string> hosts;
  // WebSocket sessions at once; one more gets `fail` and close code 1013.
  int max_sessions = 256;
  // HTTP connections not (yet) upgraded to a WebSocket. When they are all
  // taken, the one that has waited longest for its next request is closed
  // to make room; when none is waiting, the new connection is closed.
  int max_http_connections = 256;
  // HTTP connections not (yet) upgraded, per client address; more from
  // that address are closed at once.
  int max_connections_per_address = 32;
  // Largest WebSocket message a client may send; a bigger one closes the
  // session with code 1009.
  size_t max_message_bytes = 65536;
  // Outbound bytes queued for one session before it counts as not reading
  // and is disconnected (the undelivered events are counted and logged).
  size_t max_queued_bytes = 4 << 20;
  // A session that sends nothing (not even a pong) for this long is closed;
  // the server pings it after half of it.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
  // Limit for the TLS handshake, the WebSocket handshake and the close.
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
  // Limit for receiving one HTTP request, headers and body (and for an idle
  // keep-alive): slow senders (slowloris) are closed after it.
  std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};
  // At shutdown, when no deadline is given (WebServer::Stop()): how long
  // WebSocket sessions may take to write out the events already queued for
  // them before they are closed regardless.
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(1)};
  // The gateway's call audio counters (shared with gRPC CallAudio); may be
  // null.
  CallAudioStats* call_audio_stats = nullptr;
};

struct WebStats {
  // The WebSocket sessions (the front ends' shared SessionRegistry).
  uint64_t sessions = 0;  // open now
  uint64_t sessions_accepted = 0;
  uint64_t sessions_refused = 0;    // over max_sessions
  uint64_t slow_disconnects = 0;    // sessions dropped for not reading
  uint64_t undelivered_events = 0;  // messages lost with those sessions (and at shutdown)
  // The web server's own.
  uint64_t http_connections = 0;      // plain HTTP connections open now
  uint64_t http_refused = 0;          // over max_http_connections, none to evict
  uint64_t http_address_refused = 0;  // over max_connections_per_address
  uint64_t http_evicted = 0;          // waiting connections closed to make room
  uint64_t http_timeouts = 0;         // requests (or TLS handshakes) not complete in time
  uint64_t hosts_refused = 0;         // requests whose Host is not allowed
  uint64_t oversize_closes = 0;       // sessions closed with 1009
  uint64_t idle_timeouts = 0;
  uint64_t unauthorized = 0;  // requests refused for a missing/wrong token
  uint64_t gaps = 0;          // resumes that could not be served (snapshot instead)
};

// What the web server counts of its own (the WebSocket sessions' admission,
// slow-client drops and losses are the SessionRegistry's).
enum class WebCounter {
  kHttpRefused,
  kHttpAddressRefused,
  kHttpEvicted,
  kHttpTimeout,
  kHostRefused,
  kOversizeClose,
  kIdleTimeout,
  kUnauthorized,
  kGap,
};

// An HTTP connection (not upgraded) the server can close: at shutdown, or
// to make room for a new one.
// Thread: Close from any thread (it only posts to the connection's strand).
class HttpConnection {
 public:
  virtual ~HttpConnection() = default;
  virtual void Close() = 0;
};

// The web front end's shared state: its options, the WebSocket sessions'
// registry (SessionRegistry, front_end="websocket": admission against
// max_sessions, close-all with flushing, slow-client counters) and the
// HTTP connections' own admission (per address, eviction).
// Thread: any. Lock order: mu_ is a leaf (HTTP connections are closed
// outside it); the WebSocket registry has its own lock
// (gateway/session/session_registry.h).
class WebContext {
 public:
  WebContext(WebOptions options, backend::Backend* backend, backend::CommandDispatcher* dispatcher,
             backend::EventHub* hub, boost::asio::ssl::context* tls);

  const WebOptions& options() const { return options_; }
  backend::Backend* backend() const { return backend_; }
  backend::CommandDispatcher* dispatcher() const { return dispatcher_; }
  backend::EventHub* hub() const { return hub_; }
  const StaticFiles& files() const { return files_; }
  // The gateway's instance id (EventHub::instance): lets a resuming client
  // notice that its seqs are of another numbering (another gateway, or a
  // restart without the journal).
  const std::string& instance() const { return hub_->instance(); }
  boost::asio::ssl::context* tls() const { return tls_; }  // null: plaintext
  int port() const { return port_; }
  void set_port(int port) { port_ = port; }

  // The WebSocket sessions; a session keeps it alive (it may outlive the
  // server: see WebSocketSession's destructor).
  const std::shared_ptr<SessionRegistry>& websocket_sessions() const { return websocket_sessions_; }

  enum class Admission { kAdmitted, kFull, kAddressFull, kStopped };
  // Registers an HTTP connection from `address` (waiting for its first
  // request). Refused (kAddressFull) when that address has
  // max_connections_per_address open; when max_http_connections are open,
  // the one that has waited longest for a request is closed to make room
  // (counted as kHttpEvicted), or, when none waits, refused (kFull).
  Admission RegisterHttp(std::weak_ptr<HttpConnection> connection, const std::string& address,
                         uint64_t* key);
  // An HTTP connection starts (true) or stops (false) waiting for a request.
  void SetWaiting(uint64_t key, bool waiting);
  // Idempotent.
  void UnregisterHttp(uint64_t key);

  // Stops admitting; closes every HTTP connection, and has every WebSocket
  // session write out what is queued for it (until `flush_deadline`) and
  // close. Does not wait: WaitForFlush.
  void CloseAll(absl::Time flush_deadline);
  // Waits until every WebSocket session CloseAll reached has written out
  // its queue (or ended), or `deadline`; false then. Not on an io_context
  // thread.
  bool WaitForFlush(absl::Time deadline);

  // Counts one more; returns the new count (for logs at 1, 2, 4, ...).
  uint64_t Count(WebCounter counter) { return ++counters_[static_cast<size_t>(counter)]; }

  WebStats stats() const;

 private:
  struct HttpEntry {
    std::weak_ptr<HttpConnection> connection;
    std::string address;
    // When it started waiting for a request (a counter, smaller = earlier);
    // 0 while a request is being answered.
    uint64_t waiting_since = 0;
  };

  // Removes a connection and updates the counts.
  void EraseLocked(std::map<uint64_t, HttpEntry>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t counter(WebCounter counter) const {
    return counters_[static_cast<size_t>(counter)].load();
  }

  const WebOptions options_;
  backend::Backend* const backend_;
  backend::CommandDispatcher* const dispatcher_;
  backend::EventHub* const hub_;
  const StaticFiles files_;
  boost::asio::ssl::context* const tls_;
  std::atomic<int> port_{0};
  const std::shared_ptr<SessionRegistry> websocket_sessions_;
  std::array<std::atomic<uint64_t>, static_cast<size_t>(WebCounter::kGap) + 1> counters_{};

  // Lock order: a leaf (nothing is called while it is held).
  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_key_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, HttpEntry> http_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> http_per_address_ ABSL_GUARDED_BY(mu_);
  uint64_t next_wait_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace telestra::gateway
