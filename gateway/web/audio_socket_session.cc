#include "gateway/web/audio_socket_session.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/buffers_to_string.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/websocket.hpp"
#include "boost/beast/websocket/ssl.hpp"
#include "gateway/web/audio_socket_codec.h"
#include "gateway/web/websocket_options.h"
#include "spdlog/spdlog.h"

namespace telestra::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using boost::system::error_code;

// What a stream's wakeup reaches: the session.
// Thread: the session's strand.
class AudioSocketTarget {
 public:
  virtual ~AudioSocketTarget() = default;
  // Thread: the session's strand.
  virtual void OnWakeup() = 0;
};

// Set on the strand when the session starts (RunAudioSocketSession); read
// only by the handlers the wakeup posts to that strand. A wakeup that comes
// before the session is set is not lost: the session pulls everything once
// its handshake is done.
// Thread: the connection's strand only.
struct AudioSocketRelay {
  std::weak_ptr<AudioSocketTarget> session;
};

namespace {

// After a message over this size the session gives back what it grew to
// read and parse it (its read buffer and its JSON parser), as /ws does.
constexpr size_t kShrinkAboveBytes = 16 * 1024;
// Marks sent and not yet come back: more are refused with a fail (each
// waiting mark is held by the call's tap until its audio has played).
constexpr int kMaxMarksWaiting = 100;

// One client's stream of one call's audio (docs/websocket-api.md, "Call
// audio: /ws/audio"): binary PCM frames both ways, JSON text messages for
// the rest, translated to and from the call audio model by
// audio_socket_codec.h; CallAudioSession does the stream itself.
//
// As the /ws session: one strand, one read and at most one write in
// flight, shared_from_this keeps it alive. Outbound the queue is the call's
// tap: the next message is pulled from the CallAudioSession only when the
// previous write has completed, so a client that does not read makes the
// tap drop its oldest frames (counted), never this session grow; besides
// that, at most one `fail` waits (reading pauses until it is written).
// Inbound, reading pauses while the CallAudioSession holds audio back
// (ReadyForInput) and resumes on its wakeup.
//
// The stream's wakeup runs on the media or SIP thread and only posts to the
// strand (AudioSocketRelay); the CallAudioSession is destroyed on the
// strand (Teardown, CloseWith), and its destructor waits for a wakeup
// that is running, which only posts.
//
// Admission (max_sessions) and the close-all of shutdown are the /ws
// sessions' SessionRegistry's.
//
// Thread: everything runs on the stream's strand, except CloseAfterFlush
// (any thread, under the registry's lock), which only posts to it.
template <class Stream>
class AudioSocketSession : public SessionRegistry::Session,
                           public AudioSocketTarget,
                           public std::enable_shared_from_this<AudioSocketSession<Stream>> {
 public:
  AudioSocketSession(WebContext* context, Stream stream, std::string peer, OpenedCallAudio opened)
      : context_(context),
        registry_(context->websocket_sessions()),
        ws_(std::move(stream)),
        peer_(std::move(peer)),
        audio_(std::move(opened.audio)),
        relay_(std::move(opened.relay)),
        start_(audio_->start()),
        flush_timer_(ws_.get_executor()) {}

  // May run after the WebServer (and context_) is gone, when the io_context
  // destroys its pending handlers: touches only the registry (kept alive)
  // and the CallAudioSession (whose backend and stats outlive the
  // io_context).
  ~AudioSocketSession() override { registry_->Remove(this); }

  void Run(WebHttpRequest request) {
    relay_->session = this->weak_from_this();
    const WebOptions& options = context_->options();
    switch (registry_->Add(this)) {
      case SessionRegistry::Admission::kAdmitted:
        break;
      case SessionRegistry::Admission::kFull: {
        // As /ws: a fail, then close code 1013; the stream is dropped now.
        refused_ = true;
        audio_.reset();
        const uint64_t count = registry_->stats().refused;
        if ((count & (count - 1)) == 0) {  // at 1, 2, 4, 8, ...: no flood
          spdlog::warn(
              "web: refused a /ws/audio session from {}: max-sessions ({}) reached ({} refused "
              "so far)",
              peer_, options.max_sessions, count);
        }
        break;
      }
      case SessionRegistry::Admission::kClosed:
        audio_.reset();
        return;  // shutting down: dropping the stream closes the connection
    }
    ApplyWebSocketOptions(ws_, options);
    ws_.async_accept(request,
                     [self = this->shared_from_this()](error_code ec) { self->OnAccept(ec); });
  }

  // SessionRegistry::Session (shutdown). Thread: any, under the registry's
  // lock: only posts, and takes no reference here.
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

  // AudioSocketTarget: the stream may have something for the client, or
  // room for its audio.
  void OnWakeup() override {
    if (!accepted_ || closed_) return;
    Pump();
    ContinueReading();
  }

 private:
  void OnAccept(error_code ec) {
    if (ec) {
      spdlog::info("web: /ws/audio handshake with {} failed: {}", peer_, ec.message());
      Teardown();
      return;
    }
    if (refused_) {
      control_.push_back(EncodeAudioFail(absl::StrCat(
          "Too many sessions (max-sessions is ", context_->options().max_sessions, ")")));
      close_after_write_ =
          websocket::close_reason(websocket::close_code::try_again_later, "too many sessions");
      Pump();
      DoRead();  // answers the client's close and pings meanwhile
      return;
    }
    accepted_ = true;
    spdlog::info("web audio stream on call {} of '{}' ({}, {} Hz) opened from {}",
                 start_.call_id(), start_.account(), AudioDirectionName(start_.direction()),
                 start_.sample_rate(), peer_);
    Pump();
    ContinueReading();
  }

  // ---- Outbound: one message at a time.

  // Starts the next write, if none is in flight: a waiting fail first, then
  // the close it asked for, then the stream's next message.
  void Pump() {
    if (writing_ || closed_ || closing_) return;
    if (!control_.empty()) {
      out_ = std::move(control_.front());
      control_.pop_front();
      Write(/*text=*/true);
      return;
    }
    if (close_after_write_) {
      CloseWith(*close_after_write_);
      return;
    }
    if (!accepted_ || !audio_) return;
    telestra::v1::CallAudioResponse response;
    while (audio_->Next(&response)) {
      if (response.has_audio()) {
        if (shutting_down_) {  // no more sound once the gateway shuts down
          response.Clear();
          continue;
        }
        out_ = std::move(*response.mutable_audio()->mutable_pcm());
        Write(/*text=*/false);
        return;
      }
      if (response.has_mark() && marks_waiting_ > 0) --marks_waiting_;
      if (response.has_stopped()) {
        spdlog::info(
            "web audio stream on call {} of '{}' ({}) stopped: {} ({} frames sent, {} dropped, {} "
            "spoken)",
            start_.call_id(), start_.account(), peer_, response.stopped().reason(),
            response.stopped().frames_sent(), response.stopped().frames_dropped(),
            response.stopped().frames_spoken());
        close_after_write_ =
            websocket::close_reason(websocket::close_code::normal, "call audio stopped");
      }
      out_ = EncodeAudioEvent(response);
      Write(/*text=*/true);
      return;
    }
    // Nothing due now (the wakeup says when); at shutdown that is the end.
    if (shutting_down_) {
      CloseWith(websocket::close_reason(websocket::close_code::going_away,
                                        "gateway shutting down"));
    }
  }

  void Write(bool text) {
    writing_ = true;
    ws_.text(text);
    ws_.async_write(asio::buffer(out_), [self = this->shared_from_this()](error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(error_code ec) {
    writing_ = false;
    if (ec) {
      if (!closed_) spdlog::info("web audio stream ({}) write failed: {}", peer_, ec.message());
      Teardown();
      return;
    }
    if (closed_) return;
    Pump();
    ContinueReading();
  }

  // ---- Inbound: one read at a time, paused for back-pressure.

  void ContinueReading() {
    if (reading_ || closed_ || closing_) return;
    if (!refused_) {
      if (!accepted_ || close_after_write_) return;
      if (!control_.empty()) return;  // a fail waits to be written first
      if (audio_ && !audio_->ReadyForInput()) {
        // Back-pressure: the wakeup resumes. No operation is pending
        // meanwhile, so the session keeps itself (the call's media takes
        // a frame every 20 ms, so this lasts at most a few seconds, or
        // until the stream stops).
        paused_self_ = this->shared_from_this();
        return;
      }
    }
    DoRead();
  }

  void DoRead() {
    if (reading_ || closed_) return;
    reading_ = true;
    ws_.async_read(read_buffer_, [self = this->shared_from_this()](error_code ec, size_t n) {
      self->OnRead(ec, n);
    });
    paused_self_.reset();  // the read holds the session now
  }

  void OnRead(error_code ec, size_t n) {
    reading_ = false;
    if (ec) {
      if (ec == websocket::error::closed) {
        spdlog::info("web audio stream ({}) closed by the client", peer_);
      } else if (ec == websocket::error::message_too_big) {
        // Beast has sent close code 1009 (message too big).
        context_->Count(WebCounter::kOversizeClose);
        spdlog::warn("web audio stream ({}) sent a message over {} bytes: closed with 1009",
                     peer_, context_->options().max_message_bytes);
      } else if (ec == beast::error::timeout) {
        context_->Count(WebCounter::kIdleTimeout);
        spdlog::info("web audio stream ({}) idle (no pong) for {} ms: closed", peer_,
                     context_->options().idle_timeout.count());
      } else if (ec != asio::error::operation_aborted || !closed_) {
        spdlog::info("web audio stream ({}) ended: {}", peer_, ec.message());
      }
      Teardown();
      return;
    }
    if (closed_) return;
    if (!refused_ && !closing_ && !close_after_write_ && audio_) {
      if (ws_.got_text()) {
        HandleCommand(beast::buffers_to_string(read_buffer_.data()));
      } else {
        const auto data = read_buffer_.data();
        HandleAudio(absl::string_view(static_cast<const char*>(data.data()), data.size()));
      }
    }
    read_buffer_.consume(n);
    if (n > kShrinkAboveBytes) decoder_.emplace();
    if (read_buffer_.capacity() > kShrinkAboveBytes) read_buffer_.shrink_to_fit();
    Pump();  // a fail, or a mark that came due at once
    ContinueReading();
  }

  void HandleAudio(absl::string_view pcm) {
    absl::Status status = audio_->OnAudio(pcm);
    if (status.ok()) return;
    // Bad audio (size, or a stream that only listens): the client's
    // mistake, and the stream ends; the call is not affected.
    spdlog::info("web audio stream on call {} of '{}' ({}): {}; closing with 1003",
                 start_.call_id(), start_.account(), peer_, std::string(status.message()));
    control_.push_back(EncodeAudioFail(status.message()));
    close_after_write_ = websocket::close_reason(websocket::close_code::unknown_data, "bad audio");
  }

  void HandleCommand(const std::string& text) {
    absl::StatusOr<telestra::v1::CallAudioRequest> request = decoder_->Decode(text);
    if (!request.ok()) {
      control_.push_back(EncodeAudioFail(request.status().message()));
      return;
    }
    if (request->has_mark()) {
      if (marks_waiting_ >= kMaxMarksWaiting) {
        control_.push_back(EncodeAudioFail(
            absl::StrCat("Too many marks waiting (at most ", kMaxMarksWaiting, ")")));
        return;
      }
      absl::Status marked = audio_->OnMark(std::move(*request->mutable_mark()->mutable_name()));
      if (!marked.ok()) {
        control_.push_back(EncodeAudioFail(marked.message()));
        return;
      }
      ++marks_waiting_;
    } else if (request->has_clear()) {
      audio_->OnClear();
    }
  }

  // ---- Ends.

  // The gateway shuts down: the events due now (the call's audio-stopped
  // among them) are written, frames no longer; then close 1001, or 1000
  // after audio-stopped. The connection is closed at `deadline` regardless.
  void Shutdown(std::chrono::steady_clock::time_point deadline) {
    shutting_down_ = true;
    if (closed_ || closing_ || refused_) {
      ReportFlushed();
      return;
    }
    flush_timer_.expires_at(deadline);
    flush_timer_.async_wait([self = this->shared_from_this()](error_code ec) {
      if (ec || self->closed_ || self->closing_) return;
      spdlog::warn("web audio stream ({}) not written out at shutdown: closed", self->peer_);
      self->Teardown();
    });
    Pump();
  }

  // At shutdown: this session is done (or closing), so it leaves the
  // registry at once (its AwaitEmpty waits for that, not for the close
  // handshake).
  void ReportFlushed() {
    if (shutting_down_) registry_->Remove(this);
  }

  // The closing handshake (bounded by handshake_timeout); the stream is
  // detached from the call at once.
  void CloseWith(const websocket::close_reason& reason) {
    if (closed_ || closing_) return;
    closing_ = true;
    close_after_write_.reset();
    audio_.reset();
    flush_timer_.cancel();
    ws_.async_close(reason, [self = this->shared_from_this()](error_code) { self->Teardown(); });
    paused_self_.reset();  // the close holds the session now
    ReportFlushed();
  }

  // Ends the session at once: the stream detached, the socket closed
  // (pending operations complete with operation_aborted).
  void Teardown() {
    if (closed_) return;
    closed_ = true;
    audio_.reset();
    flush_timer_.cancel();
    registry_->Remove(this);
    // Every entry point (a handler, the wakeup's post) holds a reference
    // of its own: this is never the last one.
    paused_self_.reset();
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).close();
  }

  WebContext* const context_;
  const std::shared_ptr<SessionRegistry> registry_;  // kept alive by its sessions
  websocket::stream<Stream> ws_;
  const std::string peer_;
  std::unique_ptr<CallAudioSession> audio_;  // null once refused, closing or closed
  const std::shared_ptr<AudioSocketRelay> relay_;
  const telestra::v1::CallAudioStart start_;  // for logs
  std::optional<AudioCommandDecoder> decoder_{std::in_place};  // renewed after a large message
  beast::flat_buffer read_buffer_;
  std::string out_;                  // the message being written
  std::deque<std::string> control_;  // fails waiting to be written (at most 1 or 2)
  // The close to start once what is before it has been written.
  std::optional<websocket::close_reason> close_after_write_;
  asio::steady_timer flush_timer_;  // shutdown: the end of the flush
  // Set while reading is paused for back-pressure, when no operation holds
  // the session (the wakeup only has a weak reference).
  std::shared_ptr<AudioSocketSession> paused_self_;
  int marks_waiting_ = 0;
  bool accepted_ = false;  // the handshake is done and the stream admitted
  bool refused_ = false;   // over max_sessions: a fail, then close 1013
  bool reading_ = false;
  bool writing_ = false;
  bool shutting_down_ = false;  // the registry's CloseAll reached it
  bool closing_ = false;        // close handshake started
  bool closed_ = false;         // torn down
};

}  // namespace

absl::StatusOr<OpenedCallAudio> OpenCallAudioForSocket(WebContext* context,
                                                       const asio::any_io_executor& strand,
                                                       const RequestTarget& target) {
  CallAudioStats* stats = context->options().call_audio_stats;
  absl::StatusOr<telestra::v1::CallAudioStart> start = ParseAudioSocketQuery(target);
  if (!start.ok()) {
    if (stats != nullptr) ++stats->streams_refused;
    return start.status();
  }
  auto relay = std::make_shared<AudioSocketRelay>();
  // Runs on the media or SIP thread: only posts.
  auto wakeup = [strand, relay] {
    asio::post(strand, [relay] {
      if (std::shared_ptr<AudioSocketTarget> session = relay->session.lock()) session->OnWakeup();
    });
  };
  absl::StatusOr<std::unique_ptr<CallAudioSession>> audio =
      CallAudioSession::Open(context->backend(), *start, std::move(wakeup), stats);
  if (!audio.ok()) return audio.status();
  return OpenedCallAudio{*std::move(audio), std::move(relay)};
}

http::status AudioRefusalStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return http::status::bad_request;
    case absl::StatusCode::kNotFound:
      return http::status::not_found;
    case absl::StatusCode::kResourceExhausted:
      return http::status::too_many_requests;
    default:
      return http::status::internal_server_error;
  }
}

template <class Stream>
void RunAudioSocketSession(WebContext* context, Stream stream, WebHttpRequest request,
                           std::string peer, OpenedCallAudio opened) {
  auto session = std::make_shared<AudioSocketSession<Stream>>(context, std::move(stream),
                                                              std::move(peer), std::move(opened));
  session->Run(std::move(request));
}

template void RunAudioSocketSession<WebPlainStream>(WebContext*, WebPlainStream, WebHttpRequest,
                                                    std::string, OpenedCallAudio);
template void RunAudioSocketSession<WebTlsStream>(WebContext*, WebTlsStream, WebHttpRequest,
                                                  std::string, OpenedCallAudio);

}  // namespace telestra::gateway
