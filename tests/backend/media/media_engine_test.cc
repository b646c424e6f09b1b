#include "backend/media_engine.h"

#include <string>

#include "gtest/gtest.h"

namespace telestra::backend {
namespace {

using Kind = AudioSource::Kind;

struct ValidCase {
  std::string text;
  Kind kind;
  int tone_hz;
  std::string file;
};

TEST(ParseAudioSourceTest, AcceptsTheDocumentedForms) {
  const ValidCase cases[] = {
      {"silence", Kind::kSilence, 0, ""},
      {"SILENCE", Kind::kSilence, 0, ""},
      {"", Kind::kSilence, 0, ""},
      {"  silence  ", Kind::kSilence, 0, ""},
      {"tone:1000", Kind::kTone, 1000, ""},
      {"tone:1", Kind::kTone, 1, ""},
      {"tone:3999", Kind::kTone, 3999, ""},
      {"Tone:440", Kind::kTone, 440, ""},
      {"file:/tmp/a.wav", Kind::kFile, 0, "/tmp/a.wav"},
      {"file:relative/dir/b.wav", Kind::kFile, 0, "relative/dir/b.wav"},
      {"file: /tmp/with space.wav ", Kind::kFile, 0, "/tmp/with space.wav"},
  };
  for (const ValidCase& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<AudioSource> source = ParseAudioSource(c.text);
    ASSERT_TRUE(source.ok()) << source.status();
    EXPECT_EQ(source->kind, c.kind);
    EXPECT_EQ(source->tone_hz, c.tone_hz);
    EXPECT_EQ(source->file, c.file);
  }
}

TEST(ParseAudioSourceTest, RejectsEverythingElseNamingTheProblem) {
  const std::pair<std::string, std::string> cases[] = {
      {"tone", "unknown kind"},
      {"tone:", "whole number"},
      {"tone:0", "1..3999"},
      {"tone:4000", "1..3999"},
      {"tone:-5", "whole number"},
      {"tone:+5", "whole number"},
      {"tone:10.5", "whole number"},
      {"tone:1000hz", "whole number"},
      {"tone:99999999999", "whole number"},
      {"file:", "path is empty"},
      {"file:   ", "path is empty"},
      {"noise", "unknown kind"},
      {"wav:/tmp/a.wav", "unknown kind"},
  };
  for (const auto& [text, why] : cases) {
    SCOPED_TRACE(text);
    absl::StatusOr<AudioSource> source = ParseAudioSource(text);
    ASSERT_FALSE(source.ok());
    EXPECT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(source.status().message().find(why), absl::string_view::npos) << source.status();
    EXPECT_NE(source.status().message().find(text), absl::string_view::npos) << source.status();
  }
}

}  // namespace
}  // namespace telestra::backend
