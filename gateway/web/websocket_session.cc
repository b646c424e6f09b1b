#include "gateway/web/websocket_session.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/buffers_to_string.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/websocket.hpp"
#include "boost/beast/websocket/ssl.hpp"
#include "gateway/native/json_codec.h"
#include "gateway/session/wire_slots.h"
#include "gateway/web/websocket_options.h"
#include "gateway/web/ws_messages.h"
#include "spdlog/spdlog.h"

namespace telestra::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;

namespace {

// After a message over this size the session gives back what it grew to
// read and parse it (its read buffer and its JSON codec's buffers), so that
// one large message does not keep ~6 times its size allocated per session.
constexpr size_t kShrinkAboveBytes = 16 * 1024;

// One WebSocket client: JSON commands in (one per text message), JSON events
// out (one per text message, extended, with "seq").
//
// Like NativeSession (gateway/native/native_session.h): one strand per
// session, one read and at most one write in flight, a bounded outbound
// queue. The session lives as long as its pending operations hold it
// (shared_from_this).
//
// At shutdown (Close) the session detaches from the hub, writes out what is
// already queued for it (a client that was behind still gets every event up
// to the end, call-ended included), then closes with 1001; what is not
// written by the flush deadline is counted as undelivered and the
// connection closed.
//
// Admission, the close-all of shutdown and the slow-client counters are the
// front ends' shared SessionRegistry's (WebContext::websocket_sessions()).
//
// Thread: everything runs on the stream's strand, except OnEvent and
// OnDelivery (the hub's delivering thread, no lock held) and
// CloseAfterFlush (any thread, under the registry's lock), which only post
// to the strand.
template <class Stream>
class WebSocketSession : public SessionRegistry::Session,
                         public backend::EventListener,
                         public std::enable_shared_from_this<WebSocketSession<Stream>> {
 public:
  WebSocketSession(WebContext* context, Stream stream, WebSocketStart start)
      : context_(context),
        hub_(context->hub()),
        registry_(context->websocket_sessions()),
        ws_(std::move(stream)),
        start_(std::move(start)),
        flush_timer_(ws_.get_executor()) {}

  // May run after the WebServer (and context_) is gone: the io_context
  // destroys pending handlers, and with them the last owners of sessions,
  // only when it is destroyed itself. Touches only the hub, which outlives
  // the io_context, and the registry, which the session keeps alive.
  ~WebSocketSession() override {
    registry_->Remove(this);
    Detach();
  }

  void Run(WebHttpRequest request) {
    const WebOptions& options = context_->options();
    switch (registry_->Add(this)) {
      case SessionRegistry::Admission::kAdmitted:
        break;
      case SessionRegistry::Admission::kFull: {
        // Refused: a fail, then close code 1013; it holds no slot meanwhile
        // and is closed after handshake_timeout at the latest.
        refused_ = true;
        const uint64_t count = registry_->stats().refused;
        if ((count & (count - 1)) == 0) {  // at 1, 2, 4, 8, ...: no flood
          spdlog::warn(
              "web: refused a WebSocket session from {}: max-sessions ({}) reached ({} refused "
              "so far)",
              start_.peer, options.max_sessions, count);
        }
        break;
      }
      case SessionRegistry::Admission::kClosed:
        return;  // shutting down: dropping the stream closes the connection
    }
    ApplyWebSocketOptions(ws_, options);
    ws_.text(true);
    ws_.async_accept(request,
                     [self = this->shared_from_this()](error_code ec) { self->OnAccept(ec); });
  }

  // SessionRegistry::Session (shutdown). Thread: any, under the registry's
  // lock: only posts, and takes no reference here (the last one must never
  // be dropped under that lock: the destructor removes the session).
  void CloseAfterFlush(absl::Time deadline) override {
    const absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
    const std::chrono::steady_clock::time_point flush_deadline =
        std::chrono::steady_clock::now() +
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            absl::ToChronoNanoseconds(left));
    asio::post(ws_.get_executor(), [weak = this->weak_from_this(), flush_deadline] {
      if (auto self = weak.lock()) self->Shutdown(flush_deadline);
    });
  }

  void OnEvent(const backend::EventPtr& event) override {
    OnDelivery(event, std::make_shared<backend::EventEncodings>());
  }

  // Thread: the hub's delivering thread; only posts to the strand, where
  // the event's JSON is taken from (or made once into) its shared
  // encodings.
  void OnDelivery(const backend::EventPtr& event,
                  const backend::EncodingsPtr& encodings) override {
    std::shared_ptr<WebSocketSession> self = this->weak_from_this().lock();
    if (!self) return;  // being destroyed
    asio::post(ws_.get_executor(),
               [self = std::move(self), event, encodings] { self->Deliver(*event, encodings); });
  }

 private:
  void OnAccept(error_code ec) {
    if (ec) {
      spdlog::info("web: WebSocket handshake with {} failed: {}", start_.peer, ec.message());
      Teardown();
      return;
    }
    if (refused_) {
      telestra::v1::Event fail = backend::CommandDispatcher::FailEvent(
          "",
          absl::ResourceExhaustedError(absl::StrCat("Too many sessions (max-sessions is ",
                                                    context_->options().max_sessions, ")")),
          "");
      close_after_flush_ =
          websocket::close_reason(websocket::close_code::try_again_later, "too many sessions");
      Send(JsonCodec::Encode(fail, /*extended=*/true), /*bounded=*/false);
      DoRead();  // answers the client's close and pings meanwhile
      return;
    }
    Open();
    DoRead();
  }

  // Attaches to the hub first, then sends the opening state, so that no
  // event falls between the two: every event from the attach on reaches
  // Deliver, which drops the ones the opening already covers (seq <= floor_).
  void Open() {
    backend::EventHub* hub = hub_;
    client_ = hub->Attach(this);
    bool resumed = false;
    std::string how = "snapshot";
    if (start_.after_seq.has_value()) {
      const uint64_t after_seq = *start_.after_seq;
      const backend::ResumePoint point = hub->PlanResume(after_seq, start_.instance);
      WebResumePlan plan = PlanWebResume(point);
      if (plan.resume) {
        resumed = true;
        how = absl::StrCat("resume after ", after_seq, ", ", point.events.size(), " replayed");
        Send(ResumedMessage(context_->instance(), after_seq, point.events.size()),
             /*bounded=*/false);
        floor_ = after_seq;
        for (const backend::EventPtr& event : point.events) {
          Send(JsonCodec::Encode(*event, /*extended=*/true), /*bounded=*/false);
          floor_ = std::max(floor_, event->seq());
        }
      } else {
        context_->Count(WebCounter::kGap);
        how = absl::StrCat("gap after ", after_seq, ": ", plan.gap_reason, "; snapshot");
        Send(GapMessage(after_seq, plan.gap_reason), /*bounded=*/false);
      }
    }
    if (!resumed) {
      // The backend changes state before it publishes the event, under the
      // same lock, so the accounts read after last_seq() include every
      // event up to it; later ones arrive live (a few possibly twice over:
      // applying them again is harmless).
      const uint64_t seq = hub->last_seq();
      Send(SnapshotMessage(context_->instance(), seq, context_->backend()->ListAccounts()),
           /*bounded=*/false);
      floor_ = seq;
    }
    spdlog::info("web session {} opened from {} ({})", client_, start_.peer, how);
  }

  // The gateway shuts down: no more events; what is queued is written out
  // until `deadline`, then the session closes with 1001.
  void Shutdown(std::chrono::steady_clock::time_point deadline) {
    shutting_down_ = true;
    const backend::ClientId id = client_;
    Detach();
    if (closed_ || closing_ || refused_) {
      ReportFlushed();
      return;
    }
    close_after_flush_ =
        websocket::close_reason(websocket::close_code::going_away, "gateway shutting down");
    if (!writing_ && queue_.empty()) {
      CloseAfterFlush();
      return;
    }
    flushing_ = true;
    spdlog::debug("web session {} ({}): writing out {} queued messages before closing", id,
                  start_.peer, queue_.size());
    flush_timer_.expires_at(deadline);
    flush_timer_.async_wait([self = this->shared_from_this(), id](error_code ec) {
      if (ec || !self->flushing_ || self->closed_) return;
      const uint64_t lost = self->queue_.size();
      self->registry_->CountUndelivered(lost);
      spdlog::warn(
          "web session {} ({}) still had {} messages ({} bytes) to write at shutdown: closed", id,
          self->start_.peer, lost, self->queued_bytes_);
      self->Teardown();
    });
  }

  // At shutdown: this session is written out (or ended), so it leaves the
  // registry at once (the registry's AwaitEmpty waits for that, not for
  // the close handshake).
  void ReportFlushed() {
    flushing_ = false;
    if (shutting_down_) registry_->Remove(this);
  }

  // The queue is written out: the close that was waiting for it.
  void CloseAfterFlush() {
    websocket::close_reason reason = *close_after_flush_;
    close_after_flush_.reset();
    flush_timer_.cancel();
    CloseWith(reason);
    ReportFlushed();
  }

  void Detach() {
    if (client_ != 0) {
      hub_->Detach(client_);
      client_ = 0;
    }
  }

  void DoRead() {
    ws_.async_read(read_buffer_, [self = this->shared_from_this()](error_code ec, size_t n) {
      self->OnRead(ec, n);
    });
  }

  void OnRead(error_code ec, size_t n) {
    if (ec) {
      if (ec == websocket::error::closed) {
        spdlog::info("web session {} ({}) closed by the client", client_, start_.peer);
      } else if (ec == websocket::error::message_too_big) {
        // Beast has sent close code 1009 (message too big).
        context_->Count(WebCounter::kOversizeClose);
        spdlog::warn("web session {} ({}) sent a message over {} bytes: closed with 1009", client_,
                     start_.peer, context_->options().max_message_bytes);
      } else if (ec == beast::error::timeout) {
        context_->Count(WebCounter::kIdleTimeout);
        spdlog::info("web session {} ({}) idle (no pong) for {} ms: closed", client_, start_.peer,
                     context_->options().idle_timeout.count());
      } else if (ec != asio::error::operation_aborted || !closed_) {
        spdlog::info("web session {} ({}) ended: {}", client_, start_.peer, ec.message());
      }
      Teardown();
      return;
    }
    if (!closed_ && !refused_ && !closing_ && client_ != 0) {
      if (ws_.got_text()) {
        Handle(beast::buffers_to_string(read_buffer_.data()));
      } else {
        context_->dispatcher()->ReplyFail(
            client_, "",
            absl::InvalidArgumentError(
                "Malformed JSON: binary messages are not supported, send text"),
            "");
      }
    }
    read_buffer_.consume(n);
    if (n > kShrinkAboveBytes) codec_.emplace();
    if (read_buffer_.capacity() > kShrinkAboveBytes) read_buffer_.shrink_to_fit();
    if (!closed_) DoRead();
  }

  void Handle(const std::string& text) {
    backend::CommandDispatcher* dispatcher = context_->dispatcher();
    DecodedCommand decoded = codec_->Decode(text);
    if (!decoded.command.ok()) {
      dispatcher->ReplyFail(client_, decoded.account, decoded.command.status(), decoded.token);
      return;
    }
    const telestra::v1::Command& command = *decoded.command;
    // Extended events are always on here: `subscribe` is accepted and ignored.
    if (command.has_subscribe()) return;
    dispatcher->Execute(client_, command);
  }

  void Deliver(const telestra::v1::Event& event, const backend::EncodingsPtr& encodings) {
    if (closed_ || closing_) return;
    if (event.seq() <= floor_) return;  // already in the snapshot / replay
    const std::string& json = encodings->Get(
        kWebSocketJsonSlot, [&] { return JsonCodec::Encode(event, /*extended=*/true); });
    Send(Message(encodings, &json), /*bounded=*/true);  // shared, not copied
  }

  using Message = std::shared_ptr<const std::string>;

  void Send(std::string text, bool bounded) {
    Send(std::make_shared<const std::string>(std::move(text)), bounded);
  }

  // Queues one text message. A bounded send to a session whose queue is
  // over max_queued_bytes disconnects it instead: it does not read.
  void Send(Message text, bool bounded) {
    if (closed_) return;
    if (bounded && queued_bytes_ > context_->options().max_queued_bytes) {
      const uint64_t lost = queue_.size() + 1;
      registry_->CountSlowDisconnect(lost);
      spdlog::warn(
          "web session {} ({}) is not reading: {} messages ({} bytes) undelivered; "
          "disconnecting it",
          client_, start_.peer, lost, queued_bytes_);
      Teardown();
      return;
    }
    queued_bytes_ += text->size();
    queue_.push_back(std::move(text));
    if (!writing_) DoWrite();
  }

  void DoWrite() {
    writing_ = true;
    ws_.async_write(
        asio::buffer(*queue_.front()),
        [self = this->shared_from_this()](error_code ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(error_code ec) {
    writing_ = false;
    if (ec) {
      if (!closed_) {
        spdlog::info("web session {} ({}) write failed: {}", client_, start_.peer, ec.message());
      }
      Teardown();
      return;
    }
    queued_bytes_ -= queue_.front()->size();
    queue_.pop_front();
    if (closed_) return;
    if (!queue_.empty()) {
      DoWrite();
    } else if (close_after_flush_) {
      CloseAfterFlush();
    }
  }

  // The closing handshake; Beast waits for a write in flight to finish
  // (bounded by handshake_timeout).
  void CloseWith(const websocket::close_reason& reason) {
    if (closed_ || closing_) return;
    closing_ = true;
    Detach();
    ws_.async_close(reason, [self = this->shared_from_this()](error_code) { self->Teardown(); });
  }

  // Ends the session at once: no more events, the socket closed (pending
  // operations complete with operation_aborted).
  void Teardown() {
    if (closed_) return;
    closed_ = true;
    Detach();
    flush_timer_.cancel();
    registry_->Remove(this);
    ReportFlushed();
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).close();
  }

  WebContext* const context_;
  backend::EventHub* const hub_;  // outlives the io_context, unlike context_
  const std::shared_ptr<SessionRegistry> registry_;  // kept alive by its sessions
  websocket::stream<Stream> ws_;
  const WebSocketStart start_;
  backend::ClientId client_ = 0;  // in the hub; 0 = detached
  std::optional<JsonCodec> codec_{std::in_place};  // renewed after a large message
  beast::flat_buffer read_buffer_;
  std::deque<Message> queue_;  // encodings shared with other sessions
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  uint64_t floor_ = 0;    // events up to this seq were sent in the opening
  bool refused_ = false;  // over max_sessions: a fail, then close 1013
  // The close to start once the queue is written out (refused, shutdown).
  std::optional<websocket::close_reason> close_after_flush_;
  asio::steady_timer flush_timer_;  // shutdown: the end of the flush
  bool flushing_ = false;           // shutdown: writing out the queue
  bool shutting_down_ = false;      // the registry's CloseAll reached it
  bool closing_ = false;  // close handshake started
  bool closed_ = false;   // torn down
};

}  // namespace

template <class Stream>
void RunWebSocketSession(WebContext* context, Stream stream, WebHttpRequest request,
                         WebSocketStart start) {
  auto session =
      std::make_shared<WebSocketSession<Stream>>(context, std::move(stream), std::move(start));
  session->Run(std::move(request));
}

template void RunWebSocketSession<WebPlainStream>(WebContext*, WebPlainStream, WebHttpRequest,
                                                  WebSocketStart);
template void RunWebSocketSession<WebTlsStream>(WebContext*, WebTlsStream, WebHttpRequest,
                                                WebSocketStart);

}  // namespace telestra::gateway
