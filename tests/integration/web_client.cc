#include "tests/integration/web_client.h"

#include <chrono>
#include <deque>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "boost/beast/websocket.hpp"
#include "boost/beast/websocket/ssl.hpp"

namespace telestra::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

}  // namespace

struct WebClient::Impl {
  asio::io_context io;
  asio::ssl::context tls_context{asio::ssl::context::tls_client};
  std::unique_ptr<websocket::stream<beast::tcp_stream>> plain;
  std::unique_ptr<websocket::stream<beast::ssl_stream<beast::tcp_stream>>> tls;
  beast::flat_buffer buffer;
  std::deque<NativeEvent> received;
  bool keep_binary = false;
  std::deque<WebMessage> messages;  // with keep_binary, instead of `received`
  std::vector<NativeEvent> skipped;
  bool reading = false;
  bool paused = false;
  bool closed = false;
  int close_code = 0;
  std::string close_error;

  template <class F>
  auto With(F&& f) {
    if (tls) return f(*tls);
    return f(*plain);
  }

  void StartRead() {
    if (reading || closed || paused) return;
    reading = true;
    With([this](auto& ws) {
      ws.async_read(buffer, [this, &ws](error_code ec, size_t) {
        reading = false;
        if (ec) {
          closed = true;
          close_error = ec.message();
          close_code = ws.reason().code;
          return;
        }
        if (keep_binary) {
          messages.push_back(WebMessage{ws.got_text(), beast::buffers_to_string(buffer.data())});
        } else if (ws.got_text()) {
          received.push_back(NativeEvent{beast::buffers_to_string(buffer.data())});
        }
        buffer.consume(buffer.size());
        StartRead();
      });
      return 0;
    });
  }

  // Runs the event loop until `done` or the deadline.
  void RunUntil(const std::function<bool()>& done, absl::Time deadline) {
    while (!done()) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return;
      io.restart();
      if (io.run_one_for(ToChrono(left)) == 0 && io.stopped() && !done()) {
        // Nothing left to run: no read pending (closed or paused).
        if (!reading) return;
      }
    }
  }
};

WebClient::WebClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WebClient::~WebClient() {
  if (!impl_) return;
  error_code ignored;
  impl_->With([&](auto& ws) {
    beast::get_lowest_layer(ws).socket().close(ignored);
    return 0;
  });
}

absl::StatusOr<std::unique_ptr<WebClient>> WebClient::Connect(int port,
                                                              const WebClientOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->keep_binary = options.keep_binary;
  tcp::socket socket(impl->io);
  error_code ec;
  socket.open(tcp::v4(), ec);
  if (!ec && options.receive_buffer_bytes > 0) {
    socket.set_option(asio::socket_base::receive_buffer_size(options.receive_buffer_bytes), ec);
  }
  if (!ec) socket.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), ec);
  if (ec) return absl::UnavailableError(absl::StrCat("connect: ", ec.message()));
  socket.set_option(tcp::no_delay(true), ec);
  const std::string host = absl::StrCat("127.0.0.1:", port);
  websocket::response_type response;
  auto decorate = [&](auto& ws) {
    ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& request) {
      for (const auto& [name, value] : options.headers) request.set(name, value);
    }));
    ws.read_message_max(64 << 20);
  };
  if (options.tls) {
    impl->tls_context.set_verify_mode(asio::ssl::verify_none);
    impl->tls = std::make_unique<websocket::stream<beast::ssl_stream<beast::tcp_stream>>>(
        beast::tcp_stream(std::move(socket)), impl->tls_context);
    beast::get_lowest_layer(*impl->tls).expires_after(ToChrono(options.timeout));
    impl->tls->next_layer().handshake(asio::ssl::stream_base::client, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("TLS handshake: ", ec.message()));
    decorate(*impl->tls);
    impl->tls->handshake(response, host, options.target, ec);
    beast::get_lowest_layer(*impl->tls).expires_never();
  } else {
    impl->plain = std::make_unique<websocket::stream<beast::tcp_stream>>(std::move(socket));
    beast::get_lowest_layer(*impl->plain).expires_after(ToChrono(options.timeout));
    decorate(*impl->plain);
    impl->plain->handshake(response, host, options.target, ec);
    beast::get_lowest_layer(*impl->plain).expires_never();
  }
  if (ec) {
    // Beast keeps a refused upgrade's response to itself: ask again with
    // the same upgrade request to learn the status.
    std::map<std::string, std::string> headers = options.headers;
    headers["Connection"] = "Upgrade";
    headers["Upgrade"] = "websocket";
    headers["Sec-WebSocket-Version"] = "13";
    headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ==";
    auto probe = HttpRequest(port, "GET", options.target, headers, options.tls);
    return absl::UnavailableError(
        absl::StrCat("HTTP ", probe.ok() ? probe->status : 0, " (", ec.message(), ")"));
  }
  impl->StartRead();
  return std::unique_ptr<WebClient>(new WebClient(std::move(impl)));
}

namespace {

template <class Impl>
bool Write(Impl& impl, const std::string& data, bool text, absl::Duration timeout) {
  if (impl.closed) return false;
  bool done = false;
  error_code result;
  impl.With([&](auto& ws) {
    ws.text(text);
    ws.async_write(asio::buffer(data), [&](error_code ec, size_t) {
      done = true;
      result = ec;
    });
    return 0;
  });
  impl.RunUntil([&] { return done; }, absl::Now() + timeout);
  if (!done) {
    // Stuck (the server does not read): give up on this connection.
    error_code ignored;
    impl.With([&](auto& ws) {
      beast::get_lowest_layer(ws).socket().close(ignored);
      return 0;
    });
    impl.RunUntil([&] { return done; }, absl::Now() + absl::Seconds(1));
    impl.closed = true;
    return false;
  }
  if (result) {
    impl.closed = true;
    if (impl.close_error.empty()) impl.close_error = result.message();
    return false;
  }
  return true;
}

}  // namespace

bool WebClient::Send(const std::string& text, absl::Duration timeout) {
  return Write(*impl_, text, /*text=*/true, timeout);
}

bool WebClient::SendBinary(const std::string& bytes, absl::Duration timeout) {
  return Write(*impl_, bytes, /*text=*/false, timeout);
}

std::optional<NativeEvent> WebClient::Next(absl::Duration timeout) {
  if (impl_->keep_binary) {
    const absl::Time deadline = absl::Now() + timeout;
    while (std::optional<WebMessage> message = NextMessage(deadline - absl::Now())) {
      if (message->text) return NativeEvent{std::move(message->data)};
    }
    return std::nullopt;
  }
  impl_->StartRead();
  impl_->RunUntil([&] { return !impl_->received.empty() || impl_->closed; }, absl::Now() + timeout);
  if (impl_->received.empty()) return std::nullopt;
  NativeEvent event = std::move(impl_->received.front());
  impl_->received.pop_front();
  return event;
}

std::optional<NativeEvent> WebClient::WaitFor(const std::function<bool(const NativeEvent&)>& match,
                                              absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::optional<NativeEvent> event = Next(deadline - absl::Now());
    if (!event.has_value()) {
      if (impl_->closed) return std::nullopt;
      continue;
    }
    if (match(*event)) return event;
    impl_->skipped.push_back(*std::move(event));
  }
  return std::nullopt;
}

std::optional<WebMessage> WebClient::NextMessage(absl::Duration timeout) {
  impl_->StartRead();
  impl_->RunUntil([&] { return !impl_->messages.empty() || impl_->closed; },
                  absl::Now() + timeout);
  if (impl_->messages.empty()) return std::nullopt;
  WebMessage message = std::move(impl_->messages.front());
  impl_->messages.pop_front();
  return message;
}

void WebClient::PauseReading() { impl_->paused = true; }

void WebClient::ResumeReading() { impl_->paused = false; }

void WebClient::Close(absl::Duration timeout) {
  if (impl_->closed) return;
  bool done = false;
  impl_->With([&](auto& ws) {
    ws.async_close(websocket::close_code::normal, [&](error_code) { done = true; });
    return 0;
  });
  impl_->RunUntil([&] { return done; }, absl::Now() + timeout);
  impl_->closed = true;
}

bool WebClient::closed() const { return impl_->closed; }
int WebClient::close_code() const { return impl_->close_code; }
std::string WebClient::close_error() const { return impl_->close_error; }
const std::vector<NativeEvent>& WebClient::skipped() const { return impl_->skipped; }

std::string HttpResult::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

absl::StatusOr<HttpResult> HttpRequest(int port, const std::string& method,
                                       const std::string& target,
                                       const std::map<std::string, std::string>& headers,
                                       bool tls) {
  asio::io_context io;
  asio::ssl::context tls_context{asio::ssl::context::tls_client};
  tls_context.set_verify_mode(asio::ssl::verify_none);
  beast::tcp_stream tcp(io);
  tcp.expires_after(std::chrono::seconds(10));
  error_code ec;
  tcp.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), ec);
  if (ec) return absl::UnavailableError(absl::StrCat("connect: ", ec.message()));

  http::request<http::string_body> request{http::string_to_verb(method), target, 11};
  request.set(http::field::host, absl::StrCat("127.0.0.1:", port));
  for (const auto& [name, value] : headers) request.set(name, value);
  request.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  if (method == "HEAD") parser.skip(true);
  beast::flat_buffer buffer;
  auto exchange = [&](auto& stream) {
    http::write(stream, request, ec);
    if (!ec) http::read(stream, buffer, parser, ec);
  };
  if (tls) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp), tls_context);
    stream.handshake(asio::ssl::stream_base::client, ec);
    if (!ec) exchange(stream);
  } else {
    exchange(tcp);
  }
  if (ec) return absl::UnavailableError(absl::StrCat("HTTP exchange: ", ec.message()));
  HttpResult result;
  auto& response = parser.get();
  result.status = response.result_int();
  for (const auto& field : response) {
    result.headers[absl::AsciiStrToLower(std::string(field.name_string()))] =
        std::string(field.value());
  }
  result.body = response.body();
  return result;
}

absl::StatusOr<int> RawHttpStatus(int port, const std::string& raw) {
  asio::io_context io;
  beast::tcp_stream tcp(io);
  tcp.expires_after(std::chrono::seconds(10));
  error_code ec;
  tcp.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), ec);
  if (!ec) asio::write(tcp, asio::buffer(raw), ec);
  if (ec) return absl::UnavailableError(ec.message());
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(tcp, buffer, response, ec);
  if (ec) return absl::UnavailableError(ec.message());
  return response.result_int();
}

}  // namespace telestra::testing
