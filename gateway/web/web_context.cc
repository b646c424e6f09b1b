#include "gateway/web/web_context.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace telestra::gateway {

WebContext::WebContext(WebOptions options, backend::Backend* backend,
                       backend::CommandDispatcher* dispatcher, backend::EventHub* hub,
                       boost::asio::ssl::context* tls)
    : options_(std::move(options)),
      backend_(backend),
      dispatcher_(dispatcher),
      hub_(hub),
      files_(options_.web_root),
      tls_(tls),
      websocket_sessions_(std::make_shared<SessionRegistry>(
          "websocket", static_cast<size_t>(std::max(0, options_.max_sessions)))) {}

WebContext::Admission WebContext::RegisterHttp(std::weak_ptr<HttpConnection> connection,
                                               const std::string& address, uint64_t* key) {
  std::weak_ptr<HttpConnection> evicted;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return Admission::kStopped;
    auto per_address = http_per_address_.find(address);
    if (per_address != http_per_address_.end() &&
        per_address->second >= options_.max_connections_per_address) {
      return Admission::kAddressFull;
    }
    if (static_cast<int>(http_.size()) >= options_.max_http_connections) {
      // Make room by closing the connection that has waited longest for a
      // request (a slow or idle client), if any waits.
      auto oldest = http_.end();
      for (auto it = http_.begin(); it != http_.end(); ++it) {
        const HttpEntry& entry = it->second;
        if (entry.waiting_since == 0) continue;
        if (oldest == http_.end() || entry.waiting_since < oldest->second.waiting_since) {
          oldest = it;
        }
      }
      if (oldest == http_.end()) return Admission::kFull;
      evicted = oldest->second.connection;
      EraseLocked(oldest);
      Count(WebCounter::kHttpEvicted);
    }
    ++http_per_address_[address];
    *key = next_key_++;
    http_[*key] = HttpEntry{std::move(connection), address, next_wait_++};
  }
  // Outside the lock: Close posts to the connection's strand.
  if (auto victim = evicted.lock()) victim->Close();
  return Admission::kAdmitted;
}

void WebContext::SetWaiting(uint64_t key, bool waiting) {
  absl::MutexLock lock(&mu_);
  auto it = http_.find(key);
  if (it == http_.end()) return;
  it->second.waiting_since = waiting ? next_wait_++ : 0;
}

void WebContext::EraseLocked(std::map<uint64_t, HttpEntry>::iterator it) {
  auto per_address = http_per_address_.find(it->second.address);
  if (per_address != http_per_address_.end() && --per_address->second <= 0) {
    http_per_address_.erase(per_address);
  }
  http_.erase(it);
}

void WebContext::UnregisterHttp(uint64_t key) {
  absl::MutexLock lock(&mu_);
  auto it = http_.find(key);
  if (it == http_.end()) return;
  EraseLocked(it);
}

void WebContext::CloseAll(absl::Time flush_deadline) {
  std::vector<std::shared_ptr<HttpConnection>> connections;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    for (auto& [key, entry] : http_) {
      if (auto connection = entry.connection.lock()) connections.push_back(std::move(connection));
    }
  }
  // Outside the lock: Close posts to the connection, which unregisters later.
  for (auto& connection : connections) connection->Close();
  websocket_sessions_->CloseAll(flush_deadline);
}

bool WebContext::WaitForFlush(absl::Time deadline) {
  return websocket_sessions_->AwaitEmpty(deadline);
}

WebStats WebContext::stats() const {
  WebStats stats;
  const SessionRegistry::Stats sessions = websocket_sessions_->stats();
  stats.sessions = sessions.open;
  stats.sessions_accepted = sessions.admitted;
  stats.sessions_refused = sessions.refused;
  stats.slow_disconnects = sessions.slow_disconnects;
  stats.undelivered_events = sessions.undelivered_events;
  {
    absl::MutexLock lock(&mu_);
    stats.http_connections = http_.size();
  }
  stats.http_refused = counter(WebCounter::kHttpRefused);
  stats.http_address_refused = counter(WebCounter::kHttpAddressRefused);
  stats.http_evicted = counter(WebCounter::kHttpEvicted);
  stats.http_timeouts = counter(WebCounter::kHttpTimeout);
  stats.hosts_refused = counter(WebCounter::kHostRefused);
  stats.oversize_closes = counter(WebCounter::kOversizeClose);
  stats.idle_timeouts = counter(WebCounter::kIdleTimeout);
  stats.unauthorized = counter(WebCounter::kUnauthorized);
  stats.gaps = counter(WebCounter::kGap);
  return stats;
}

}  // namespace telestra::gateway
