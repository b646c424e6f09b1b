#include "gateway/native/native_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/error.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/write.hpp"
#include "gateway/native/framer.h"
#include "gateway/native/json_codec.h"
#include "gateway/native/native_session.h"
#include "gateway/session/outbox.h"
#include "gateway/session/wire_slots.h"
#include "spdlog/spdlog.h"

namespace telestra::gateway {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using SteadyTime = std::chrono::steady_clock::time_point;

// Pause before accepting again after accept() failed (out of descriptors).
constexpr std::chrono::milliseconds kAcceptRetry(100);

NativeServer::NativeServer(Options options, asio::io_context& io,
                           backend::CommandDispatcher* dispatcher, backend::EventHub* hub)
    : options_(std::move(options)),
      io_(io),
      dispatcher_(dispatcher),
      hub_(hub),
      acceptor_(asio::make_strand(io)),
      accept_retry_(acceptor_.get_executor()),
      registry_(std::make_shared<SessionRegistry>(
          "native", static_cast<size_t>(std::max(0, options_.max_clients)))) {}

NativeServer::~NativeServer() {
  Stop();
  std::map<const NativeSession*, std::shared_ptr<NativeSession>> held;
  {
    absl::MutexLock lock(&held_mu_);
    held.swap(held_);
  }
  // `held` goes here, outside the lock: a session whose Shutdown never ran
  // (the io_context stopped first) is destroyed now.
}

void NativeServer::Hold(std::shared_ptr<NativeSession> session) {
  absl::MutexLock lock(&held_mu_);
  const NativeSession* key = session.get();
  held_[key] = std::move(session);
}

std::shared_ptr<NativeSession> NativeServer::Release(const NativeSession* session) {
  absl::MutexLock lock(&held_mu_);
  auto it = held_.find(session);
  if (it == held_.end()) return nullptr;
  std::shared_ptr<NativeSession> released = std::move(it->second);
  held_.erase(it);
  return released;
}

absl::Status NativeServer::Start() {
  error_code ec;
  if (!options_.cert.empty() || !options_.key.empty()) {
    tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                      ec);
    if (!ec) tls_->use_certificate_chain_file(options_.cert, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "native port: cannot load the TLS certificate '", options_.cert, "': ", ec.message()));
    }
    tls_->use_private_key_file(options_.key, asio::ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("native port: cannot load the TLS key '",
                                                     options_.key, "': ", ec.message()));
    }
  }
  auto address = asio::ip::make_address(options_.bind, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("native port: bad bind address '", options_.bind, "'"));
  }
  absl::StatusOr<backend::NetworkList> allow = backend::NetworkList::Parse(options_.allow);
  if (!allow.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("native port: bad allow network: ", allow.status().message()));
  }
  allow_ = *std::move(allow);
  tcp::endpoint endpoint(address, static_cast<uint16_t>(options_.port));
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("native port: cannot listen on ", options_.bind, ":",
                                               options_.port, ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  spdlog::info("native API listening on {}:{}{}{}", options_.bind, port_, tls_ ? " (TLS)" : "",
               options_.token.empty() ? "" : ", clients must authenticate");
  asio::post(acceptor_.get_executor(), [this] { DoAccept(); });
  return absl::OkStatus();
}

void NativeServer::DoAccept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Out of descriptors (EMFILE) or memory: the connection stays in the
      // backlog and accept() would fail again at once. Log the first failure
      // of a burst and retry after a pause instead of spinning.
      if (accept_failures_++ == 0) {
        spdlog::warn("native port accept failed: {}; retrying every {} ms", ec.message(),
                     kAcceptRetry.count());
      }
      accept_retry_.expires_after(kAcceptRetry);
      accept_retry_.async_wait([this](error_code ec) {
        if (!ec && acceptor_.is_open()) DoAccept();
      });
      return;
    }
    if (accept_failures_ > 0) {
      spdlog::info("native port accepting again after {} failed accepts", accept_failures_);
      accept_failures_ = 0;
    }
    if (!Allowed(socket)) {
      not_allowed_++;
      error_code ignored;
      spdlog::warn("native port: refused a client from {}: address not allowed",
                   socket.remote_endpoint(ignored).address().to_string());
      Refuse(std::move(socket), absl::PermissionDeniedError("Address not allowed"));
    } else {
      auto session = std::make_shared<NativeSession>(this, std::move(socket));
      switch (registry_->Add(session.get())) {
        case SessionRegistry::Admission::kAdmitted:
          session->Start();
          break;
        case SessionRegistry::Admission::kFull:
          spdlog::warn("native port: refused a client, max-clients ({}) reached",
                       options_.max_clients);
          Refuse(session->TakeSocket(),
                 absl::ResourceExhaustedError(
                     absl::StrCat("Too many clients (max-clients is ", options_.max_clients, ")")));
          break;
        case SessionRegistry::Admission::kClosed:
          return;  // stopping
      }
    }
    if (acceptor_.is_open()) DoAccept();
  });
}

bool NativeServer::Allowed(const tcp::socket& socket) const {
  if (allow_.empty()) return true;
  error_code ec;
  asio::ip::address peer = socket.remote_endpoint(ec).address();
  return !ec && allow_.Contains(peer);
}

// Tells a refused client why (over max-clients, address not allowed), then
// closes: the fail is written, the sending side shut down, and the socket
// closed when the client closes or after a grace period (closing with unread
// input would reset the connection and could destroy the fail before the
// client reads it).
void NativeServer::Refuse(tcp::socket socket, const absl::Status& why) {
  if (tls_) {
    // The fail would have to wait for a TLS handshake: just close.
    error_code ignored;
    socket.close(ignored);
    return;
  }
  struct Refused {
    explicit Refused(tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
    tcp::socket socket;
    asio::steady_timer timer;
    std::string text;
    std::array<char, 512> sink;
    void Drain(std::shared_ptr<Refused> self) {
      socket.async_read_some(asio::buffer(sink), [self](error_code ec, size_t) {
        if (ec) {
          self->timer.cancel();
          error_code ignored;
          self->socket.close(ignored);
          return;
        }
        self->Drain(self);
      });
    }
  };
  auto refused = std::make_shared<Refused>(std::move(socket));
  refused->text = WireFrame(backend::CommandDispatcher::FailEvent("", why, ""), false);
  asio::async_write(refused->socket, asio::buffer(refused->text), [refused](error_code ec, size_t) {
    error_code ignored;
    refused->socket.shutdown(tcp::socket::shutdown_send, ignored);
    refused->timer.expires_after(std::chrono::seconds(2));
    refused->timer.async_wait([refused](error_code ec) {
      if (ec) return;  // cancelled: the client closed first
      error_code ignored;
      refused->socket.close(ignored);
    });
    refused->Drain(refused);
  });
}

void NativeServer::Stop(absl::Time flush_deadline) {
  if (stopped_.exchange(true)) return;
  asio::post(acceptor_.get_executor(), [this] {
    error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
  const absl::Duration flush = std::max(flush_deadline - absl::Now(), absl::ZeroDuration());
  // What was published before (the call-ended events of the calls that
  // shutdown ended) goes into the clients' outboxes first.
  if (flush > absl::ZeroDuration()) hub_->AwaitDelivered(flush_deadline);
  const uint64_t open = registry_->stats().open;
  if (flush > absl::ZeroDuration() && open > 0) {
    spdlog::info(
        "native port: closing {} clients once their queued events are written (at most {})", open,
        absl::FormatDuration(flush));
  }
  // The sessions write on the io_context's threads and leave the registry
  // as they close (or, with a read loop, when their watch lets them go).
  registry_->CloseAll(flush_deadline);
  const bool all_closed = registry_->AwaitEmpty(flush_deadline);
  if (!all_closed && flush > absl::ZeroDuration()) {
    spdlog::warn("native port: {} clients still had events to write at the shutdown deadline",
                 registry_->stats().open);
  }
}

NativeServer::Stats NativeServer::stats() const {
  const SessionRegistry::Stats shared = registry_->stats();
  Stats stats;
  stats.clients = shared.open;
  stats.accepted = shared.admitted;
  stats.refused = shared.refused;
  stats.slow_disconnects = shared.slow_disconnects;
  stats.undelivered_events = shared.undelivered_events;
  stats.not_allowed = not_allowed_;
  stats.http_closed = http_closed_;
  stats.unauthenticated = unauthenticated_;
  stats.idle_timeouts = idle_timeouts_;
  stats.tls_failures = tls_failures_;
  stats.resume_gaps = resume_gaps_->load();
  return stats;
}

void NativeServer::ExportMetrics(MetricsWriter& out) const {
  registry_->ExportMetrics(out);
  const Stats stats = this->stats();
  out.Gauge("telestra_native_clients", "Native port connections", stats.clients);
  out.Counter("telestra_native_connections_total", "Native connections accepted", stats.accepted);
  out.Counter("telestra_native_refused_total", "Native connections refused (max-clients)",
              stats.refused);
  out.Counter("telestra_native_not_allowed_total",
              "Native connections refused ([tcp-settings] allow)", stats.not_allowed);
  out.Counter("telestra_native_slow_disconnects_total",
              "Native clients disconnected for not reading", stats.slow_disconnects);
  out.Counter("telestra_native_undelivered_events_total",
              "Events lost with disconnected slow native clients", stats.undelivered_events);
  out.Counter("telestra_native_http_closed_total",
              "Native connections closed at once because they sent an HTTP request",
              stats.http_closed);
  out.Counter("telestra_native_unauthenticated_total",
              "Native connections closed without authenticating ([tcp-settings] token)",
              stats.unauthenticated);
  out.Counter("telestra_native_idle_timeouts_total",
              "Native connections closed by [tcp-settings] idle-timeout", stats.idle_timeouts);
  out.Counter("telestra_native_tls_failures_total",
              "Native connections whose TLS handshake failed or timed out", stats.tls_failures);
  out.Counter("telestra_native_resume_gaps_total",
              "Native resumes (subscribe with after_seq) answered \"Events lost\" and a snapshot",
              stats.resume_gaps);
}

}  // namespace telestra::gateway
