#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/command_dispatcher.h"
#include "backend/event_hub.h"
#include "backend/fd_loop.h"
#include "boost/asio/io_context.hpp"
#include "backend/network_list.h"
#include "gateway/metrics/metrics.h"
#include "gateway/session/session_registry.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"

namespace boost::asio::ssl {
class context;
}

namespace telestra::gateway {

class NativeSession;

// The native TCP port (docs/native-api.md): null-terminated JSON commands in,
// events out. One NativeSession per client; replies go to the requester,
// broadcasts to everyone (through the EventHub).
//
// Optional protections (docs/native-api.md, "Security"): a shared secret
// each connection must present first (`token`), TLS (`cert`, `key`), an idle
// timeout; a connection that speaks HTTP is always closed at once.
//
// Thread: Start/Stop/stats from any thread; sessions run on the io_context's
// threads, each on its own strand, except that with Options::read_loop their
// commands are read and run on that loop's thread (plaintext connections
// only: TLS connections are read and written on their strand). Events are
// written by the event hub's delivering thread (NativeSession, "Writing").
// Stop needs the io_context running (the sessions flush on it).
class NativeServer {
 public:
  struct Options {
    std::string bind = "127.0.0.1";
    int port = 3550;  // 0: any free port (see port())
    bool extended_events = false;  // default for new connections
    int max_clients = 1024;
    size_t max_message_bytes = 65536;
    // Outbound bytes queued for one client before it counts as not reading
    // and is disconnected (the undelivered events are counted and logged).
    size_t max_queued_bytes = 4 << 20;
    // Networks whose clients may connect (CIDR: "10.0.0.0/8", "::1/128");
    // empty = every address. Others get fail "Address not allowed" and are
    // closed (counted in Stats::not_allowed, logged).
    std::vector<std::string> allow;
    // When set, the clients' commands are read and run on this loop's
    // thread (the SIP thread: a make-call then reaches SIP without waking a
    // second thread), and the replies to them are written there too
    // (EventHub::ReplyScope). Null: read on the io_context's threads.
    backend::FdLoop* read_loop = nullptr;
    // When set, a connection must send {"cmd":"auth","secret":<token>}
    // before anything else (every other message before it gets fail "Not
    // authenticated"); 3 such failures, or 10 s without auth, close it.
    std::string token;
    // TLS certificate chain and private key files (PEM); both empty:
    // plaintext.
    std::string cert;
    std::string key;
    // A connection that sends no complete message for this long is closed;
    // 0: never.
    std::chrono::seconds idle_timeout{0};
  };

  struct Stats {
    uint64_t clients = 0;  // connected now
    uint64_t accepted = 0;
    uint64_t refused = 0;  // over max-clients
    uint64_t not_allowed = 0;  // refused: address not in `allow`
    uint64_t slow_disconnects = 0;  // clients dropped for not reading
    uint64_t undelivered_events = 0;  // events lost with those clients
    uint64_t http_closed = 0;  // closed at once: the client spoke HTTP
    uint64_t unauthenticated = 0;  // closed: 3 failures or 10 s without auth
    uint64_t idle_timeouts = 0;  // closed: nothing complete for idle_timeout
    uint64_t tls_failures = 0;  // TLS handshakes that failed or took over 10 s
    // Extended subscribes with after_seq that got "Events lost" and a snapshot.
    uint64_t resume_gaps = 0;
  };

  NativeServer(Options options, boost::asio::io_context& io,
               backend::CommandDispatcher* dispatcher, backend::EventHub* hub);
  ~NativeServer();

  // Binds and starts accepting (loads the TLS certificate first, if any).
  absl::Status Start();
  // Stops accepting and closes every connection. Events already queued for
  // a client are written first, until `flush_deadline`: Stop waits for that
  // (the io_context must be running). Idempotent.
  void Stop(absl::Time flush_deadline = absl::InfinitePast());

  int port() const { return port_; }
  Stats stats() const;
  // Writes this front end's metrics: the registry's shared families
  // (front_end="native") and the telestra_native_* ones (docs/metrics.md).
  void ExportMetrics(MetricsWriter& out) const;

 private:
  friend class NativeSession;
  void DoAccept();
  void Refuse(boost::asio::ip::tcp::socket socket, const absl::Status& why);
  // False when `allow` is set and the peer's address is in none of its
  // networks (or cannot be read).
  bool Allowed(const boost::asio::ip::tcp::socket& socket) const;
  // The sessions the read loop reads (Options::read_loop) are owned here
  // from their start to their Shutdown: not by the loop's watch, which may
  // end first (the loop stops before the clients are closed), and not by
  // themselves, which would leak them when the io_context stops before
  // their Shutdown runs. ~NativeServer lets go of what is left.
  void Hold(std::shared_ptr<NativeSession> session);
  // Returns the held reference (to be dropped outside the lock).
  std::shared_ptr<NativeSession> Release(const NativeSession* session);

  const Options options_;
  boost::asio::io_context& io_;
  // Options::cert and key, loaded by Start(); null: plaintext.
  std::unique_ptr<boost::asio::ssl::context> tls_;
  backend::CommandDispatcher* const dispatcher_;
  backend::EventHub* const hub_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  // Acceptor strand only: retries accept() after a failure (EMFILE).
  boost::asio::steady_timer accept_retry_;
  uint64_t accept_failures_ = 0;  // in the current burst
  // options_.allow, parsed by Start().
  backend::NetworkList allow_;  // [tcp-settings] allow; empty: every address

  // Admission (max_clients), close-all, the shared counters. Shared with
  // the sessions, which may outlive the server (see ~NativeSession).
  const std::shared_ptr<SessionRegistry> registry_;
  std::atomic<bool> stopped_{false};
  // Lock order: a leaf (a session is only ever destroyed after it is
  // released).
  absl::Mutex held_mu_;
  std::map<const NativeSession*, std::shared_ptr<NativeSession>> held_ ABSL_GUARDED_BY(held_mu_);
  // Counters of this front end only (the shared ones are registry_'s).
  std::atomic<uint64_t> not_allowed_{0};
  std::atomic<uint64_t> http_closed_{0};
  std::atomic<uint64_t> unauthenticated_{0};
  std::atomic<uint64_t> idle_timeouts_{0};
  std::atomic<uint64_t> tls_failures_{0};
  // Shared with the sessions (which may outlive the server).
  const std::shared_ptr<std::atomic<uint64_t>> resume_gaps_ =
      std::make_shared<std::atomic<uint64_t>>(0);
};

}  // namespace telestra::gateway
