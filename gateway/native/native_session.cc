#include "gateway/native/native_session.h"

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
#include "gateway/native/native_server.h"
#include "gateway/session/outbox.h"
#include "gateway/session/wire_slots.h"
#include "spdlog/spdlog.h"

namespace telestra::gateway {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using SteadyTime = std::chrono::steady_clock::time_point;

// `event` as it goes on the wire: its JSON and the terminating null.
std::string WireFrame(const telestra::v1::Event& event, bool extended) {
  std::string json = JsonCodec::Encode(event, extended);
  json.push_back('\0');
  return json;
}

bool NativeSession::IdleTimeoutOn() const { return server_->options_.idle_timeout.count() > 0; }

NativeSession::NativeSession(NativeServer* server, tcp::socket socket)
    : server_(server),
      hub_(server->hub_),
      dispatcher_(server->dispatcher_),
      resume_gaps_(server->resume_gaps_),
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

NativeSession::~NativeSession() {
  registry_->Remove(this);
  Detach();
  if (released_) ::close(raw_fd_);  // else the socket closes itself
}

void NativeSession::CloseAfterFlush(absl::Time deadline) {
  const absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
  const SteadyTime flush_deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(left);
  asio::post(strand_, [weak = weak_from_this(), flush_deadline] {
    if (std::shared_ptr<NativeSession> self = weak.lock()) self->CloseAfterFlush(flush_deadline);
  });
}

bool NativeSession::PeerGone() const {
  pollfd fd{raw_fd_, POLLRDHUP, 0};
  return poll(&fd, 1, 0) > 0 && (fd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void NativeSession::Start() {
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
    server_->Hold(shared_from_this());
    // The socket leaves asio for good: asio would wake an API thread for
    // every command the loop reads. Waits for a full socket use a
    // duplicate descriptor (ArmWriteWait).
    socket_.release(ignored);
    released_ = !ignored;
    watch_ = loop->Watch(raw_fd_, [self = shared_from_this()] { return self->OnReadable(); });
    if (watch_ != 0) return;
    server_->Release(this);
    // No watch (the loop has stopped): asio reads after all.
    socket_.assign(protocol_, raw_fd_, ignored);
    released_ = false;
  }
  DoRead();
}

void NativeSession::OnEvent(const backend::EventPtr& event) {
  OnDelivery(event, std::make_shared<backend::EventEncodings>());
}

void NativeSession::OnDelivery(const backend::EventPtr& event,
                               const backend::EncodingsPtr& encodings) {
  const bool extended = extended_.load(std::memory_order_relaxed);
  if (!extended && JsonCodec::IsExtendedOnly(*event)) return;
  const std::string& bytes = encodings->Get(extended ? kNativeExtendedSlot : kNativeLegacySlot,
                                            [&] { return WireFrame(*event, extended); });
  // Shares the encoding (kept alive by `encodings`), no copy.
  Send(Outbox::Frame(encodings, &bytes));
}

void NativeSession::OnResume(const backend::ResumePoint& point, const std::string& token) {
  using telestra::v1::Event;
  // Everything goes in one frame, in this order: an outbox takes one frame
  // whatever its size (only what follows counts against its bound), so a
  // long replay never gets the client dropped as slow by itself.
  Event subscribed;
  subscribed.set_seq(point.last_seq);
  subscribed.set_token(token);
  subscribed.mutable_subscribed()->set_instance(point.instance);
  std::string opening = WireFrame(subscribed, /*extended=*/true);
  if (!point.gap()) {
    for (const backend::EventPtr& event : point.events) {
      opening += WireFrame(*event, /*extended=*/true);  // with its own seq
    }
    SendBytes(std::move(opening));
    return;
  }
  // The snapshot stands for everything up to last_seq: the fail and each
  // status carry it; every later event arrives live.
  const std::string lost = absl::StrCat("Events lost: ", point.lost_from(), "..", point.lost_to());
  ++*resume_gaps_;
  const char* why = point.outcome == backend::ResumePoint::Outcome::kOtherInstance
                        ? "the client's instance is not this gateway's"
                    : point.outcome == backend::ResumePoint::Outcome::kAhead
                        ? "after_seq is ahead of the newest seq"
                        : "the history no longer holds them";
  spdlog::info("native client {} ({}) resuming after seq {}: {} ({}); sending a snapshot",
               client_.load(), peer_, point.after_seq, lost, why);
  Event fail = backend::CommandDispatcher::FailEvent("", absl::ResourceExhaustedError(lost), token);
  fail.set_seq(point.last_seq);
  opening += WireFrame(fail, /*extended=*/true);
  if (dispatcher_ != nullptr) {
    for (telestra::v1::Status& status : dispatcher_->ListAccounts()) {
      Event event;
      event.set_seq(point.last_seq);
      event.set_token(token);
      *event.mutable_status() = std::move(status);
      opening += WireFrame(event, /*extended=*/true);
    }
  }
  SendBytes(std::move(opening));
}

void NativeSession::LogConnected() {
  if (authenticated_) {
    spdlog::info("native client {} connected from {}", client_.load(), peer_);
  } else {
    spdlog::info("native client connected from {}; waiting for auth", peer_);
  }
}

void NativeSession::AttachToHub() {
  absl::MutexLock lock(&attach_mu_);
  if (detached_) return;  // closing
  client_ = hub_->Attach(this);
  reader_client_ = client_;
}

void NativeSession::Detach() {
  absl::MutexLock lock(&attach_mu_);
  detached_ = true;
  if (backend::ClientId client = client_.exchange(0); client != 0) hub_->Detach(client);
}

void NativeSession::Send(Outbox::Frame frame) {
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

void NativeSession::SendBytes(std::string bytes) {
  Send(std::make_shared<const std::string>(std::move(bytes)));
}

void NativeSession::DoRead() {
  auto on_read = [self = shared_from_this()](error_code ec, size_t n) { self->OnRead(ec, n); };
  if (tls_) {
    tls_->async_read_some(asio::buffer(read_buffer_), std::move(on_read));
  } else {
    socket_.async_read_some(asio::buffer(read_buffer_), std::move(on_read));
  }
}

void NativeSession::OnRead(error_code ec, size_t n) {
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

bool NativeSession::OnReadable() {
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
    error_code ec =
        n == 0 ? error_code(asio::error::eof) : error_code(errno, boost::system::system_category());
    registry_->Remove(this);  // the slot is free now, before the strand hears of it
    asio::post(strand_, [self = shared_from_this(), ec] { self->OnRead(ec, 0); });
    return false;
  }
  return true;  // the rest at the loop's next turn, after others' work
}

void NativeSession::Consume(size_t n) {
  backend::EventHub::ReplyScope replies(hub_);
  framer_.Feed(absl::string_view(read_buffer_.data(), n));
  for (;;) {
    if (closed_ || stop_reading_) return;  // disconnected meanwhile
    Framer::Frame frame = framer_.Next();
    if (frame.kind == Framer::Kind::kNone) break;
    Handle(frame);
  }
}

void NativeSession::Handle(const Framer::Frame& frame) {
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
    const telestra::v1::SubscribeCommand& subscribe = command.subscribe();
    extended_ = subscribe.extended();
    // Extended: answered `subscribed` (and the replay, or the gap and a
    // snapshot) in this client's delivery order (OnResume).
    if (subscribe.extended()) {
      hub_->Resume(
          reader_client_,
          subscribe.has_after_seq() ? std::optional<uint64_t>(subscribe.after_seq()) : std::nullopt,
          subscribe.instance(), command.token());
    }
    return;
  }
  server_->dispatcher_->Execute(reader_client_, command);
}

void NativeSession::Fail(const std::string& account, const absl::Status& why,
                         const std::string& token) {
  if (authenticated_) {
    server_->dispatcher_->ReplyFail(reader_client_, account, why, token);
    return;
  }
  const absl::Status refused = absl::PermissionDeniedError("Not authenticated");
  SendBytes(WireFrame(backend::CommandDispatcher::FailEvent(account, refused, token), false));
  if (++auth_failures_ < kMaxAuthFailures) return;
  server_->unauthenticated_++;
  spdlog::warn("native client from {} sent {} messages without authenticating; closing it", peer_,
               auth_failures_);
  EndFromReader(/*flush=*/true);
}

void NativeSession::EndFromReader(bool flush) {
  stop_reading_ = true;
  asio::post(strand_, [self = shared_from_this(), flush] {
    if (flush) {
      self->CloseAfterFlush(std::chrono::steady_clock::now() + kFailFlush);
    } else {
      self->Shutdown();
    }
  });
}

void NativeSession::CheckDeadlines() {
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

void NativeSession::Flush() {
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

void NativeSession::ArmWriteWait() {
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

void NativeSession::WriteTls() {
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
  asio::async_write(*tls_, asio::buffer(tls_out_),
                    [self = shared_from_this()](error_code ec, size_t written) {
                      if (ec) {
                        self->outbox_.Close();
                        self->Shutdown();
                        return;
                      }
                      self->outbox_.Consume(written);
                      if (self->tls_out_.capacity() > kRetainedWriteBytes)
                        std::string().swap(self->tls_out_);
                      self->WriteTls();
                    });
}

void NativeSession::CloseAfterFlush(SteadyTime deadline) {
  if (closed_ || closing_) return;
  if (deadline <= std::chrono::steady_clock::now()) {
    Shutdown();
    return;
  }
  closing_ = true;
  stop_reading_ = true;
  Detach();  // no event after this one
  if (const backend::FdLoop::WatchId watch = watch_.load(); watch != 0) {
    server_->options_.read_loop->Unwatch(watch);
  }
  deadline_.cancel();
  linger_.cancel();
  linger_.expires_at(deadline);
  linger_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec) return;
    spdlog::warn("native client ({}): {} bytes still unwritten at the close deadline", self->peer_,
                 self->outbox_.queued_bytes());
    self->Shutdown();
  });
  if (outbox_.CloseWhenDrained()) Shutdown();  // else the writer closes when done
}

void NativeSession::Shutdown() {
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
  if (const backend::FdLoop::WatchId watch = watch_.exchange(0); watch != 0) {
    // The read loop may be in recv() on the socket right now: it is
    // closed when the session is destroyed, after the watch has ended
    // (the watch owns a reference).
    server_->options_.read_loop->Unwatch(watch);
  } else if (!released_) {
    socket_.close(ignored);
  }
  registry_->Remove(this);
  spdlog::info("native client {} disconnected", peer_);
  // Called from a strand handler, which holds its own reference: the
  // session outlives the one dropped here.
  server_->Release(this);
}

}  // namespace telestra::gateway
