#include "gateway/web/web_context.h"

#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace telestra::gateway {
namespace {

std::string NewInstanceId() {
  absl::BitGen bits;
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(bits));
}

}  // namespace

WebContext::WebContext(WebOptions options, backend::Backend* backend,
                       backend::CommandDispatcher* dispatcher, backend::EventHub* hub,
                       boost::asio::ssl::context* tls)
    : options_(std::move(options)),
      backend_(backend),
      dispatcher_(dispatcher),
      hub_(hub),
      files_(options_.web_root),
      instance_(NewInstanceId()),
      tls_(tls) {}

WebContext::Admission WebContext::RegisterWebSocket(std::weak_ptr<WebSession> session,
                                                    uint64_t* key) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return Admission::kStopped;
  if (websocket_count_ >= options_.max_sessions) return Admission::kFull;
  ++websocket_count_;
  *key = next_key_++;
  sessions_[*key] = Entry{Kind::kWebSocket, std::move(session), "", 0};
  return Admission::kAdmitted;
}

WebContext::Admission WebContext::RegisterHttp(std::weak_ptr<WebSession> session,
                                               const std::string& address, uint64_t* key) {
  std::weak_ptr<WebSession> evicted;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return Admission::kStopped;
    auto per_address = http_per_address_.find(address);
    if (per_address != http_per_address_.end() &&
        per_address->second >= options_.max_connections_per_address) {
      return Admission::kAddressFull;
    }
    if (http_count_ >= options_.max_http_connections) {
      // Make room by closing the connection that has waited longest for a
      // request (a slow or idle client), if any waits.
      auto oldest = sessions_.end();
      for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
        const Entry& entry = it->second;
        if (entry.kind != Kind::kHttp || entry.waiting_since == 0) continue;
        if (oldest == sessions_.end() || entry.waiting_since < oldest->second.waiting_since) {
          oldest = it;
        }
      }
      if (oldest == sessions_.end()) return Admission::kFull;
      evicted = oldest->second.session;
      EraseLocked(oldest);
      http_evicted++;
    }
    ++http_count_;
    ++http_per_address_[address];
    *key = next_key_++;
    sessions_[*key] = Entry{Kind::kHttp, std::move(session), address, next_wait_++};
  }
  // Outside the lock: Close posts to the session's strand.
  if (auto victim = evicted.lock()) {
    victim->Close(std::chrono::steady_clock::now(), /*count_flush=*/false);
  }
  return Admission::kAdmitted;
}

void WebContext::SetWaiting(uint64_t key, bool waiting) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  it->second.waiting_since = waiting ? next_wait_++ : 0;
}

void WebContext::EraseLocked(std::map<uint64_t, Entry>::iterator it) {
  if (it->second.kind == Kind::kHttp) {
    --http_count_;
    auto per_address = http_per_address_.find(it->second.address);
    if (per_address != http_per_address_.end() && --per_address->second <= 0) {
      http_per_address_.erase(per_address);
    }
  } else {
    --websocket_count_;
  }
  sessions_.erase(it);
}

void WebContext::Unregister(uint64_t key) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  EraseLocked(it);
}

void WebContext::CloseAll(std::chrono::steady_clock::time_point flush_deadline) {
  std::vector<std::shared_ptr<WebSession>> sessions;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    for (auto& [key, entry] : sessions_) {
      if (auto session = entry.session.lock()) sessions.push_back(std::move(session));
    }
    flushes_pending_ += static_cast<int>(sessions.size());
  }
  // Outside the lock: Close posts to the session, which unregisters later.
  for (auto& session : sessions) session->Close(flush_deadline, /*count_flush=*/true);
}

bool WebContext::WaitForFlush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto flushed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return flushes_pending_ <= 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&flushed), timeout);
}

void WebContext::Flushed() {
  absl::MutexLock lock(&mu_);
  --flushes_pending_;
}

WebStats WebContext::stats() const {
  WebStats stats;
  {
    absl::MutexLock lock(&mu_);
    stats.sessions = websocket_count_;
    stats.http_connections = http_count_;
  }
  stats.sessions_accepted = sessions_accepted;
  stats.sessions_refused = sessions_refused;
  stats.http_refused = http_refused;
  stats.http_address_refused = http_address_refused;
  stats.http_evicted = http_evicted;
  stats.http_timeouts = http_timeouts;
  stats.hosts_refused = hosts_refused;
  stats.slow_disconnects = slow_disconnects;
  stats.undelivered_events = undelivered_events;
  stats.oversize_closes = oversize_closes;
  stats.idle_timeouts = idle_timeouts;
  stats.unauthorized = unauthorized;
  stats.gaps = gaps;
  return stats;
}

}  // namespace telestra::gateway
