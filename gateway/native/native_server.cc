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
#include "gateway/session/outbox.h"
#include "gateway/session/wire_slots.h"
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
//
// Thread: the session's strand runs its lifecycle (handshake, deadlines,
// close) and, for TLS connections or without Options::read_loop, its
// reading. With Options::read_loop (plaintext only), OnReadable, Consume
// and Handle run on the loop's thread (the SIP thread), which tells the
// strand only of the end of the stream (OnRead) and of a connection it
// wants closed (EndFromReader); the socket then never enters asio's reactor
// (Start releases it), so a command wakes no API thread.
//
// Writing is one path for every frame (docs/native-api.md, "Threads"):
// Send puts the frame in the Outbox; the thread that finds the outbox idle
// writes it at once with a non-blocking send and goes on while frames keep
// coming; when the socket is full, the strand waits for it to drain and
// writes the rest. The frames come from the event hub's delivering thread
// (OnDelivery: the delivery thread for broadcasts, the reading thread for
// the replies to the commands it just ran, see EventHub::ReplyScope) and
// from the session itself (auth replies). No lock is held while writing.
//
// With Options::token the session joins the event hub only once the client
// has authenticated: before that it gets no broadcast, and the session
// writes its replies ("Not authenticated", "authenticated") itself.
class NativeSession : public std::enable_shared_from_this<NativeSession>,
                      public backend::EventListener,
                      public SessionRegistry::Session {
 public:
  NativeSession(NativeServer* server, tcp::socket socket)
      : server_(server),
        hub_(server->hub_),
        registry_(server->registry_),
        socket_(std::move(socket)),
        raw_fd_(socket_.native_handle()),
        strand_(socket_.get_executor()),
        linger_(strand_),
        deadline_(strand_),
        framer_(server->options_.max_message_bytes),
        extended_(server->options_.extended_events),
        authenticated_(server->options_.token.empty()),
        outbox_(server->options_.max_queued_bytes) {
    if (server->tls_) {
      tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *server->tls_);
    }
  }

  // May run after the NativeServer is gone (the io_context destroys
  // pending handlers, the last owners of sessions, only when it is
  // destroyed itself): touches only the hub, which outlives the io_context.
  ~NativeSession() override {
    registry_->Remove(this);
    Detach();
    if (released_) ::close(raw_fd_);  // else the socket closes itself
  }

  // The socket back, for a session the registry did not admit (Refuse).
  tcp::socket TakeSocket() { return std::move(socket_); }

  // SessionRegistry::Session. Thread: any (called under the registry's lock:
  // only posts).
  // Takes no reference here: the last one must never be dropped under the
  // registry's lock (the destructor removes the session from it).
  void CloseAfterFlush(absl::Time deadline) override {
    const absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
    const SteadyTime flush_deadline =
        std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(left);
    asio::post(strand_, [weak = weak_from_this(), flush_deadline] {
      if (std::shared_ptr<NativeSession> self = weak.lock()) self->CloseAfterFlush(flush_deadline);
    });
  }

  // The client has closed (or reset) the connection, unread yet.
  bool PeerGone() const override {
    pollfd fd{raw_fd_, POLLRDHUP, 0};
    return poll(&fd, 1, 0) > 0 && (fd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
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
    if (authenticated_) AttachToHub();
    LogConnected();
    if (backend::FdLoop* loop = server_->options_.read_loop) {
      // The session lives until Shutdown, not only as long as the loop's
      // watch: events published before the loop stopped (the call-ended
      // of shutdown) are still delivered and written. Set before the
      // watch starts: the loop may end the connection at once.
      keep_alive_ = shared_from_this();
      // The socket leaves asio for good: asio would wake an API thread for
      // every command the loop reads. Waits for a full socket use a
      // duplicate descriptor (ArmWriteWait).
      socket_.release(ignored);
      released_ = !ignored;
      watch_ = loop->Watch(raw_fd_, [self = shared_from_this()] { return self->OnReadable(); });
      if (watch_ != 0) return;
      keep_alive_.reset();
      // No watch (the loop has stopped): asio reads after all.
      socket_.assign(protocol_, raw_fd_, ignored);
      released_ = false;
    }
    DoRead();
  }

  // The connection's descriptor (open as long as the session exists).
  int fd() const { return raw_fd_; }

  void OnEvent(const backend::EventPtr& event) override {
    OnDelivery(event, std::make_shared<backend::EventEncodings>());
  }

  // Thread: the hub's delivering thread. Extended-only events that the
  // client did not subscribe to are skipped; the JSON is made once per
  // event and format and shared with every other client of that format.
  void OnDelivery(const backend::EventPtr& event,
                  const backend::EncodingsPtr& encodings) override {
    const bool extended = extended_.load(std::memory_order_relaxed);
    if (!extended && JsonCodec::IsExtendedOnly(*event)) return;
    const std::string& bytes =
        encodings->Get(extended ? kNativeExtendedSlot : kNativeLegacySlot,
                       [&] { return Frame(*event, extended); });
    // Shares the encoding (kept alive by `encodings`), no copy.
    Send(Outbox::Frame(encodings, &bytes));
  }

 private:
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


  // Queues a frame; writes it at once if no write is under way. Thread: any.
  void Send(Outbox::Frame frame) {
    uint64_t lost = 0;
    switch (outbox_.Add(std::move(frame), &lost)) {
      case Outbox::Added::kQueued:
      case Outbox::Added::kClosed:
        return;
      case Outbox::Added::kOverflow: {
        // The client does not read: everything still queued is lost with it.
        registry_->CountSlowDisconnect(lost);
        spdlog::warn("native client {} ({}) is not reading: {} events undelivered; disconnecting it",
                     client_.load(), peer_, lost);
        PostToStrand([](NativeSession* self) { self->Shutdown(); });
        return;
      }
      case Outbox::Added::kWrite:
        Flush();
        return;
    }
  }

  void SendBytes(std::string bytes) {
    Send(std::make_shared<const std::string>(std::move(bytes)));
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
      registry_->Remove(this);
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
      registry_->Remove(this);  // the slot is free now, before the strand hears of it
      asio::post(strand_, [self = shared_from_this(), ec] { self->OnRead(ec, 0); });
      return false;
    }
    return true;  // the rest at the loop's next turn, after others' work
  }

  // Frames `n` bytes of read_buffer_ and runs each command. Thread: the
  // reader's (the strand, or the read loop's thread).
  //
  // The replies to these commands are written by this thread once the
  // commands have run (EventHub::ReplyScope): no hand-over to another
  // thread for a get-status; broadcasts they cause go to the hub's
  // delivery thread.
  void Consume(size_t n) {
    backend::EventHub::ReplyScope replies(hub_);
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
    SendBytes(Frame(backend::CommandDispatcher::FailEvent(account, refused, token), false));
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
      SendBytes(JsonCodec::EncodeAuthenticated(decoded.token) + '\0');
      AttachToHub();
      spdlog::info("native client {} from {} authenticated", client_.load(), peer_);
      return;
    }
    SendBytes(JsonCodec::EncodeAuthenticated(decoded.token) + '\0');
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

  // The outbox's writer: writes until the outbox is empty, or hands the
  // rest to the strand when the socket is full. Thread: whichever became
  // the writer (Send), or the strand (after a wait).
  void Flush() {
    if (tls_) {
      // TLS records are written by asio on the strand.
      PostToStrand([](NativeSession* self) { self->WriteTls(); });
      return;
    }
    constexpr size_t kMaxBuffers = 64;
    iovec iov[kMaxBuffers];
    for (;;) {
      bool drained_for_close = false;
      const size_t n = outbox_.Gather(iov, kMaxBuffers, &drained_for_close);
      if (n == 0) {
        if (drained_for_close) PostToStrand([](NativeSession* self) { self->Shutdown(); });
        return;
      }
      msghdr message{};
      message.msg_iov = iov;
      message.msg_iovlen = n;
      const ssize_t sent = ::sendmsg(raw_fd_, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (sent > 0) {
        outbox_.Consume(static_cast<size_t>(sent));
        continue;
      }
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // Still the writer: the strand goes on once the socket has room.
        PostToStrand([](NativeSession* self) { self->ArmWriteWait(); });
        return;
      }
      outbox_.Close();  // the connection is broken: nothing more gets through
      PostToStrand([](NativeSession* self) { self->Shutdown(); });
      return;
    }
  }

  // Strand: waits until the socket can take more, then flushes. A
  // duplicate descriptor carries the wait, so that the socket itself stays
  // out of asio with a read loop; made only when a client backs up.
  void ArmWriteWait() {
    if (closed_) return;
    if (!write_waiter_) {
      const int dup_fd = ::dup(raw_fd_);
      error_code ec;
      if (dup_fd >= 0) {
        write_waiter_.emplace(strand_);
        write_waiter_->assign(protocol_, dup_fd, ec);
        if (ec) ::close(dup_fd);
      }
      if (dup_fd < 0 || ec) {
        write_waiter_.reset();
        spdlog::warn("native client {}: cannot wait to write", client_.load());
        outbox_.Close();
        Shutdown();
        return;
      }
    }
    write_waiter_->async_wait(tcp::socket::wait_write, [self = shared_from_this()](error_code ec) {
      if (ec || self->closed_) return;
      self->Flush();
    });
  }

  // Strand: the TLS writer (one async_write in flight).
  void WriteTls() {
    if (closed_) return;
    constexpr size_t kMaxBuffers = 64;
    iovec iov[kMaxBuffers];
    bool drained_for_close = false;
    const size_t n = outbox_.Gather(iov, kMaxBuffers, &drained_for_close);
    if (n == 0) {
      if (drained_for_close) Shutdown();
      return;
    }
    tls_out_.clear();
    for (size_t i = 0; i < n; ++i) {
      tls_out_.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    }
    asio::async_write(*tls_, asio::buffer(tls_out_), [self = shared_from_this()](error_code ec,
                                                                                size_t written) {
      if (ec) {
        self->outbox_.Close();
        self->Shutdown();
        return;
      }
      self->outbox_.Consume(written);
      if (self->tls_out_.capacity() > kRetainedWriteBytes) std::string().swap(self->tls_out_);
      self->WriteTls();
    });
  }

  // Runs `f` on the strand if the session is still alive. Thread: any.
  template <typename F>
  void PostToStrand(F f) {
    std::shared_ptr<NativeSession> self = weak_from_this().lock();
    if (!self) return;  // being destroyed
    asio::post(strand_, [self = std::move(self), f] { f(self.get()); });
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
    if (watch_ != 0) server_->options_.read_loop->Unwatch(watch_);
    deadline_.cancel();
    linger_.cancel();
    linger_.expires_at(deadline);
    linger_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec) return;
      spdlog::warn("native client ({}): {} bytes still unwritten at the close deadline",
                   self->peer_, self->outbox_.queued_bytes());
      self->Shutdown();
    });
    if (outbox_.CloseWhenDrained()) Shutdown();  // else the writer closes when done
  }

  void Shutdown() {
    if (closed_.exchange(true)) return;
    outbox_.Close();
    stop_reading_ = true;
    Detach();
    linger_.cancel();
    deadline_.cancel();
    error_code ignored;
    if (write_waiter_) write_waiter_->close(ignored);
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
    } else if (!released_) {
      socket_.close(ignored);
    }
    registry_->Remove(this);
    spdlog::info("native client {} disconnected", peer_);
    // Called from a strand handler, which holds its own reference.
    keep_alive_.reset();
  }

  NativeServer* const server_;
  backend::EventHub* const hub_;
  const std::shared_ptr<SessionRegistry> registry_;
  tcp::socket socket_;
  // socket_'s descriptor: the read loop reads it, the outbox's writer
  // writes to it.
  const int raw_fd_;
  // socket_'s strand, kept apart: socket_ gives up its descriptor with a
  // read loop.
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
  // Lock order: taken before the hub's lock (Attach, Detach); never held
  // while writing. Detach waits for a delivery in progress, which never
  // takes attach_mu_.
  absl::Mutex attach_mu_;
  bool detached_ ABSL_GUARDED_BY(attach_mu_) = false;  // never joins again
  // The reader's: client_ as it was when the session joined the hub.
  backend::ClientId reader_client_ = 0;
  // Options::read_loop's watch of the socket (0: read by the strand).
  backend::FdLoop::WatchId watch_ = 0;
  tcp protocol_ = tcp::v4();  // socket_'s, set by Start
  // socket_ has let go of raw_fd_ (read loop); the destructor closes it.
  bool released_ = false;
  bool handshake_done_ = false;  // strand only
  bool ended_input_ = false;     // strand: the client shut down its sending side
  Framer framer_;
  JsonCodec codec_;
  // Written by the reader (subscribe), read by OnDelivery.
  std::atomic<bool> extended_;
  // Set once by the reader when the client authenticates (at once without
  // Options::token); read by the strand's deadline check.
  std::atomic<bool> authenticated_;
  int auth_failures_ = 0;  // the reader's
  // steady_clock ticks of the last complete message (Options::idle_timeout
  // only): written by the reader, read by the strand's deadline check.
  std::atomic<SteadyTime::rep> last_message_{0};
  // Set by Shutdown (strand); the reader then runs no more of the
  // client's commands.
  std::atomic<bool> closed_{false};
  // The reader handles no more messages (the connection is being closed).
  std::atomic<bool> stop_reading_{false};
  bool closing_ = false;  // strand: CloseAfterFlush, waiting for the queue
  std::array<char, 16384> read_buffer_;
  Outbox outbox_;
  // With a read loop: the session itself, until Shutdown (strand).
  std::shared_ptr<NativeSession> keep_alive_;
  // Strand: a duplicate of raw_fd_ that waits for room to write.
  std::optional<tcp::socket> write_waiter_;
  std::string tls_out_;  // strand: the TLS write in flight
};

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
      auto session = std::make_shared<NativeSession>(this, std::move(socket));
      switch (registry_->Add(session.get())) {
        case SessionRegistry::Admission::kAdmitted:
          session->Start();
          break;
        case SessionRegistry::Admission::kFull:
          spdlog::warn("native port: refused a client, max-clients ({}) reached",
                       options_.max_clients);
          Refuse(session->TakeSocket(),
                 absl::ResourceExhaustedError(absl::StrCat(
                     "Too many clients (max-clients is ", options_.max_clients, ")")));
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
        "native port: closing {} clients once their queued events are written (at most {})",
        open, absl::FormatDuration(flush));
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
}

}  // namespace telestra::gateway
