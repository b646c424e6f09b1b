// The WebSocket session of the web front end (docs/websocket-api.md).
// Internal to gateway/web/: the HTTP session hands an upgrade request over.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/message.hpp"
#include "boost/beast/http/string_body.hpp"
#include "boost/beast/ssl/ssl_stream.hpp"
#include "gateway/web/web_context.h"

namespace telestra::gateway {

using WebPlainStream = boost::beast::tcp_stream;
using WebTlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
using WebHttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

// What the upgrade request asked for (already validated).
struct WebSocketStart {
  std::string peer;                   // "address:port", for logs
  std::optional<uint64_t> after_seq;  // resume request
  std::string instance;               // the server instance the client last saw ("" = any)
};

// Takes over `stream`, whose WebSocket upgrade `request` has been read and
// authorized, completes the handshake and serves the session until it ends.
// Must be called on the stream's strand.
template <class Stream>
void RunWebSocketSession(WebContext* context, Stream stream, WebHttpRequest request,
                         WebSocketStart start);

extern template void RunWebSocketSession<WebPlainStream>(WebContext*, WebPlainStream,
                                                         WebHttpRequest, WebSocketStart);
extern template void RunWebSocketSession<WebTlsStream>(WebContext*, WebTlsStream, WebHttpRequest,
                                                       WebSocketStart);

}  // namespace telestra::gateway
