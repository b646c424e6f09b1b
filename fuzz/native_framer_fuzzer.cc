// libFuzzer target: the native port's Framer (gateway/native/framer.h).
//
// Input: byte 0 picks max_message_bytes (16..520, small so that the size
// limit is hit often), byte 1 seeds the read sizes, the rest is the byte
// stream a client sends. Properties checked:
//  - splitting the stream into reads of any size yields exactly the frames
//    of one big read (the framer is split-invariant);
//  - every message starts with '{', holds no NUL and fits max_message_bytes;
//  - after the framer asks for more bytes it holds at most max_message_bytes;
//  - it never yields more frames than the stream has bytes.
// Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined) and
// replayed over fuzz/corpus/native_framer by //tests/hardening:fuzz_corpus_test.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "gateway/native/framer.h"

namespace {

using telestra::gateway::Framer;

struct Seen {
  Framer::Kind kind;
  std::string text;
  bool operator==(const Seen& other) const { return kind == other.kind && text == other.text; }
};

void Check(bool condition) {
  if (!condition) std::abort();
}

// Drains every complete frame, checking the per-frame properties.
void Drain(Framer& framer, size_t max_message_bytes, std::vector<Seen>* out) {
  for (;;) {
    Framer::Frame frame = framer.Next();
    if (frame.kind == Framer::Kind::kNone) break;
    if (frame.kind == Framer::Kind::kMessage) {
      Check(!frame.text.empty());
      Check(frame.text.front() == '{');
      Check(frame.text.size() <= max_message_bytes);
      Check(frame.text.find('\0') == absl::string_view::npos);
    } else {
      Check(frame.text.empty());
    }
    out->push_back(Seen{frame.kind, std::string(frame.text)});
  }
  Check(framer.buffered_bytes() <= max_message_bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max_message_bytes = 16 + static_cast<size_t>(data[0] % 64) * 8;
  uint32_t seed = data[1];
  const absl::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  // One read.
  std::vector<Seen> whole;
  {
    Framer framer(max_message_bytes);
    framer.Feed(stream);
    Drain(framer, max_message_bytes, &whole);
  }
  Check(whole.size() <= stream.size());

  // Many reads of pseudo-random sizes (1..64 bytes).
  std::vector<Seen> pieces;
  {
    Framer framer(max_message_bytes);
    size_t at = 0;
    while (at < stream.size()) {
      seed = seed * 1103515245u + 12345u;
      size_t n = 1 + (seed >> 16) % 64;
      if (n > stream.size() - at) n = stream.size() - at;
      framer.Feed(stream.substr(at, n));
      at += n;
      Drain(framer, max_message_bytes, &pieces);
    }
  }
  Check(pieces == whole);
  return 0;
}
