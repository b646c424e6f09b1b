#include "gateway/web/web_context.h"

#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"

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

WebContext::Admission WebContext::Register(Kind kind, std::weak_ptr<WebSession> session,
                                           uint64_t* key) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return Admission::kStopped;
  int& count = kind == Kind::kHttp ? http_count_ : websocket_count_;
  const int limit = kind == Kind::kHttp ? options_.max_http_connections : options_.max_sessions;
  if (count >= limit) return Admission::kFull;
  ++count;
  *key = next_key_++;
  sessions_[*key] = Entry{kind, std::move(session)};
  return Admission::kAdmitted;
}

void WebContext::Unregister(uint64_t key) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  (it->second.kind == Kind::kHttp ? http_count_ : websocket_count_)--;
  sessions_.erase(it);
}

void WebContext::CloseAll() {
  std::vector<std::weak_ptr<WebSession>> sessions;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    for (auto& [key, entry] : sessions_) sessions.push_back(entry.session);
  }
  // Outside the lock: Close posts to the session, which unregisters later.
  for (auto& weak : sessions) {
    if (auto session = weak.lock()) session->Close();
  }
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
  stats.slow_disconnects = slow_disconnects;
  stats.undelivered_events = undelivered_events;
  stats.oversize_closes = oversize_closes;
  stats.idle_timeouts = idle_timeouts;
  stats.unauthorized = unauthorized;
  stats.gaps = gaps;
  return stats;
}

}  // namespace telestra::gateway
