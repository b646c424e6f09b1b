#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/backend.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "gateway/metrics/metrics.h"
#include "gateway/web/web_context.h"

namespace boost::asio::ssl {
class context;
}

namespace telestra::gateway {

// The web front end ([web-settings], docs/websocket-api.md), on Boost.Beast:
//   GET /        the dashboard's static files (web/), no-cache + ETag
//   GET /healthz JSON counters, never needs the token
//   GET /ws      WebSocket: the native port's JSON commands and events, one
//                per text message, extended, opening with a snapshot (or a
//                replay when the client resumes after a seq)
//   GET /ws/audio WebSocket: one call's audio both ways (binary PCM frames,
//                JSON events), opened before the upgrade (400/404/429)
// With a token configured every other request needs it (?token=, an
// `Authorization: Bearer` header, or the cookie the page gets); with cert and
// key, everything is served over TLS. Every request but /healthz must name
// an allowed Host (DNS rebinding; HostAllowed in http_util.h). Slow HTTP
// clients are bounded: header_timeout per request, a per-address limit, and
// the longest-waiting connection evicted when every slot is taken.
//
// Thread: Start/Stop/stats from any thread; connections run on the
// io_context's threads, each on its own strand.
class WebServer {
 public:
  using Options = WebOptions;
  using Stats = WebStats;

  WebServer(Options options, boost::asio::io_context& io, backend::Backend* backend,
            backend::CommandDispatcher* dispatcher, backend::EventHub* hub);
  ~WebServer();

  // Loads the TLS files (if any), binds and starts accepting.
  absl::Status Start();
  // Stops accepting and closes every connection (WebSocket close code
  // 1001); WebSocket sessions first write out the events already queued
  // for them (a client that was behind still gets its call-ended), until
  // `flush_deadline` (default: shutdown_grace from now). Does not wait:
  // see WaitForFlush. Idempotent.
  void Stop(absl::Time flush_deadline);
  void Stop();
  // After Stop: waits until every WebSocket session has written out its
  // queue, or `deadline`; false if some had not. Not on one of the
  // io_context's threads.
  bool WaitForFlush(absl::Time deadline);

  int port() const { return port_; }
  bool tls() const { return tls_ != nullptr; }
  // Random per process; reported in the snapshot (see docs/websocket-api.md).
  const std::string& instance() const { return context_->instance(); }
  Stats stats() const { return context_->stats(); }
  // Its families (docs/metrics.md): telestra_web_* .
  void ExportMetrics(MetricsWriter& out) const;

 private:
  void DoAccept();
  void OnAccept(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  std::unique_ptr<WebContext> context_;
  boost::asio::ip::tcp::acceptor acceptor_;
  // Retries accept after a failure (on the acceptor's strand).
  boost::asio::steady_timer accept_retry_;
  uint64_t accept_failures_ = 0;  // in the current burst
  int port_ = 0;
  std::atomic<bool> stopped_{false};
};

}  // namespace telestra::gateway
