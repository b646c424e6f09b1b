#include "gateway/native/native_server.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
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
#include "spdlog/spdlog.h"

namespace telestra::gateway {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using SteadyTime = std::chrono::steady_clock::time_point;

// How long a client that shut down its sending side still gets events.
constexpr std::chrono::seconds kLingerAfterEof(3);

// Reads of a full buffer in a row before the read loop turns to others.
constexpr int kReadsPerWakeup = 4;

// Pause before accepting again after accept() failed (out of descriptors).
constexpr std::chrono::milliseconds kAcceptRetry(100);

// With Options::token: how long a connection may take to authenticate, and
// how many messages it may send before (each answered "Not authenticated").
constexpr std::chrono::seconds kAuthDeadline(10);
constexpr int kMaxAuthFailures = 3;

// How long a TLS handshake may take.
constexpr std::chrono::seconds kTlsHandshakeDeadline(10);

// How long a connection closed for failing to authenticate may take to
// receive its last fail.
constexpr std::chrono::seconds kFailFlush(2);

// The outbound buffer of one write is freed after a write larger than this.
constexpr size_t kRetainedWriteBytes = 16384;

// `event` as it goes on the wire: its JSON and the terminating null.
std::string Frame(const telestra::v1::Event& event, bool extended) {
  std::string json = JsonCodec::Encode(event, extended);
  json.push_back('\0');
  return json;
}

// Constant time in the secret: compares SHA-256 digests with CRYPTO_memcmp
// (as the web front end's TokenEquals does).
bool SecretMatches(absl::string_view presented, absl::string_view expected) {
  unsigned char a[SHA256_DIGEST_LENGTH];
  unsigned char b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof(a)) == 0 && !presented.empty();
}

// One client connection.
// Thread: everything runs on the session's strand, except OnEvent (any
// thread, with the hub's lock held) and, with Options::read_loop, the
// reading: OnReadable, Consume and Handle run on the loop's thread, which
// tells the strand only of the end of the stream (OnRead) and of a
// connection it wants closed (EndFromReader). When the strand has nothing
// queued or in flight, OnEvent writes the event to the socket itself (a
// non-blocking send: an event from the SIP thread reaches the client without
// waking the API thread); whatever it cannot send at once goes to the
// strand, in order, and the strand writes until its queue is empty again.
// A TLS connection is read and written on the strand only.
//
// With Options::token the session joins the event hub only once the client
// has authenticated: before that it gets no broadcast, and the session
// writes its replies ("Not authenticated", "authenticated") itself.
class NativeSession : public std::enable_shared_from_this<NativeSession>,
                      public backend::EventListener {
 public:
  NativeSession(NativeServer* server, uint64_t key, tcp::socket socket)
      : server_(server),
        hub_(server->hub_),
        key_(key),
        socket_(std::move(socket)),
        raw_fd_(socket_.native_handle()),
        strand_(socket_.get_executor()),
        linger_(strand_),
        deadline_(strand_),
        framer_(server->options_.max_message_bytes),
        extended_(server->options_.extended_events),
        authenticated_(server->options_.token.empty()) {
    if (server->tls_) {
      tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *server->tls_);
    }
  }

  // May run after the NativeServer is gone (the io_context destroys
  // pending handlers, the last owners of sessions, only when it is
  // destroyed itself): touches only the hub, which outlives the io_context.
  ~NativeSession() override {
    Detach();
    if (released_) ::close(raw_fd_);  // else the socket closes itself
  }

  void Start() {
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    auto endpoint = socket_.remote_endpoint(ignored);
    peer_ = absl::StrCat(endpoint.address().to_string(), ":", endpoint.port());
    protocol_ = socket_.local_endpoint(ignored).protocol();
    started_ = std::chrono::steady_clock::now();
    if (IdleTimeoutOn()) last_message_ = started_.time_since_epoch().count();
    if (tls_ || !authenticated_ || IdleTimeoutOn()) {
      asio::post(strand_, [self = shared_from_this()] { self->CheckDeadlines(); });
    }
    if (tls_) {
      asio::post(strand_, [self = shared_from_this()] {
        self->tls_->async_handshake(asio::ssl::stream_base::server,
                                    [self](error_code ec) { self->OnHandshake(ec); });
      });
      return;
    }
    {
      absl::MutexLock lock(&inbox_mu_);
      idle_ = true;
    }
    if (authenticated_) AttachToHub();
    LogConnected();
    if (backend::FdLoop* loop = server_->options_.read_loop) {
      watch_ = loop->Watch(raw_fd_, [self = shared_from_this()] { return self->OnReadable(); });
      if (watch_ != 0) {
        Release();
        return;
      }
    }
    DoRead();
  }

  // The connection's descriptor (open as long as the session exists).
  int fd() const { return raw_fd_; }

  // Closes the connection from any thread, once what is queued for it has
  // been written or at `flush_deadline`, whichever comes first.
  void Close(SteadyTime flush_deadline) {
    asio::post(strand_, [self = shared_from_this(), flush_deadline] {
      self->CloseAfterFlush(flush_deadline);
    });
  }

  // Events wait in a small inbox; only the first of a burst posts a drain
  // to the strand, so a busy strand costs the publishing thread (usually
  // the SIP thread) no wake-up per event. Extended-only events that the
  // client did not subscribe to are dropped here, before any of that.
  void OnEvent(const backend::EventPtr& event) override {
    const bool extended = extended_.load(std::memory_order_relaxed);
    if (!extended && JsonCodec::IsExtendedOnly(*event)) return;
    Deliver(&event, std::string());
  }

 private:
  // What waits in the inbox: an event, or (event null) a reply the session
  // made itself, framed.
  struct Outbound {
    backend::EventPtr event;
    std::string bytes;
  };

  bool IdleTimeoutOn() const { return server_->options_.idle_timeout.count() > 0; }

  void LogConnected() {
    if (authenticated_) {
      spdlog::info("native client {} connected from {}", client_.load(), peer_);
    } else {
      spdlog::info("native client connected from {}; waiting for auth", peer_);
    }
  }

  void OnHandshake(error_code ec) {
    if (closed_) return;
    if (ec) {
      // A client that closes before its hello (a port probe) is no failure.
      if (ec != asio::error::eof && ec != asio::ssl::error::stream_truncated) {
        server_->tls_failures_++;
        spdlog::info("native client from {}: TLS handshake failed: {}", peer_, ec.message());
      }
      Shutdown();
      return;
    }
    handshake_done_ = true;
    if (authenticated_) AttachToHub();
    LogConnected();
    DoRead();
  }

  // Joins the event hub: broadcasts and replies from now on. Thread: the
  // reader's (or Start).
  void AttachToHub() {
    absl::MutexLock lock(&attach_mu_);
    if (detached_) return;  // closing
    client_ = hub_->Attach(this);
    reader_client_ = client_;
  }

  void Detach() {
    absl::MutexLock lock(&attach_mu_);
    detached_ = true;
    if (backend::ClientId client = client_.exchange(0); client != 0) hub_->Detach(client);
  }

  // Writes `*event` (or, with event null, the framed `bytes`) to the socket
  // at once when the strand has nothing to write, else hands it to the
  // strand. Thread: any.
  void Deliver(const backend::EventPtr* event, std::string bytes) {
    {
      absl::MutexLock lock(&inbox_mu_);
      if (idle_) {
        if (event != nullptr) bytes = Frame(**event, extended_.load(std::memory_order_relaxed));
        ssize_t sent = ::send(raw_fd_, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent == static_cast<ssize_t>(bytes.size())) return;
        // Not all of it (the client's window is full, or an error the
        // strand's write will meet): the rest goes through the strand.
        idle_ = false;
        leftover_ = sent > 0 ? bytes.substr(static_cast<size_t>(sent)) : std::move(bytes);
      } else {
        inbox_.push_back(Outbound{event != nullptr ? *event : nullptr, std::move(bytes)});
      }
      if (drain_posted_) return;
      drain_posted_ = true;
    }
    std::shared_ptr<NativeSession> self = weak_from_this().lock();
    if (!self) return;  // being destroyed
    asio::post(strand_, [self = std::move(self)] { self->DrainInbox(); });
  }

  void DoRead() {
    auto on_read = [self = shared_from_this()](error_code ec, size_t n) { self->OnRead(ec, n); };
    if (tls_) {
      tls_->async_read_some(asio::buffer(read_buffer_), std::move(on_read));
    } else {
      socket_.async_read_some(asio::buffer(read_buffer_), std::move(on_read));
    }
  }

  void OnRead(error_code ec, size_t n) {
    // A TLS client that closes without close_notify ends with
    // stream_truncated: an end of stream all the same. (Only TLS sessions
    // compare with the SSL category: UBSan's vptr check reported its
    // stream_category object on plaintext sessions reset by their client.)
    const bool eof = ec == asio::error::eof || (tls_ && ec == asio::ssl::error::stream_truncated);
    if (eof && !closed_ && !closing_) {
      // The client closed its sending side (as `nc -q1` does) but may still
      // read: deliver what its last commands cause for a while, then close.
      // It no longer counts against max-clients meanwhile, nor against the
      // deadlines of CheckDeadlines.
      ended_input_ = true;
      deadline_.cancel();
      server_->Remove(key_);
      linger_.expires_after(kLingerAfterEof);
      linger_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec) self->Shutdown();
      });
      return;
    }
    if (ec) {
      if (ec != asio::error::operation_aborted && !eof) {
        spdlog::info("native client {} read error: {}", client_.load(), ec.message());
      }
      if (!closing_) Shutdown();
      return;
    }
    Consume(n);
    if (closed_ || stop_reading_) return;
    DoRead();
  }

  // The read loop's thread (Options::read_loop): reads what the client
  // sent and runs its commands right there. False at the end of the
  // stream or on an error, which go to the strand (OnRead), and when the
  // connection is to be closed (EndFromReader); the watch ends.
  bool OnReadable() {
    for (int reads = 0; reads < kReadsPerWakeup; ++reads) {
      ssize_t n = ::recv(raw_fd_, read_buffer_.data(), read_buffer_.size(), MSG_DONTWAIT);
      if (n > 0) {
        Consume(static_cast<size_t>(n));
        if (stop_reading_) return false;
        if (static_cast<size_t>(n) < read_buffer_.size()) return true;
        continue;  // there may be more
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      error_code ec = n == 0 ? error_code(asio::error::eof)
                             : error_code(errno, boost::system::system_category());
      server_->Remove(key_);  // the slot is free now, before the strand hears of it
      asio::post(strand_, [self = shared_from_this(), ec] { self->OnRead(ec, 0); });
      return false;
    }
    return true;  // the rest at the loop's next turn, after others' work
  }

  // Frames `n` bytes of read_buffer_ and runs each command. Thread: the
  // reader's (the strand, or the read loop's thread).
  void Consume(size_t n) {
    framer_.Feed(absl::string_view(read_buffer_.data(), n));
    for (;;) {
      if (closed_ || stop_reading_) return;  // disconnected meanwhile
      Framer::Frame frame = framer_.Next();
      if (frame.kind == Framer::Kind::kNone) break;
      Handle(frame);
    }
  }

  void Handle(const Framer::Frame& frame) {
    switch (frame.kind) {
      case Framer::Kind::kHttp:
        // A browser (a cross-site form or fetch) or an HTTP client: nothing
        // it sends may run as a command.
        server_->http_closed_++;
        spdlog::warn("native port: closed the connection from {}: it sent an HTTP request", peer_);
        EndFromReader(/*flush=*/false);
        return;
      case Framer::Kind::kTooLarge:
        Fail("", absl::InvalidArgumentError("Message too large"), "");
        return;
      case Framer::Kind::kGarbage:
        Fail("", absl::InvalidArgumentError("Malformed JSON: a message must be a JSON object"), "");
        return;
      case Framer::Kind::kMessage:
        break;
      case Framer::Kind::kNone:
        return;
    }
    if (IdleTimeoutOn()) {
      last_message_ = std::chrono::steady_clock::now().time_since_epoch().count();
    }
    DecodedCommand decoded = codec_.Decode(frame.text);
    if (decoded.auth) {
      Authenticate(decoded);
      return;
    }
    if (!decoded.command.ok()) {
      Fail(decoded.account, decoded.command.status(), decoded.token);
      return;
    }
    if (!authenticated_) {
      Fail(decoded.account, absl::PermissionDeniedError(""), decoded.token);
      return;
    }
    const telestra::v1::Command& command = *decoded.command;
    if (command.has_subscribe()) {
      extended_ = command.subscribe().extended();
      return;
    }
    server_->dispatcher_->Execute(reader_client_, command);
  }

  // Answers a message with `fail`. Before authentication the text is always
  // "Not authenticated" and the failure counts towards kMaxAuthFailures.
  void Fail(const std::string& account, const absl::Status& why, const std::string& token) {
    if (authenticated_) {
      server_->dispatcher_->ReplyFail(reader_client_, account, why, token);
      return;
    }
    const absl::Status refused = absl::PermissionDeniedError("Not authenticated");
    Deliver(nullptr, Frame(backend::CommandDispatcher::FailEvent(account, refused, token), false));
    if (++auth_failures_ < kMaxAuthFailures) return;
    server_->unauthenticated_++;
    spdlog::warn("native client from {} sent {} messages without authenticating; closing it", peer_,
                 auth_failures_);
    EndFromReader(/*flush=*/true);
  }

  // {"cmd":"auth","secret":...}. A connection that is already authenticated
  // (or a server without a token) answers any secret with authenticated.
  void Authenticate(const DecodedCommand& decoded) {
    if (!decoded.secret.ok()) {
      if (authenticated_) {
        server_->dispatcher_->ReplyFail(reader_client_, decoded.account, decoded.secret.status(),
                                        decoded.token);
      } else {
        Fail(decoded.account, decoded.secret.status(), decoded.token);
      }
      return;
    }
    if (!authenticated_) {
      if (!SecretMatches(*decoded.secret, server_->options_.token)) {
        Fail(decoded.account, absl::PermissionDeniedError(""), decoded.token);
        return;
      }
      authenticated_ = true;
      // Written before joining the hub: it comes before any broadcast.
      Deliver(nullptr, JsonCodec::EncodeAuthenticated(decoded.token) + '\0');
      AttachToHub();
      spdlog::info("native client {} from {} authenticated", client_.load(), peer_);
      return;
    }
    Deliver(nullptr, JsonCodec::EncodeAuthenticated(decoded.token) + '\0');
  }

  // The reader's: reads no more of the client's messages and has the
  // strand close the connection, at once or after writing what is queued
  // (at most kFailFlush).
  void EndFromReader(bool flush) {
    stop_reading_ = true;
    asio::post(strand_, [self = shared_from_this(), flush] {
      if (flush) {
        self->CloseAfterFlush(std::chrono::steady_clock::now() + kFailFlush);
      } else {
        self->Shutdown();
      }
    });
  }

  // Strand: closes the connection when its TLS handshake, its
  // authentication or Options::idle_timeout is overdue; else waits for the
  // next of them.
  void CheckDeadlines() {
    if (closed_ || closing_ || ended_input_) return;
    const SteadyTime now = std::chrono::steady_clock::now();
    std::optional<SteadyTime> next;
    auto consider = [&](SteadyTime deadline) {
      if (!next || deadline < *next) next = deadline;
    };
    if (tls_ && !handshake_done_) {
      if (now >= started_ + kTlsHandshakeDeadline) {
        server_->tls_failures_++;
        spdlog::info("native client from {}: no TLS handshake within {} s; closing it", peer_,
                     kTlsHandshakeDeadline.count());
        Shutdown();
        return;
      }
      consider(started_ + kTlsHandshakeDeadline);
    }
    if (!authenticated_) {
      if (now >= started_ + kAuthDeadline) {
        server_->unauthenticated_++;
        spdlog::warn("native client from {} did not authenticate within {} s; closing it", peer_,
                     kAuthDeadline.count());
        Shutdown();
        return;
      }
      consider(started_ + kAuthDeadline);
    }
    if (IdleTimeoutOn()) {
      const SteadyTime last{SteadyTime::duration(last_message_.load())};
      const SteadyTime deadline = last + server_->options_.idle_timeout;
      if (now >= deadline) {
        server_->idle_timeouts_++;
        spdlog::info(
            "native client {} ({}) sent no complete message for {} s (idle-timeout); "
            "closing it",
            client_.load(), peer_, server_->options_.idle_timeout.count());
        Shutdown();
        return;
      }
      consider(deadline);
    }
    if (!next) return;
    deadline_.expires_at(*next);
    deadline_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->CheckDeadlines();
    });
  }

  void DrainInbox() {
    std::vector<Outbound> outbound;
    std::string leftover;
    {
      absl::MutexLock lock(&inbox_mu_);
      outbound.swap(inbox_);
      leftover.swap(leftover_);
      drain_posted_ = false;
    }
    if (!leftover.empty() && !closed_) Queue(std::move(leftover));
    for (Outbound& out : outbound) {
      if (out.event) {
        Enqueue(*out.event);
      } else if (!closed_) {
        Queue(std::move(out.bytes));
      }
    }
    MaybeIdle();
  }

  // Nothing queued, in flight or waiting in the inbox: OnEvent may write
  // to the socket itself again (a TLS connection stays with the strand),
  // or a closing connection closes.
  void MaybeIdle() {
    if (closed_ || writing_ || !queue_.empty()) return;
    {
      absl::MutexLock lock(&inbox_mu_);
      if (!inbox_.empty() || !leftover_.empty() || drain_posted_) return;
      if (!closing_ && !tls_) idle_ = true;
    }
    if (closing_) {
      Shutdown();
      return;
    }
    Release();
  }

  // With a read loop, the socket stays out of asio's reactor whenever
  // asio has nothing to write: the reactor waits for every socket it holds
  // (edge-triggered, for input too), so it would wake an API thread for
  // each command the read loop reads. DoWrite gives it back when a write
  // has to wait for the client.
  void Release() {
    if (watch_ == 0 || released_ || writing_) return;
    error_code ec;
    socket_.release(ec);
    released_ = !ec;
  }

  void Enqueue(const telestra::v1::Event& event) {
    if (closed_) return;
    if (!extended_ && JsonCodec::IsExtendedOnly(event)) return;  // not subscribed
    if (queued_bytes_ > server_->options_.max_queued_bytes) {
      // The client does not read: everything still queued is lost with it.
      uint64_t lost = queue_.size() + 1;
      server_->slow_disconnects_++;
      server_->undelivered_events_ += lost;
      spdlog::warn(
          "native client {} ({}) is not reading: {} events ({} bytes) undelivered; "
          "disconnecting it",
          client_.load(), peer_, lost, queued_bytes_);
      Shutdown();
      return;
    }
    Queue(Frame(event, extended_));
  }

  // Queues bytes for the socket and starts a write if none is in flight.
  void Queue(std::string bytes) {
    queued_bytes_ += bytes.size();
    queue_.push_back(std::move(bytes));
    if (!writing_) DoWrite();
  }

  void DoWrite() {
    if (released_) {
      error_code ec;
      socket_.assign(protocol_, raw_fd_, ec);
      if (ec) {
        spdlog::warn("native client {}: cannot wait to write: {}", client_.load(), ec.message());
        Shutdown();
        return;
      }
      released_ = false;
    }
    // Gather everything queued into one write.
    writing_ = true;
    out_.clear();
    for (std::string& message : queue_) out_.append(message);
    in_flight_ = queue_.size();
    auto on_write = [self = shared_from_this()](error_code ec, size_t) { self->OnWrite(ec); };
    if (tls_) {
      asio::async_write(*tls_, asio::buffer(out_), std::move(on_write));
    } else {
      asio::async_write(socket_, asio::buffer(out_), std::move(on_write));
    }
  }

  void OnWrite(error_code ec) {
    writing_ = false;
    if (ec) {
      Shutdown();
      return;
    }
    queued_bytes_ -= out_.size();
    if (out_.capacity() > kRetainedWriteBytes) std::string().swap(out_);
    queue_.erase(queue_.begin(), queue_.begin() + in_flight_);
    in_flight_ = 0;
    if (!queue_.empty() && !closed_) {
      DoWrite();
    } else {
      MaybeIdle();
    }
  }

  // Strand: stops reading and leaves the event hub, writes what is queued
  // (events that reached the session before, and replies), then closes;
  // at `deadline` it closes whatever is left.
  void CloseAfterFlush(SteadyTime deadline) {
    if (closed_ || closing_) return;
    if (deadline <= std::chrono::steady_clock::now()) {
      Shutdown();
      return;
    }
    closing_ = true;
    stop_reading_ = true;
    Detach();  // no event after this one
    {
      absl::MutexLock lock(&inbox_mu_);
      idle_ = false;  // what follows goes through the strand
    }
    if (watch_ != 0) server_->options_.read_loop->Unwatch(watch_);
    deadline_.cancel();
    linger_.cancel();
    linger_.expires_at(deadline);
    linger_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec) return;
      spdlog::warn("native client ({}): {} bytes still unwritten at the close deadline",
                   self->peer_, self->queued_bytes_);
      self->Shutdown();
    });
    DrainInbox();  // closes at once when there is nothing to write
  }

  void Shutdown() {
    if (closed_.exchange(true)) return;
    {
      absl::MutexLock lock(&inbox_mu_);  // no direct write after this
      idle_ = false;
    }
    stop_reading_ = true;
    Detach();
    linger_.cancel();
    deadline_.cancel();
    error_code ignored;
    if (released_) {
      ::shutdown(raw_fd_, SHUT_RDWR);
    } else {
      socket_.shutdown(tcp::socket::shutdown_both, ignored);
    }
    if (watch_ != 0) {
      // The read loop may be in recv() on the socket right now: it is
      // closed when the session is destroyed, after the watch has ended
      // (the watch owns a reference).
      server_->options_.read_loop->Unwatch(watch_);
      watch_ = 0;
    } else {
      socket_.close(ignored);
    }
    server_->Remove(key_);
    spdlog::info("native client {} disconnected", peer_);
  }

  NativeServer* const server_;
  backend::EventHub* const hub_;
  const uint64_t key_;
  tcp::socket socket_;
  // socket_'s descriptor: the read loop reads it, OnEvent writes to it, and
  // DoWrite hands it back to socket_.
  const int raw_fd_;
  // socket_'s strand, kept apart: the read loop posts to it while the
  // strand may be handing the descriptor to socket_ or taking it back.
  const tcp::socket::executor_type strand_;
  // TLS over socket_ (Options::cert); null: plaintext.
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
  // Closes the connection at a set time: after the linger of a half-closed
  // client, or at the deadline of a close that flushes first.
  asio::steady_timer linger_;
  // The TLS handshake's, authentication's and idle-timeout's deadlines.
  asio::steady_timer deadline_;
  std::string peer_;
  SteadyTime started_;  // set by Start
  // Hub id; 0 before joining the hub and after leaving it. Written under
  // attach_mu_, read anywhere (logs).
  std::atomic<backend::ClientId> client_{0};
  absl::Mutex attach_mu_;  // taken before the hub's lock, never inside it
  bool detached_ ABSL_GUARDED_BY(attach_mu_) = false;  // never joins again
  // The reader's: client_ as it was when the session joined the hub.
  backend::ClientId reader_client_ = 0;
  // Options::read_loop's watch of the socket (0: read by the strand).
  backend::FdLoop::WatchId watch_ = 0;
  tcp protocol_ = tcp::v4();  // socket_'s, set by Start
  // socket_ has let go of raw_fd_ (Release); strand only, and the
  // destructor then closes raw_fd_.
  bool released_ = false;
  bool handshake_done_ = false;  // strand only
  bool ended_input_ = false;     // strand: the client shut down its sending side
  Framer framer_;
  JsonCodec codec_;
  // Written on the strand (subscribe), read by OnEvent on any thread.
  std::atomic<bool> extended_;
  // Set once by the reader when the client authenticates (at once without
  // Options::token); read by the strand's deadline check.
  std::atomic<bool> authenticated_;
  int auth_failures_ = 0;  // the reader's
  // steady_clock ticks of the last complete message (Options::idle_timeout
  // only): written by the reader, read by the strand's deadline check.
  std::atomic<SteadyTime::rep> last_message_{0};
  absl::Mutex inbox_mu_;
  std::vector<Outbound> inbox_ ABSL_GUARDED_BY(inbox_mu_);
  std::string leftover_ ABSL_GUARDED_BY(inbox_mu_);  // of a direct write
  bool drain_posted_ ABSL_GUARDED_BY(inbox_mu_) = false;
  // The strand has nothing to write: OnEvent writes to raw_fd_ itself.
  bool idle_ ABSL_GUARDED_BY(inbox_mu_) = false;
  // Set by Shutdown (strand); the reader then runs no more of the
  // client's commands.
  std::atomic<bool> closed_{false};
  // The reader handles no more messages (the connection is being closed).
  std::atomic<bool> stop_reading_{false};
  bool closing_ = false;  // strand: CloseAfterFlush, waiting for the queue
  std::array<char, 16384> read_buffer_;
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  size_t in_flight_ = 0;
  std::string out_;
};

NativeServer::NativeServer(Options options, asio::io_context& io,
                           backend::CommandDispatcher* dispatcher, backend::EventHub* hub)
    : options_(std::move(options)),
      io_(io),
      dispatcher_(dispatcher),
      hub_(hub),
      acceptor_(asio::make_strand(io)),
      accept_retry_(acceptor_.get_executor()) {}

NativeServer::~NativeServer() { Stop(); }

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
      std::shared_ptr<NativeSession> session;
      {
        absl::MutexLock lock(&mu_);
        if (stopped_) return;
        if (static_cast<int>(sessions_.size()) < options_.max_clients ||
            static_cast<int>(sessions_.size() - GoneLocked()) < options_.max_clients) {
          uint64_t key = next_key_++;
          session = std::make_shared<NativeSession>(this, key, std::move(socket));
          sessions_[key] = session;
        }
      }
      if (session) {
        accepted_++;
        session->Start();
      } else {
        refused_++;
        spdlog::warn("native port: refused a client, max-clients ({}) reached",
                     options_.max_clients);
        Refuse(std::move(socket),
               absl::ResourceExhaustedError(
                   absl::StrCat("Too many clients (max-clients is ", options_.max_clients, ")")));
      }
    }
    if (acceptor_.is_open()) DoAccept();
  });
}

// A full server first looks for clients that have already closed their
// connection but whose end of stream has not been read yet: the thread
// that reads a connection is not the one that accepts the next, so a
// client that closes and reconnects at once could otherwise be refused.
size_t NativeServer::GoneLocked() {
  std::vector<pollfd> fds;
  size_t gone = 0;
  for (auto& [key, weak] : sessions_) {
    if (std::shared_ptr<NativeSession> session = weak.lock()) {
      fds.push_back(pollfd{session->fd(), POLLRDHUP, 0});
    } else {
      ++gone;  // destroyed, not yet removed
    }
  }
  if (!fds.empty() && poll(fds.data(), fds.size(), 0) > 0) {
    for (const pollfd& fd : fds) {
      if (fd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) ++gone;
    }
  }
  return gone;
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
  refused->text = Frame(backend::CommandDispatcher::FailEvent("", why, ""), false);
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

void NativeServer::Remove(uint64_t session_key) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(session_key);
}

void NativeServer::Stop(absl::Time flush_deadline) {
  std::map<uint64_t, std::weak_ptr<NativeSession>> sessions;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    sessions = sessions_;
  }
  asio::post(acceptor_.get_executor(), [this] {
    error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
  const absl::Duration flush = std::max(flush_deadline - absl::Now(), absl::ZeroDuration());
  const SteadyTime deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(flush);
  if (flush > absl::ZeroDuration() && !sessions.empty()) {
    spdlog::info(
        "native port: closing {} clients once their queued events are written (at most {})",
        sessions.size(), absl::FormatDuration(flush));
  }
  for (auto& [key, weak] : sessions) {
    if (auto session = weak.lock()) session->Close(deadline);
  }
  if (flush == absl::ZeroDuration()) return;
  // The sessions write on the io_context's threads and leave sessions_ as
  // they close.
  absl::MutexLock lock(&mu_);
  const bool all_closed =
      mu_.AwaitWithTimeout(absl::Condition(this, &NativeServer::NoLiveSessions), flush);
  if (!all_closed) {
    spdlog::warn("native port: {} clients still had events to write at the shutdown deadline",
                 sessions_.size());
  }
}

// A session whose last owner is gone without a Shutdown (with a read loop,
// an idle client's session belongs to its watch, which the loop drops when
// it stops) has closed its connection in its destructor: nothing to wait for.
bool NativeServer::NoLiveSessions() const {
  return std::all_of(sessions_.begin(), sessions_.end(),
                     [](const auto& entry) { return entry.second.expired(); });
}

NativeServer::Stats NativeServer::stats() const {
  Stats stats;
  {
    absl::MutexLock lock(&mu_);
    stats.clients = sessions_.size();
  }
  stats.accepted = accepted_;
  stats.refused = refused_;
  stats.not_allowed = not_allowed_;
  stats.slow_disconnects = slow_disconnects_;
  stats.undelivered_events = undelivered_events_;
  stats.http_closed = http_closed_;
  stats.unauthenticated = unauthenticated_;
  stats.idle_timeouts = idle_timeouts_;
  stats.tls_failures = tls_failures_;
  return stats;
}

}  // namespace telestra::gateway
