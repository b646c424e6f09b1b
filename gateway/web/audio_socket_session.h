// The /ws/audio session of the web front end: one call's audio over a
// WebSocket (docs/websocket-api.md, "Call audio: /ws/audio"). Internal to
// gateway/web/: the HTTP session opens the stream before the upgrade (so
// that a bad request gets its HTTP status) and hands both over.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "boost/asio/any_io_executor.hpp"
#include "boost/beast/http/status.hpp"
#include "gateway/audio/call_audio_session.h"
#include "gateway/web/http_util.h"
#include "gateway/web/web_context.h"
#include "gateway/web/websocket_session.h"

namespace telestra::gateway {

// Where a stream's wakeup finds its WebSocket session (audio_socket_session.cc).
struct AudioSocketRelay;

// A call audio stream opened before the upgrade, waiting for its session.
struct OpenedCallAudio {
  std::unique_ptr<CallAudioSession> audio;
  std::shared_ptr<AudioSocketRelay> relay;
};

// Checks the query of GET /ws/audio (ParseAudioSocketQuery) and opens the
// stream on the backend. Its wakeup (which runs on the media or SIP thread)
// only posts to `strand`, the connection's, where the session handles it
// once RunAudioSocketSession has started. Errors: InvalidArgument (a bad
// parameter), NotFound (unknown account or call), ResourceExhausted
// (max-streams-per-call); each counted as a refused stream.
// Thread: the connection's strand.
absl::StatusOr<OpenedCallAudio> OpenCallAudioForSocket(WebContext* context,
                                                       const boost::asio::any_io_executor& strand,
                                                       const RequestTarget& target);

// The HTTP status of a refused /ws/audio upgrade: 400, 404, 429 (500 for
// anything else).
boost::beast::http::status AudioRefusalStatus(const absl::Status& status);

// Takes over `stream`, whose /ws/audio upgrade `request` has been read,
// authorized and opened (`opened`), completes the handshake and serves the
// stream until it ends. Must be called on the stream's strand (the one
// given to OpenCallAudioForSocket).
template <class Stream>
void RunAudioSocketSession(WebContext* context, Stream stream, WebHttpRequest request,
                           std::string peer, OpenedCallAudio opened);

extern template void RunAudioSocketSession<WebPlainStream>(WebContext*, WebPlainStream,
                                                           WebHttpRequest, std::string,
                                                           OpenedCallAudio);
extern template void RunAudioSocketSession<WebTlsStream>(WebContext*, WebTlsStream,
                                                         WebHttpRequest, std::string,
                                                         OpenedCallAudio);

}  // namespace telestra::gateway
