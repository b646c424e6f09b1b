#include "gateway/native/framer.h"

#include <algorithm>

#include "absl/strings/match.h"

namespace telestra::gateway {
namespace {

// Bytes that may separate two messages.
inline bool IsSeparator(char c) {
  return c == '\0' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

enum class Http { kNo, kMaybe, kYes };

// Whether `bytes`, where a message should start, begin an HTTP request line
// or a Host header; kMaybe while they are a proper prefix of one.
Http LooksLikeHttp(absl::string_view bytes) {
  static constexpr absl::string_view kMethods[] = {"GET ", "POST ", "PUT ", "OPTIONS ", "HEAD "};
  static constexpr absl::string_view kHost = "host:";  // header names: any case
  bool maybe = false;
  for (absl::string_view method : kMethods) {
    const size_t n = std::min(bytes.size(), method.size());
    if (bytes.substr(0, n) != method.substr(0, n)) continue;
    if (n == method.size()) return Http::kYes;
    maybe = true;
  }
  const size_t n = std::min(bytes.size(), kHost.size());
  if (absl::EqualsIgnoreCase(bytes.substr(0, n), kHost.substr(0, n))) {
    if (n == kHost.size()) return Http::kYes;
    maybe = true;
  }
  return maybe ? Http::kMaybe : Http::kNo;
}

}  // namespace

Framer::Framer(size_t max_message_bytes)
    : max_message_bytes_(max_message_bytes) {}

void Framer::Feed(absl::string_view bytes) {
  // Compact: drop what has been consumed. Whatever is left is (part of) one
  // unfinished message, so every byte is moved at most a bounded number of
  // times and the buffer never holds more than one message plus one read.
  if (start_ > 0) {
    if (start_ >= buffer_.size()) {
      buffer_.clear();
    } else {
      buffer_.erase(0, start_);
    }
    scan_ -= start_;
    start_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

size_t Framer::buffered_bytes() const { return buffer_.size() - start_; }

void Framer::Shrink() {
  const size_t held = buffer_.size() - start_;
  if (buffer_.capacity() <= kRetainedBytes || held > kRetainedBytes) return;
  std::string kept(buffer_, start_);  // allocates what is held, no more
  buffer_.swap(kept);
  scan_ -= start_;
  start_ = 0;
}

void Framer::ResetMessage() {
  depth_ = 0;
  in_string_ = false;
  escape_ = false;
  discarding_ = false;
}

Framer::Frame Framer::Next() {
  const char* const data = buffer_.data();
  const size_t size = buffer_.size();

  while (true) {
    if (skipping_garbage_) {
      // Skip up to and including the next NUL or LF.
      size_t i = scan_;
      while (i < size && data[i] != '\0' && data[i] != '\n') ++i;
      if (i == size) {
        start_ = scan_ = size;
        Shrink();
        return Frame();
      }
      skipping_garbage_ = false;
      start_ = scan_ = i + 1;
      continue;
    }

    if (depth_ == 0) {
      // Between messages: skip separators, then expect '{'.
      size_t i = start_;
      while (i < size && IsSeparator(data[i])) ++i;
      start_ = scan_ = i;
      if (i == size) {
        Shrink();
        return Frame();
      }
      if (data[i] != '{') {
        const Http http = LooksLikeHttp(absl::string_view(data + i, size - i));
        if (http == Http::kMaybe) {  // hold the few bytes until it tells
          Shrink();
          return Frame();
        }
        skipping_garbage_ = true;
        start_ = scan_ = i + 1;
        return Frame{http == Http::kYes ? Kind::kHttp : Kind::kGarbage, absl::string_view()};
      }
      depth_ = 1;
      scan_ = i + 1;
    }

    // Inside a message (possibly one being discarded). Bytes before scan_
    // have already been scanned; resume at scan_.
    size_t i = scan_;
    for (; i < size; ++i) {
      const char c = data[i];
      if (c == '\0') {
        // NUL ends the message, finished or not.
        const bool discarded = discarding_;
        const size_t begin = start_;
        ResetMessage();
        start_ = scan_ = i + 1;
        if (discarded) break;  // back to the outer loop
        return Frame{Kind::kMessage,
                     absl::string_view(data + begin, i - begin)};
      }
      if (!discarding_ && i - start_ + 1 > max_message_bytes_) {
        // Byte i would make the message too large: drop what we hold and
        // discard from here on, still tracking strings and depth.
        discarding_ = true;
        start_ = scan_ = i;
        return Frame{Kind::kTooLarge, absl::string_view()};
      }
      if (in_string_) {
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          in_string_ = false;
        }
      } else if (c == '"') {
        in_string_ = true;
      } else if (c == '{') {
        ++depth_;
      } else if (c == '}') {
        if (--depth_ == 0) {
          const bool discarded = discarding_;
          const size_t begin = start_;
          ResetMessage();
          start_ = scan_ = i + 1;
          if (discarded) break;
          return Frame{Kind::kMessage,
                       absl::string_view(data + begin, i + 1 - begin)};
        }
      }
    }
    if (i < size) continue;  // a discarded message ended; keep going

    // Need more bytes.
    scan_ = size;
    if (discarding_) start_ = size;
    Shrink();
    return Frame();
  }
}

}  // namespace telestra::gateway
