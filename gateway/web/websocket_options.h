// What every WebSocket session of the web front end (/ws, /ws/audio) sets
// up before its handshake. Internal to gateway/web/.
#pragma once

#include "boost/beast/core/stream_traits.hpp"
#include "boost/beast/http/field.hpp"
#include "boost/beast/websocket/stream.hpp"
#include "gateway/web/web_context.h"

namespace telestra::gateway {

inline constexpr char kWebServerName[] = "telestra-gateway";

// Beast's own timers replace the TCP stream's (which would cut idle but
// healthy sessions): handshake_timeout for the handshakes, idle_timeout
// with keep-alive pings; the Server header; max_message_bytes (a bigger
// message closes with 1009); messages are never fragmented.
// Thread: the session's strand, before the handshake.
template <class WebSocketStream>
void ApplyWebSocketOptions(WebSocketStream& ws, const WebOptions& options) {
  namespace websocket = boost::beast::websocket;
  boost::beast::get_lowest_layer(ws).expires_never();
  websocket::stream_base::timeout timeout{};
  timeout.handshake_timeout = options.handshake_timeout;
  timeout.idle_timeout = options.idle_timeout;
  timeout.keep_alive_pings = true;
  ws.set_option(timeout);
  ws.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
    response.set(boost::beast::http::field::server, kWebServerName);
  }));
  ws.read_message_max(options.max_message_bytes);
  ws.auto_fragment(false);
}

}  // namespace telestra::gateway
