#include "backend/media/wav_recorder.h"

#include <string>
#include <vector>

#include "backend/media/audio_format.h"
#include "gtest/gtest.h"
#include "tests/backend/media/media_test_support.h"

namespace telestra::backend {
namespace {

using testing::ReadWav;
using testing::TestDir;

TEST(WavRecorderTest, WritesStereoEightKilohertzReceivedLeftSentRight) {
  std::string path = TestDir("recorder") + "/call.wav";
  absl::StatusOr<std::unique_ptr<WavRecorder>> recorder = WavRecorder::Create(path);
  ASSERT_TRUE(recorder.ok()) << recorder.status();
  std::vector<int16_t> left(kFrameSamples);
  std::vector<int16_t> right(kFrameSamples);
  for (int frame = 0; frame < 20; ++frame) {
    for (int i = 0; i < kFrameSamples; ++i) {
      left[i] = static_cast<int16_t>(frame * 1000 + i);
      right[i] = static_cast<int16_t>(-frame * 1000 - i);
    }
    (*recorder)->Append(left.data(), right.data());
  }
  (*recorder)->Close();
  (*recorder)->Close();  // idempotent
  std::optional<testing::WavData> wav = ReadWav(path);
  ASSERT_TRUE(wav.has_value());
  EXPECT_EQ(wav->rate, 8000);
  EXPECT_EQ(wav->channels, 2);
  ASSERT_EQ(wav->samples.size(), 20u * kFrameSamples * 2);
  std::vector<int16_t> l = wav->Channel(0);
  std::vector<int16_t> r = wav->Channel(1);
  EXPECT_EQ(l[5 * kFrameSamples + 7], 5007);
  EXPECT_EQ(r[5 * kFrameSamples + 7], -5007);
}

TEST(WavRecorderTest, FileIsReadableWhileRecording) {
  std::string path = TestDir("recorder") + "/incremental.wav";
  absl::StatusOr<std::unique_ptr<WavRecorder>> recorder = WavRecorder::Create(path);
  ASSERT_TRUE(recorder.ok());
  std::vector<int16_t> frame(kFrameSamples, 100);
  int frames = WavRecorder::kBufferFrames / kFrameSamples + 1;
  for (int i = 0; i < frames; ++i) (*recorder)->Append(frame.data(), frame.data());
  std::optional<testing::WavData> partial = ReadWav(path);
  ASSERT_TRUE(partial.has_value());
  EXPECT_EQ(partial->samples.size(), static_cast<size_t>(WavRecorder::kBufferFrames) * 2);
  (*recorder)->Close();
  EXPECT_EQ(ReadWav(path)->samples.size(), static_cast<size_t>(frames) * kFrameSamples * 2);
}

TEST(WavRecorderTest, UncreatableFileIsInvalidArgumentNamingThePath) {
  absl::StatusOr<std::unique_ptr<WavRecorder>> recorder =
      WavRecorder::Create("/nonexistent/dir/call.wav");
  ASSERT_FALSE(recorder.ok());
  EXPECT_EQ(recorder.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(recorder.status().message().find("/nonexistent/dir/call.wav"), absl::string_view::npos);
}

}  // namespace
}  // namespace telestra::backend
