#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace telestra::gateway {

// Splits the native port's byte stream into JSON messages.
//
// Canonical framing is one JSON object + NUL, but the reader is tolerant
// (docs/native-api.md, "Framing"): a message ends where its top-level JSON
// object closes (string- and escape-aware brace depth); NUL, CR, LF, spaces
// and tabs between messages are skipped; a message may arrive split over many
// reads and many messages may arrive in one read.
//  - A NUL inside an unfinished object ends it: the partial text is returned
//    as a message (the codec then reports it as malformed JSON).
//  - Bytes that cannot start a JSON object are skipped up to the next NUL or
//    LF, reported once as kGarbage; kHttp instead when they begin like an
//    HTTP request: a request line of GET, POST, PUT, OPTIONS or HEAD (the
//    method and a space) or a `Host:` header line (any case). The framer
//    holds up to 7 bytes to tell (`OPTIONS` is 7 long); the session closes
//    such a connection (a browser must not be able to drive the port).
//  - A message that grows beyond `max_message_bytes` is reported once as
//    kTooLarge and its remaining bytes are discarded, up to its closing brace
//    or the next NUL, whichever comes first.
// Memory stays bounded by max_message_bytes plus one read, and shrinks back
// to at most kRetainedBytes whenever the framer waits for more input with
// no more than that held: one large message does not leave its buffer
// behind for the life of the connection.
//
// Thread: not thread-safe; one framer per connection.
class Framer {
 public:
  enum class Kind { kNone, kMessage, kTooLarge, kGarbage, kHttp };

  // Buffer capacity kept between messages.
  static constexpr size_t kRetainedBytes = 4096;

  struct Frame {
    Kind kind = Kind::kNone;
    // For kMessage: the message text, valid until the next Feed() or Next().
    absl::string_view text;
  };

  explicit Framer(size_t max_message_bytes);

  // Appends bytes received from the connection.
  void Feed(absl::string_view bytes);

  // Returns the next complete frame, or kind kNone when more bytes are needed.
  Frame Next();

  // Bytes held waiting for the rest of a message.
  size_t buffered_bytes() const;

  // Bytes allocated for the buffer (held or not).
  size_t buffer_capacity() const { return buffer_.capacity(); }

 private:
  // Implementation is the helper's choice; keep it O(n) over the input.
  // Clears the per-message scan state (depth, string, discarding).
  void ResetMessage();
  // Drops the consumed bytes and gives back the buffer's spare capacity
  // when it holds no more than kRetainedBytes.
  void Shrink();

  size_t max_message_bytes_;
  std::string buffer_;
  size_t start_ = 0;  // first byte not yet consumed
  size_t scan_ = 0;  // first byte not yet scanned in the current message
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool discarding_ = false;  // inside an oversize message
  bool skipping_garbage_ = false;
};

}  // namespace telestra::gateway
