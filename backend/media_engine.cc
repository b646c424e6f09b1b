#include "backend/media_engine.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace telestra::backend {
namespace {

constexpr int kMinToneHz = 1;
constexpr int kMaxToneHz = 3999;  // below Nyquist at 8 kHz

absl::Status Invalid(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid audio source \"", text, "\": ", why,
                   " (expected silence | tone:<hz> | file:<path.wav>)"));
}

}  // namespace

absl::StatusOr<AudioSource> ParseAudioSource(absl::string_view text) {
  absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  AudioSource source;
  if (trimmed.empty() || absl::EqualsIgnoreCase(trimmed, "silence")) {
    return source;  // kSilence
  }
  if (absl::StartsWithIgnoreCase(trimmed, "tone:")) {
    absl::string_view digits = trimmed.substr(5);
    if (digits.empty() || digits.size() > 4 ||
        digits.find_first_not_of("0123456789") != absl::string_view::npos) {
      return Invalid(text, "the tone frequency must be a whole number of Hz");
    }
    int hz = 0;
    if (!absl::SimpleAtoi(digits, &hz) || hz < kMinToneHz || hz > kMaxToneHz) {
      return Invalid(
          text, absl::StrCat("the tone frequency must be ", kMinToneHz, "..", kMaxToneHz, " Hz"));
    }
    source.kind = AudioSource::Kind::kTone;
    source.tone_hz = hz;
    return source;
  }
  if (absl::StartsWithIgnoreCase(trimmed, "file:")) {
    absl::string_view path = absl::StripAsciiWhitespace(trimmed.substr(5));
    if (path.empty()) return Invalid(text, "the file path is empty");
    source.kind = AudioSource::Kind::kFile;
    source.file = std::string(path);
    return source;
  }
  return Invalid(text, "unknown kind");
}

}  // namespace telestra::backend
