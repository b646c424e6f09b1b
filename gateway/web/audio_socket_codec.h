// The wire of /ws/audio (docs/websocket-api.md, "Call audio: /ws/audio")
// translated to and from the call audio model (proto CallAudio*): the
// upgrade request's query, the client's JSON commands, the gateway's JSON
// events. PCM travels as binary messages, untouched by this file. Pure
// functions and one small parser; no sockets.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/web/http_util.h"
#include "proto/telestra.pb.h"

namespace telestra::gateway {

// The longest mark name a /ws/audio client may send.
inline constexpr size_t kMaxAudioMarkNameBytes = 256;

// GET /ws/audio?account=A&call_id=N&rate=8000&direction=both -> the stream's
// start. account and call_id (0 .. 2^53) are required; rate (8000, 16000)
// defaults to 8000 and direction (listen, speak, both) to both; other
// parameters (token) are ignored. InvalidArgument naming the parameter:
// "Missing parameter: account", "Bad parameter rate: 8000 or 16000", ...
absl::StatusOr<telestra::v1::CallAudioStart> ParseAudioSocketQuery(const RequestTarget& target);

// "listen", "speak", "both" ("" for UNSPECIFIED).
const char* AudioDirectionName(telestra::v1::AudioDirection direction);

// A client's text message -> a CallAudioRequest holding `mark` or `clear`:
//   {"cmd":"mark","name":"..."}  {"cmd":"clear"}
// InvalidArgument: "Malformed JSON: <simdjson's message>" (also for
// anything but one object), "Missing field: cmd", "Field cmd must be a
// string", "Unknown command: <cmd>" (cut at 64 bytes), "Missing field:
// name", "Field name must be a string", "Field name is too long (at most
// 256 bytes)". Other fields are ignored.
// Thread: one decoder per session (it owns simdjson's parser, whose buffers
// grow to the largest message decoded).
class AudioCommandDecoder {
 public:
  AudioCommandDecoder();
  ~AudioCommandDecoder();
  AudioCommandDecoder(const AudioCommandDecoder&) = delete;
  AudioCommandDecoder& operator=(const AudioCommandDecoder&) = delete;

  absl::StatusOr<telestra::v1::CallAudioRequest> Decode(absl::string_view text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The JSON text message for a response other than audio (which goes out as
// a binary message of its pcm):
//   started -> {"event":"audio-started","account":...,"call_id":N,
//               "sample_rate":8000,"codec":"PCMU","direction":"both"}
//   mark    -> {"event":"mark","name":...}
//   dtmf    -> {"event":"dtmf","digit":"5","duration_ms":100}
//   stopped -> {"event":"audio-stopped","reason":...,"frames_dropped":N,
//               "underruns":N,"frames_sent":N,"frames_spoken":N}
// "" for audio and an empty response.
std::string EncodeAudioEvent(const telestra::v1::CallAudioResponse& response);

// {"event":"fail","error":...}
std::string EncodeAudioFail(absl::string_view error);

}  // namespace telestra::gateway
