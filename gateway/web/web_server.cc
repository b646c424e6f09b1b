#include "gateway/web/web_server.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "boost/beast/websocket/rfc6455.hpp"
#include "gateway/web/audio_socket_session.h"
#include "gateway/web/http_util.h"
#include "gateway/web/websocket_session.h"
#include "spdlog/spdlog.h"

namespace telestra::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr char kServerName[] = "telestra-gateway";
constexpr char kWebSocketPath[] = "/ws";
constexpr char kAudioSocketPath[] = "/ws/audio";
constexpr char kHealthPath[] = "/healthz";
// Requests are GETs: headers are small and bodies are not expected.
constexpr uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr uint64_t kMaxBodyBytes = 4 * 1024;
// After a failed accept (out of descriptors, EMFILE/ENFILE): the pause
// before the next try, as on the native port.
constexpr std::chrono::milliseconds kAcceptRetry(100);
// A Host header as shown in logs and error pages.
constexpr size_t kMaxShownHost = 100;

template <class Stream>
constexpr bool kIsTls = std::is_same_v<Stream, WebTlsStream>;

using StringResponse = http::response<http::string_body>;

// The cookie that carries the token for the page's files and WebSocket once
// the page was opened with ?token=. Cookies ignore ports: the port keeps two
// gateways on one host apart.
std::string TokenCookieName(int port) { return absl::StrCat("telestra_token_", port); }

// Refusals are logged at counts 1, 2, 4, 8, ...: a flood of them cannot
// flood the log, and the count says how many there were.
bool ShouldLog(uint64_t count) { return (count & (count - 1)) == 0; }

// A client-supplied header value made safe to show: printable ASCII, at
// most kMaxShownHost characters.
std::string Printable(absl::string_view value) {
  std::string out;
  for (char c : value.substr(0, kMaxShownHost)) {
    out.push_back(absl::ascii_isprint(static_cast<unsigned char>(c)) ? c : '?');
  }
  if (value.size() > kMaxShownHost) out.append("...");
  return out;
}

std::string CookieEscape(absl::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// Headers every response carries.
template <class Body>
void CommonHeaders(http::response<Body>& response) {
  response.set(http::field::server, kServerName);
  response.set("X-Content-Type-Options", "nosniff");
  response.set("Referrer-Policy", "no-referrer");
}

StringResponse TextResponse(const WebHttpRequest& request, http::status status,
                            absl::string_view content_type, std::string body) {
  StringResponse response{status, request.version()};
  CommonHeaders(response);
  response.set(http::field::content_type,
               beast::string_view(content_type.data(), content_type.size()));
  response.set(http::field::cache_control, "no-store");
  response.keep_alive(request.keep_alive());
  const bool head = request.method() == http::verb::head;
  response.content_length(body.size());
  if (!head) response.body() = std::move(body);
  return response;
}

StringResponse ErrorResponse(const WebHttpRequest& request, http::status status,
                             absl::string_view message) {
  return TextResponse(request, status, "text/plain; charset=utf-8",
                      absl::StrCat(static_cast<unsigned>(status), " ",
                                   absl::string_view(http::obsolete_reason(status).data(),
                                                     http::obsolete_reason(status).size()),
                                   ": ", message, "\n"));
}

std::string HealthJson(const WebContext& context) {
  WebStats s = context.stats();
  return absl::StrCat(
      R"({"status":"ok","instance":")", context.instance(), R"(","last_seq":)",
      context.hub()->last_seq(), R"(,"sessions":)", s.sessions, R"(,"http_connections":)",
      s.http_connections, R"(,"sessions_accepted":)", s.sessions_accepted,
      R"(,"sessions_refused":)", s.sessions_refused, R"(,"http_refused":)", s.http_refused,
      R"(,"http_address_refused":)", s.http_address_refused, R"(,"http_evicted":)",
      s.http_evicted, R"(,"http_timeouts":)", s.http_timeouts, R"(,"hosts_refused":)",
      s.hosts_refused,
      R"(,"slow_disconnects":)", s.slow_disconnects, R"(,"undelivered_events":)",
      s.undelivered_events, R"(,"oversize_closes":)", s.oversize_closes, R"(,"idle_timeouts":)",
      s.idle_timeouts, R"(,"unauthorized":)", s.unauthorized, R"(,"gaps":)", s.gaps, "}\n");
}

// Content-Security-Policy of the dashboard: its own files only; the
// WebSocket back to the same host (listed explicitly for browsers whose
// 'self' does not cover ws:/wss:).
std::string ContentSecurityPolicy(absl::string_view host, bool tls) {
  std::string connect = "'self'";
  if (!host.empty() && host.find_first_of(" ;,'\"") == absl::string_view::npos) {
    absl::StrAppend(&connect, tls ? " wss://" : " ws://", host);
  }
  return absl::StrCat(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
      "connect-src ",
      connect, "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
}

// One HTTP connection: reads requests (keep-alive) and answers them, until
// it upgrades to a WebSocket (the stream moves to a WebSocket session).
// Thread: everything runs on the connection's strand; Close posts to it.
template <class Stream>
class HttpSession : public HttpConnection,
                    public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(WebContext* context, Stream stream, std::string peer)
      : context_(context), stream_(std::move(stream)), peer_(std::move(peer)) {}

  // Not a WebSocket: nothing to write out first.
  void Close() override {
    asio::post(beast::get_lowest_layer(stream_).get_executor(),
               [self = this->shared_from_this()] { self->End(); });
  }

  void Start(uint64_t key) {
    key_ = key;
    if constexpr (kIsTls<Stream>) {
      beast::get_lowest_layer(stream_).expires_after(context_->options().handshake_timeout);
      stream_.async_handshake(
          asio::ssl::stream_base::server, [self = this->shared_from_this()](error_code ec) {
            if (ec) {
              if (ec == beast::error::timeout) self->context_->Count(WebCounter::kHttpTimeout);
              spdlog::debug("web: TLS handshake with {} failed: {}", self->peer_, ec.message());
              self->End();
              return;
            }
            self->DoRead();
          });
    } else {
      DoRead();
    }
  }

 private:
  // Waits for the next request, which must arrive whole within
  // header_timeout (slowloris); meanwhile the connection may be evicted to
  // make room for a new one (WebContext::RegisterHttp).
  void DoRead() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(kMaxBodyBytes);
    context_->SetWaiting(key_, true);
    beast::get_lowest_layer(stream_).expires_after(context_->options().header_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(error_code ec) {
    if (ec == http::error::end_of_stream) {
      DoShutdown();
      return;
    }
    if (ec) {
      if (ec == beast::error::timeout) {
        const uint64_t count = context_->Count(WebCounter::kHttpTimeout);
        if (ShouldLog(count)) {
          spdlog::info(
              "web: closed a connection from {}: no complete request within {} ms ({} so far)",
              peer_, context_->options().header_timeout.count(), count);
        }
      } else if (ec != asio::error::operation_aborted) {
        spdlog::debug("web: HTTP read from {} ended: {}", peer_, ec.message());
      }
      End();
      return;
    }
    context_->SetWaiting(key_, false);
    WebHttpRequest request = parser_->release();
    // For the access log: method and path, never the query (tokens).
    absl::string_view target(request.target().data(), request.target().size());
    request_line_ = absl::StrCat(
        absl::string_view(request.method_string().data(), request.method_string().size()), " ",
        target.substr(0, std::min(target.find('?'), size_t{200})));
    if (beast::websocket::is_upgrade(request)) {
      Upgrade(std::move(request));
      return;
    }
    Handle(request);
  }

  // Is the request allowed? With a token configured: ?token=, a Bearer
  // header or the cookie must match. `*via_query` is set when ?token= did,
  // so that the response can hand the page its cookie.
  bool Authorized(const WebHttpRequest& request, const RequestTarget& target, bool* via_query) {
    *via_query = false;
    const std::string& expected = context_->options().token;
    if (expected.empty()) return true;
    if (std::optional<std::string> token = target.Param("token"); token.has_value()) {
      if (TokenEquals(*token, expected)) {
        *via_query = true;
        return true;
      }
      return false;  // a wrong token in the URL is not rescued by the cookie
    }
    auto authorization = request.find(http::field::authorization);
    if (authorization != request.end()) {
      std::optional<std::string> token = BearerToken(
          absl::string_view(authorization->value().data(), authorization->value().size()));
      if (token.has_value() && TokenEquals(*token, expected)) return true;
    }
    auto cookie = request.find(http::field::cookie);
    if (cookie != request.end()) {
      std::optional<std::string> token =
          CookieValue(absl::string_view(cookie->value().data(), cookie->value().size()),
                      TokenCookieName(context_->port()));
      if (token.has_value() && TokenEquals(*token, expected)) return true;
    }
    return false;
  }

  // DNS rebinding: a page of another site whose name was made to resolve
  // to this gateway sends that name as Host; its Origin then matches. So
  // Host must be an address, localhost or a name of [web-settings] hosts
  // (HostAllowed). Answers 403 and returns true when it is not.
  bool RefuseHost(const WebHttpRequest& request) {
    auto host = request.find(http::field::host);
    const absl::string_view value =
        host == request.end() ? absl::string_view()
                              : absl::string_view(host->value().data(), host->value().size());
    if (HostAllowed(host != request.end(), value, context_->options().hosts)) return false;
    const uint64_t count = context_->Count(WebCounter::kHostRefused);
    const std::string shown = Printable(value);
    if (ShouldLog(count)) {
      spdlog::warn(
          "web: refused a request from {}: Host '{}' is not allowed (add the name to "
          "[web-settings] hosts if it is this gateway's; {} refused so far)",
          peer_, shown, count);
    }
    Send(ErrorResponse(
        request, http::status::forbidden,
        absl::StrCat("the host name '", shown,
                     "' is not allowed: open the gateway by its address or localhost, or add "
                     "the name to [web-settings] hosts")));
    return true;
  }

  StringResponse Unauthorized(const WebHttpRequest& request) {
    context_->Count(WebCounter::kUnauthorized);
    StringResponse response =
        ErrorResponse(request, http::status::unauthorized,
                      "this gateway requires its token: open the dashboard as /?token=TOKEN, "
                      "or send the header \"Authorization: Bearer TOKEN\"");
    response.set(http::field::www_authenticate, "Bearer realm=\"telestra\"");
    return response;
  }

  void Handle(const WebHttpRequest& request) {
    absl::StatusOr<RequestTarget> target =
        ParseRequestTarget(absl::string_view(request.target().data(), request.target().size()));
    if (!target.ok()) {
      Send(ErrorResponse(request, http::status::bad_request, target.status().message()));
      return;
    }
    const http::verb method = request.method();
    if (method != http::verb::get && method != http::verb::head) {
      StringResponse response =
          ErrorResponse(request, http::status::method_not_allowed, "only GET and HEAD are served");
      response.set(http::field::allow, "GET, HEAD");
      Send(std::move(response));
      return;
    }
    if (target->path == kHealthPath) {
      Send(TextResponse(request, http::status::ok, "application/json", HealthJson(*context_)));
      return;
    }
    if (RefuseHost(request)) return;
    bool via_query = false;
    if (!Authorized(request, *target, &via_query)) {
      Send(Unauthorized(request));
      return;
    }
    if (target->path == kWebSocketPath || target->path == kAudioSocketPath) {
      StringResponse response = ErrorResponse(request, http::status::upgrade_required,
                                              absl::StrCat(target->path, " is a WebSocket endpoint"));
      response.set(http::field::upgrade, "websocket");
      Send(std::move(response));
      return;
    }
    ServeFile(request, *target, via_query);
  }

  void ServeFile(const WebHttpRequest& request, const RequestTarget& target, bool set_cookie) {
    absl::StatusOr<StaticFile> file = context_->files().Resolve(target.path);
    if (!file.ok()) {
      switch (file.status().code()) {
        case absl::StatusCode::kPermissionDenied:
          Send(ErrorResponse(request, http::status::forbidden, "path refused"));
          return;
        case absl::StatusCode::kFailedPrecondition: {
          StringResponse response =
              ErrorResponse(request, http::status::moved_permanently, "see the folder");
          response.set(http::field::location, absl::StrCat(target.path, "/"));
          Send(std::move(response));
          return;
        }
        default:
          Send(ErrorResponse(request, http::status::not_found,
                             context_->files().root().empty()
                                 ? "the dashboard's files were not found (see --web_root)"
                                 : "no such file"));
          return;
      }
    }
    auto decorate = [&](auto& response) {
      CommonHeaders(response);
      response.set(http::field::content_type, file->mime_type);
      // Always revalidate: cheap with the ETag, and a new gateway build's
      // dashboard is picked up at once.
      response.set(http::field::cache_control, "no-cache");
      response.set(http::field::etag, file->etag);
      response.keep_alive(request.keep_alive());
      if (absl::StartsWith(file->mime_type, "text/html")) {
        auto host = request.find(http::field::host);
        response.set("Content-Security-Policy",
                     ContentSecurityPolicy(
                         host == request.end()
                             ? absl::string_view()
                             : absl::string_view(host->value().data(), host->value().size()),
                         context_->tls() != nullptr));
        response.set("X-Frame-Options", "DENY");
      }
      if (set_cookie) {
        response.set(http::field::set_cookie,
                     absl::StrCat(TokenCookieName(context_->port()), "=",
                                  CookieEscape(context_->options().token),
                                  "; Path=/; HttpOnly; SameSite=Strict",
                                  context_->tls() != nullptr ? "; Secure" : ""));
      }
    };
    auto if_none_match = request.find(http::field::if_none_match);
    if (if_none_match != request.end() &&
        absl::string_view(if_none_match->value().data(), if_none_match->value().size()) ==
            file->etag) {
      http::response<http::empty_body> response{http::status::not_modified, request.version()};
      decorate(response);
      response.erase(http::field::content_type);
      Send(std::move(response));
      return;
    }
    if (request.method() == http::verb::head) {
      http::response<http::empty_body> response{http::status::ok, request.version()};
      decorate(response);
      response.content_length(file->size);
      Send(std::move(response));
      return;
    }
    http::file_body::value_type body;
    error_code ec;
    body.open(file->path.c_str(), beast::file_mode::scan, ec);
    if (ec) {
      Send(ErrorResponse(request, http::status::not_found, "no such file"));
      return;
    }
    http::response<http::file_body> response{std::piecewise_construct,
                                             std::make_tuple(std::move(body)),
                                             std::make_tuple(http::status::ok, request.version())};
    decorate(response);
    response.prepare_payload();
    Send(std::move(response));
  }

  void Upgrade(WebHttpRequest request) {
    absl::StatusOr<RequestTarget> target =
        ParseRequestTarget(absl::string_view(request.target().data(), request.target().size()));
    if (!target.ok()) {
      Send(ErrorResponse(request, http::status::bad_request, target.status().message()));
      return;
    }
    if (target->path != kWebSocketPath && target->path != kAudioSocketPath) {
      Send(ErrorResponse(request, http::status::not_found,
                         "the WebSockets are at /ws and /ws/audio"));
      return;
    }
    if (RefuseHost(request)) return;
    bool via_query = false;
    if (!Authorized(request, *target, &via_query)) {
      Send(Unauthorized(request));
      return;
    }
    // A browser always sends Origin: refuse other sites' pages (cross-site
    // WebSocket hijacking). Clients that are not browsers send none. (A
    // rebound name passes this test; RefuseHost above stops it.)
    auto origin = request.find(http::field::origin);
    auto host = request.find(http::field::host);
    if (origin != request.end() &&
        (host == request.end() ||
         !SameOrigin(absl::string_view(origin->value().data(), origin->value().size()),
                     absl::string_view(host->value().data(), host->value().size())))) {
      spdlog::warn("web: refused a WebSocket from {}: cross-origin request", peer_);
      Send(ErrorResponse(request, http::status::forbidden,
                         "cross-origin WebSocket requests are refused"));
      return;
    }
    if (target->path == kAudioSocketPath) {
      UpgradeAudio(std::move(request), *target);
      return;
    }
    WebSocketStart start;
    start.peer = peer_;
    if (std::optional<std::string> after_seq = target->Param("after_seq")) {
      start.after_seq = ParseUint64(*after_seq);
      if (!start.after_seq.has_value()) {
        Send(ErrorResponse(request, http::status::bad_request,
                           "after_seq must be a non-negative integer"));
        return;
      }
    }
    start.instance = target->Param("instance").value_or("");
    // From here on the WebSocket session owns the connection.
    context_->UnregisterHttp(key_);
    upgraded_ = true;
    RunWebSocketSession<Stream>(context_, std::move(stream_), std::move(request), std::move(start));
  }

  // /ws/audio, admitted like /ws: the call's stream is opened before the
  // upgrade, so that a bad parameter gets 400, an unknown call 404 and a
  // call with max-streams-per-call streams 429 (docs/websocket-api.md).
  void UpgradeAudio(WebHttpRequest request, const RequestTarget& target) {
    absl::StatusOr<OpenedCallAudio> opened = OpenCallAudioForSocket(
        context_, beast::get_lowest_layer(stream_).get_executor(), target);
    if (!opened.ok()) {
      // Counted (telestra_call_audio_streams_refused_total); logged only at
      // debug level, like the access log, so that refusals cannot flood it.
      spdlog::debug("web: refused a /ws/audio stream from {}: {}", peer_,
                    Printable(opened.status().message()));
      Send(ErrorResponse(request, AudioRefusalStatus(opened.status()), opened.status().message()));
      return;
    }
    // From here on the audio session owns the connection.
    context_->UnregisterHttp(key_);
    upgraded_ = true;
    RunAudioSocketSession<Stream>(context_, std::move(stream_), std::move(request), peer_,
                                  *std::move(opened));
  }

  template <class Body>
  void Send(http::response<Body> response) {
    spdlog::debug("web: {} {} -> {}", peer_, request_line_, response.result_int());
    auto shared = std::make_shared<http::response<Body>>(std::move(response));
    const bool close = shared->need_eof();
    http::async_write(stream_, *shared,
                      [self = this->shared_from_this(), shared, close](error_code ec, size_t) {
                        self->OnWrite(ec, close);
                      });
  }

  void OnWrite(error_code ec, bool close) {
    if (ec) {
      End();
      return;
    }
    if (close) {
      DoShutdown();
      return;
    }
    DoRead();
  }

  void DoShutdown() {
    if constexpr (kIsTls<Stream>) {
      beast::get_lowest_layer(stream_).expires_after(context_->options().handshake_timeout);
      stream_.async_shutdown([self = this->shared_from_this()](error_code) { self->End(); });
    } else {
      error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      End();
    }
  }

  void End() {
    if (upgraded_ || ended_) return;
    ended_ = true;
    context_->UnregisterHttp(key_);
    beast::get_lowest_layer(stream_).close();
  }

  WebContext* const context_;
  Stream stream_;
  const std::string peer_;
  uint64_t key_ = 0;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string request_line_;  // "GET /path" of the request being answered
  bool upgraded_ = false;
  bool ended_ = false;
};

}  // namespace

WebServer::WebServer(Options options, asio::io_context& io, backend::Backend* backend,
                     backend::CommandDispatcher* dispatcher, backend::EventHub* hub)
    : io_(io),
      tls_(!options.cert.empty() && !options.key.empty()
               ? std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server)
               : nullptr),
      context_(
          std::make_unique<WebContext>(std::move(options), backend, dispatcher, hub, tls_.get())),
      acceptor_(asio::make_strand(io)),
      accept_retry_(acceptor_.get_executor()) {}

WebServer::~WebServer() { Stop(); }

absl::Status WebServer::Start() {
  const WebOptions& options = context_->options();
  if (tls_) {
    error_code ec;
    tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                      ec);
    if (!ec) tls_->use_certificate_chain_file(options.cert, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("web: cannot load the TLS certificate '",
                                                     options.cert, "': ", ec.message()));
    }
    tls_->use_private_key_file(options.key, asio::ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("web: cannot load the TLS key '", options.key, "': ", ec.message()));
    }
  }
  error_code ec;
  auto address = asio::ip::make_address(options.bind, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("web: bad bind address '", options.bind, "'"));
  }
  tcp::endpoint endpoint(address, static_cast<uint16_t>(options.port));
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("web: cannot listen on ", options.bind, ":",
                                               options.port, ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  context_->set_port(port_);
  spdlog::info("web front end listening on {}://{}:{} (dashboard {}, WebSocket /ws{})",
               tls_ ? "https" : "http", options.bind, port_,
               options.web_root.empty() ? "not found" : "from " + options.web_root,
               options.token.empty() ? "" : ", token required");
  asio::post(acceptor_.get_executor(), [this] { DoAccept(); });
  return absl::OkStatus();
}

void WebServer::DoAccept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec && ec != asio::error::connection_aborted) {
      // Out of descriptors (EMFILE, ENFILE) or memory: the connection stays
      // in the backlog and accept() would fail again at once. Log the first
      // failure of a burst and retry after a pause instead of spinning.
      if (accept_failures_++ == 0) {
        spdlog::warn("web: accept failed: {}; retrying every {} ms", ec.message(),
                     kAcceptRetry.count());
      }
      accept_retry_.expires_after(kAcceptRetry);
      accept_retry_.async_wait([this](error_code ec) {
        if (!ec && acceptor_.is_open()) DoAccept();
      });
      return;
    }
    if (!ec) {
      if (accept_failures_ > 0) {
        spdlog::info("web: accepting again after {} failed accepts", accept_failures_);
        accept_failures_ = 0;
      }
      OnAccept(std::move(socket));
    }
    DoAccept();
  });
}

void WebServer::OnAccept(tcp::socket socket) {
  error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return;  // the client has gone already
  const std::string address = endpoint.address().to_string();
  std::string peer = absl::StrCat(address, ":", endpoint.port());
  auto start = [&](auto session) {
    uint64_t key = 0;
    switch (context_->RegisterHttp(session, address, &key)) {
      case WebContext::Admission::kAdmitted:
        session->Start(key);
        return;
      case WebContext::Admission::kFull:
        if (const uint64_t count = context_->Count(WebCounter::kHttpRefused); ShouldLog(count)) {
          spdlog::warn(
              "web: refused a connection from {}: {} HTTP connections open, all busy ({} "
              "refused so far)",
              peer, context_->options().max_http_connections, count);
        }
        return;  // dropping the session closes the socket
      case WebContext::Admission::kAddressFull:
        if (const uint64_t count = context_->Count(WebCounter::kHttpAddressRefused); ShouldLog(count)) {
          spdlog::warn(
              "web: refused a connection from {}: {} HTTP connections open from that address "
              "({} refused so far)",
              peer, context_->options().max_connections_per_address, count);
        }
        return;
      case WebContext::Admission::kStopped:
        return;
    }
  };
  if (tls_) {
    start(std::make_shared<HttpSession<WebTlsStream>>(
        context_.get(), WebTlsStream(beast::tcp_stream(std::move(socket)), *tls_), peer));
  } else {
    start(std::make_shared<HttpSession<WebPlainStream>>(context_.get(),
                                                        WebPlainStream(std::move(socket)), peer));
  }
}

void WebServer::ExportMetrics(MetricsWriter& out) const {
  context_->websocket_sessions()->ExportMetrics(out);  // front_end="websocket"
  const WebStats stats = context_->stats();
  out.Gauge("telestra_web_sessions", "WebSocket sessions open", stats.sessions);
  out.Gauge("telestra_web_http_connections", "HTTP connections open (not upgraded)",
            stats.http_connections);
  out.Counter("telestra_web_sessions_refused_total",
              "WebSocket sessions refused (max-sessions): fail, then close 1013",
              stats.sessions_refused);
  out.Counter("telestra_web_http_refused_total",
              "HTTP connections closed at once: every slot busy with a request",
              stats.http_refused);
  out.Counter("telestra_web_http_address_refused_total",
              "HTTP connections closed at once: too many from that client address",
              stats.http_address_refused);
  out.Counter("telestra_web_http_evicted_total",
              "HTTP connections waiting for a request closed to make room for a new one",
              stats.http_evicted);
  out.Counter("telestra_web_http_timeouts_total",
              "HTTP connections closed because a request did not arrive whole in time",
              stats.http_timeouts);
  out.Counter("telestra_web_hosts_refused_total",
              "HTTP requests and WebSocket upgrades refused for their Host (DNS rebinding)",
              stats.hosts_refused);
  out.Counter("telestra_web_unauthorized_total", "Web requests refused for the token",
              stats.unauthorized);
  out.Counter("telestra_web_slow_disconnects_total",
              "WebSocket sessions disconnected for not reading", stats.slow_disconnects);
  out.Counter("telestra_web_undelivered_events_total",
              "Events lost with disconnected or shut-down WebSocket sessions",
              stats.undelivered_events);
  out.Counter("telestra_web_sessions_total", "WebSocket sessions accepted",
              stats.sessions_accepted);
  out.Counter("telestra_web_oversize_closes_total",
              "WebSocket sessions closed 1009 for a message over --web_max_message_bytes",
              stats.oversize_closes);
  out.Counter("telestra_web_idle_timeouts_total",
              "WebSocket sessions closed for --web_idle_timeout_seconds of silence",
              stats.idle_timeouts);
  out.Counter("telestra_web_resume_gaps_total",
              "WebSocket resumes that could not replay every missed event (a snapshot instead)",
              stats.gaps);
}

void WebServer::Stop() {
  Stop(absl::Now() + absl::FromChrono(context_->options().shutdown_grace));
}

void WebServer::Stop(absl::Time flush_deadline) {
  if (stopped_.exchange(true)) return;
  asio::post(acceptor_.get_executor(), [this] {
    error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
  context_->CloseAll(flush_deadline);
}

bool WebServer::WaitForFlush(absl::Time deadline) {
  if (context_->WaitForFlush(deadline)) return true;
  spdlog::warn("web: WebSocket sessions had not written out their queued events by the shutdown "
               "deadline: closed");
  return false;
}

}  // namespace telestra::gateway
