#include "gateway/web/audio_socket_codec.h"

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace telestra::gateway {
namespace {

using telestra::v1::AudioDirection;
using telestra::v1::CallAudioRequest;
using telestra::v1::CallAudioResponse;

// The native port's limit: call ids travel as JSON numbers (doubles) there.
constexpr uint64_t kMaxCallId = uint64_t{1} << 53;
// An unknown command is echoed in the fail up to this many bytes.
constexpr size_t kMaxEchoedBytes = 64;

// `text` if it is valid UTF-8, else a copy with every non-ASCII byte as '?'
// (JSON text must be UTF-8; a browser would drop the whole message).
std::string_view ValidUtf8(absl::string_view text, std::string* scratch) {
  if (simdjson::validate_utf8(text.data(), text.size())) {
    return std::string_view(text.data(), text.size());
  }
  scratch->assign(text.data(), text.size());
  for (char& c : *scratch) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  return *scratch;
}

// `text` cut to at most `max` bytes at a UTF-8 character boundary, with
// "..." when cut.
std::string Shortened(absl::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return absl::StrCat(text.substr(0, end), "...");
}

// Compact JSON with simdjson's formatter (as JsonCodec writes events).
class JsonWriter {
 public:
  explicit JsonWriter(const char* event) {
    f_.start_object();
    f_.key("event");
    f_.string(event);
  }
  JsonWriter& String(const char* key, absl::string_view value) {
    Key(key);
    f_.string(ValidUtf8(value, &scratch_));
    return *this;
  }
  JsonWriter& Int(const char* key, int64_t value) {
    Key(key);
    f_.number(value);
    return *this;
  }
  JsonWriter& Uint(const char* key, uint64_t value) {
    Key(key);
    f_.number(value);
    return *this;
  }
  std::string Done() {
    f_.end_object();
    return std::string(f_.str());
  }

 private:
  void Key(const char* key) {
    f_.comma();
    f_.key(key);
  }
  simdjson::internal::mini_formatter f_;
  std::string scratch_;
};

}  // namespace

absl::StatusOr<telestra::v1::CallAudioStart> ParseAudioSocketQuery(const RequestTarget& target) {
  telestra::v1::CallAudioStart start;
  std::optional<std::string> account = target.Param("account");
  if (!account.has_value() || account->empty()) {
    return absl::InvalidArgumentError("Missing parameter: account");
  }
  start.set_account(*account);
  std::optional<std::string> call_id = target.Param("call_id");
  if (!call_id.has_value() || call_id->empty()) {
    return absl::InvalidArgumentError("Missing parameter: call_id");
  }
  std::optional<uint64_t> id = ParseUint64(*call_id);
  if (!id.has_value() || *id > kMaxCallId) {
    return absl::InvalidArgumentError(
        absl::StrCat("Bad parameter call_id: an integer from 0 to ", kMaxCallId));
  }
  start.set_call_id(static_cast<int64_t>(*id));
  const std::string rate = target.Param("rate").value_or("8000");
  if (rate == "8000") {
    start.set_sample_rate(8000);
  } else if (rate == "16000") {
    start.set_sample_rate(16000);
  } else {
    return absl::InvalidArgumentError("Bad parameter rate: 8000 or 16000");
  }
  const std::string direction = target.Param("direction").value_or("both");
  if (direction == "listen") {
    start.set_direction(telestra::v1::AUDIO_DIRECTION_LISTEN);
  } else if (direction == "speak") {
    start.set_direction(telestra::v1::AUDIO_DIRECTION_SPEAK);
  } else if (direction == "both") {
    start.set_direction(telestra::v1::AUDIO_DIRECTION_BOTH);
  } else {
    return absl::InvalidArgumentError("Bad parameter direction: listen, speak or both");
  }
  return start;
}

const char* AudioDirectionName(AudioDirection direction) {
  switch (direction) {
    case telestra::v1::AUDIO_DIRECTION_LISTEN:
      return "listen";
    case telestra::v1::AUDIO_DIRECTION_SPEAK:
      return "speak";
    case telestra::v1::AUDIO_DIRECTION_BOTH:
      return "both";
    default:
      return "";
  }
}

struct AudioCommandDecoder::Impl {
  simdjson::dom::parser parser;
};

AudioCommandDecoder::AudioCommandDecoder() : impl_(std::make_unique<Impl>()) {}
AudioCommandDecoder::~AudioCommandDecoder() = default;

absl::StatusOr<CallAudioRequest> AudioCommandDecoder::Decode(absl::string_view text) {
  simdjson::dom::element root;
  // The DOM parser copies the text into its padded buffer; it refuses
  // anything after the first value (TRAILING_CONTENT) and invalid UTF-8.
  simdjson::error_code error = impl_->parser.parse(text.data(), text.size()).get(root);
  if (error != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("Malformed JSON: ", simdjson::error_message(error)));
  }
  simdjson::dom::object object;
  if (root.get(object) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("Malformed JSON: a command is a JSON object");
  }
  simdjson::dom::element cmd_value;
  if (object["cmd"].get(cmd_value) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("Missing field: cmd");
  }
  std::string_view cmd;
  if (cmd_value.get(cmd) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("Field cmd must be a string");
  }
  CallAudioRequest request;
  if (cmd == "mark") {
    simdjson::dom::element name_value;
    if (object["name"].get(name_value) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("Missing field: name");
    }
    std::string_view name;
    if (name_value.get(name) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("Field name must be a string");
    }
    if (name.size() > kMaxAudioMarkNameBytes) {
      return absl::InvalidArgumentError(absl::StrCat("Field name is too long (at most ",
                                                     kMaxAudioMarkNameBytes, " bytes)"));
    }
    request.mutable_mark()->set_name(name.data(), name.size());
    return request;
  }
  if (cmd == "clear") {
    request.mutable_clear();
    return request;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("Unknown command: ",
                   Shortened(absl::string_view(cmd.data(), cmd.size()), kMaxEchoedBytes)));
}

std::string EncodeAudioEvent(const CallAudioResponse& response) {
  switch (response.response_case()) {
    case CallAudioResponse::kStarted: {
      const telestra::v1::CallAudioStarted& started = response.started();
      return JsonWriter("audio-started")
          .String("account", started.account())
          .Int("call_id", started.call_id())
          .Uint("sample_rate", started.sample_rate())
          .String("codec", started.codec())
          .String("direction", AudioDirectionName(started.direction()))
          .Done();
    }
    case CallAudioResponse::kMark:
      return JsonWriter("mark").String("name", response.mark().name()).Done();
    case CallAudioResponse::kDtmf:
      return JsonWriter("dtmf")
          .String("digit", response.dtmf().digit())
          .Int("duration_ms", response.dtmf().duration_ms())
          .Done();
    case CallAudioResponse::kStopped: {
      const telestra::v1::CallAudioStopped& stopped = response.stopped();
      return JsonWriter("audio-stopped")
          .String("reason", stopped.reason())
          .Uint("frames_dropped", stopped.frames_dropped())
          .Uint("underruns", stopped.underruns())
          .Uint("frames_sent", stopped.frames_sent())
          .Uint("frames_spoken", stopped.frames_spoken())
          .Done();
    }
    case CallAudioResponse::kAudio:
    case CallAudioResponse::RESPONSE_NOT_SET:
      break;
  }
  return "";
}

std::string EncodeAudioFail(absl::string_view error) {
  return JsonWriter("fail").String("error", error).Done();
}

}  // namespace telestra::gateway
