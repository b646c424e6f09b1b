#include "backend/media/wav_recorder.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
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

// ---------------------------------------------------------------- Resume

// A recording of `frames` frames, every received sample `left` and every
// sent one `right`, closed.
void Record(const std::string& path, int frames, int16_t left, int16_t right) {
  absl::StatusOr<std::unique_ptr<WavRecorder>> recorder = WavRecorder::Create(path);
  ASSERT_TRUE(recorder.ok()) << recorder.status();
  std::vector<int16_t> l(kFrameSamples, left);
  std::vector<int16_t> r(kFrameSamples, right);
  for (int i = 0; i < frames; ++i) (*recorder)->Append(l.data(), r.data());
}

// Sets the file's last write `ago` before now.
void SetLastWrite(const std::string& path, absl::Duration ago) {
  timespec times[2];
  times[0] = absl::ToTimespec(absl::Now());        // access
  times[1] = absl::ToTimespec(absl::Now() - ago);  // modification
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

// Whole frames in a stereo recording.
int FramesOf(const testing::WavData& wav) {
  return static_cast<int>(wav.samples.size() / 2 / kFrameSamples);
}

TEST(WavRecorderTest, ResumeGoesOnAfterSilenceForTheTimeSinceTheLastWrite) {
  const std::string path = TestDir("resume") + "/gap.wav";
  Record(path, 10, 1000, -1000);
  SetLastWrite(path, absl::Seconds(2));
  absl::StatusOr<std::unique_ptr<WavRecorder>> resumed = WavRecorder::Resume(path);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  std::vector<int16_t> l(kFrameSamples, 500);
  std::vector<int16_t> r(kFrameSamples, -500);
  for (int i = 0; i < 5; ++i) (*resumed)->Append(l.data(), r.data());
  (*resumed)->Close();

  std::optional<testing::WavData> wav = ReadWav(path);
  ASSERT_TRUE(wav.has_value());
  EXPECT_EQ(wav->rate, 8000);
  EXPECT_EQ(wav->channels, 2);
  // 2 s of silence is 100 frames (a little more if the test was slow to
  // resume: the gap runs to the moment Resume looks).
  const int gap = FramesOf(*wav) - 10 - 5;
  EXPECT_GE(gap, 100);
  EXPECT_LE(gap, 125);
  std::vector<int16_t> left = wav->Channel(0);
  std::vector<int16_t> right = wav->Channel(1);
  ASSERT_EQ(left.size(), static_cast<size_t>(10 + gap + 5) * kFrameSamples);
  const size_t silence_start = 10 * kFrameSamples;
  const size_t silence_end = silence_start + static_cast<size_t>(gap) * kFrameSamples;
  for (size_t i = 0; i < left.size(); ++i) {
    const int16_t want_left = i < silence_start ? 1000 : i < silence_end ? 0 : 500;
    ASSERT_EQ(left[i], want_left) << "sample " << i;
    ASSERT_EQ(right[i], -want_left) << "sample " << i;
  }
}

TEST(WavRecorderTest, ResumeAfterALastWriteInTheFutureAddsNoSilence) {
  const std::string path = TestDir("resume") + "/clock.wav";
  Record(path, 10, 700, 700);
  SetLastWrite(path, -absl::Minutes(5));  // the clock went back
  absl::StatusOr<std::unique_ptr<WavRecorder>> resumed = WavRecorder::Resume(path);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  std::vector<int16_t> frame(kFrameSamples, 100);
  (*resumed)->Append(frame.data(), frame.data());
  (*resumed)->Close();
  std::optional<testing::WavData> wav = ReadWav(path);
  ASSERT_TRUE(wav.has_value());
  EXPECT_EQ(FramesOf(*wav), 11);
  EXPECT_EQ(wav->Channel(0).back(), 100);
}

TEST(WavRecorderTest, ResumeStartsANewRecordingWhenTheFileIsNoneOrNotOurs) {
  const std::string dir = TestDir("resume");
  std::vector<int16_t> frame(kFrameSamples, 42);
  const std::string text = dir + "/text.wav";
  std::ofstream(text) << "not a recording";
  const std::string mono = dir + "/mono.wav";
  ASSERT_TRUE(testing::WriteToneWav(mono, 16000, 1, 440, 0.5));
  const std::string absent = dir + "/absent.wav";
  for (const std::string& path : {text, mono, absent}) {
    absl::StatusOr<std::unique_ptr<WavRecorder>> resumed = WavRecorder::Resume(path);
    ASSERT_TRUE(resumed.ok()) << path << ": " << resumed.status();
    for (int i = 0; i < 3; ++i) (*resumed)->Append(frame.data(), frame.data());
    (*resumed)->Close();
    std::optional<testing::WavData> wav = ReadWav(path);
    ASSERT_TRUE(wav.has_value()) << path;
    EXPECT_EQ(wav->rate, 8000) << path;
    EXPECT_EQ(wav->channels, 2) << path;
    EXPECT_EQ(FramesOf(*wav), 3) << path;
    EXPECT_EQ(wav->Channel(0).front(), 42) << path;
  }
}

TEST(WavRecorderTest, ResumeOfAnUncreatableFileIsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<WavRecorder>> resumed =
      WavRecorder::Resume("/nonexistent/dir/call.wav");
  ASSERT_FALSE(resumed.ok());
  EXPECT_EQ(resumed.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace telestra::backend
