// What the web front end's server and its sessions share. Internal to
// gateway/web/; the public API is web_server.h.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "backend/backend.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "gateway/web/static_files.h"

namespace boost::asio::ssl {
class context;
}

namespace telestra::gateway {

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
  // WebSocket sessions at once; one more gets `fail` and close code 1013.
  int max_sessions = 256;
  // HTTP connections not (yet) upgraded to a WebSocket; more are closed at once.
  int max_http_connections = 256;
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
  // Limit for receiving one HTTP request (and for an idle keep-alive).
  std::chrono::milliseconds http_timeout{std::chrono::seconds(30)};
};

struct WebStats {
  uint64_t sessions = 0;          // WebSocket sessions open now
  uint64_t http_connections = 0;  // plain HTTP connections open now
  uint64_t sessions_accepted = 0;
  uint64_t sessions_refused = 0;    // over max_sessions
  uint64_t http_refused = 0;        // over max_http_connections
  uint64_t slow_disconnects = 0;    // sessions dropped for not reading
  uint64_t undelivered_events = 0;  // messages lost with those sessions
  uint64_t oversize_closes = 0;     // sessions closed with 1009
  uint64_t idle_timeouts = 0;
  uint64_t unauthorized = 0;  // requests refused for a missing/wrong token
  uint64_t gaps = 0;          // resumes that could not be served (snapshot instead)
};

// A connection the server can close at shutdown.
// Thread: Close from any thread.
class WebSession {
 public:
  virtual ~WebSession() = default;
  virtual void Close() = 0;
};

// Thread: any.
class WebContext {
 public:
  WebContext(WebOptions options, backend::Backend* backend, backend::CommandDispatcher* dispatcher,
             backend::EventHub* hub, boost::asio::ssl::context* tls);

  const WebOptions& options() const { return options_; }
  backend::Backend* backend() const { return backend_; }
  backend::CommandDispatcher* dispatcher() const { return dispatcher_; }
  backend::EventHub* hub() const { return hub_; }
  const StaticFiles& files() const { return files_; }
  // Random per process: lets a resuming client notice a restart.
  const std::string& instance() const { return instance_; }
  boost::asio::ssl::context* tls() const { return tls_; }  // null: plaintext
  int port() const { return port_; }
  void set_port(int port) { port_ = port; }

  enum class Kind { kHttp, kWebSocket };
  enum class Admission { kAdmitted, kFull, kStopped };
  // Registers a session so that CloseAll reaches it; refused when `kind`
  // is at its limit or the server stopped. `*key` is set when admitted.
  Admission Register(Kind kind, std::weak_ptr<WebSession> session, uint64_t* key);
  // Idempotent.
  void Unregister(uint64_t key);
  // Stops admitting and closes every registered session.
  void CloseAll();

  WebStats stats() const;

  // Counters the sessions bump.
  std::atomic<uint64_t> sessions_accepted{0};
  std::atomic<uint64_t> sessions_refused{0};
  std::atomic<uint64_t> http_refused{0};
  std::atomic<uint64_t> slow_disconnects{0};
  std::atomic<uint64_t> undelivered_events{0};
  std::atomic<uint64_t> oversize_closes{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> unauthorized{0};
  std::atomic<uint64_t> gaps{0};

 private:
  struct Entry {
    Kind kind;
    std::weak_ptr<WebSession> session;
  };

  const WebOptions options_;
  backend::Backend* const backend_;
  backend::CommandDispatcher* const dispatcher_;
  backend::EventHub* const hub_;
  const StaticFiles files_;
  const std::string instance_;
  boost::asio::ssl::context* const tls_;
  std::atomic<int> port_{0};

  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_key_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Entry> sessions_ ABSL_GUARDED_BY(mu_);
  int http_count_ ABSL_GUARDED_BY(mu_) = 0;
  int websocket_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace telestra::gateway
