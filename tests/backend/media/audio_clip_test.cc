#include "backend/media/audio_clip.h"

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/backend/media/media_test_support.h"

namespace telestra::backend {
namespace {

using testing::GoertzelPower;
using testing::MeanSquare;
using testing::TestDir;
using testing::WriteToneWav;

TEST(AudioClipTest, EightKilohertzMonoIsCopiedSampleForSample) {
  std::string path = TestDir("clip") + "/mono8k.wav";
  ASSERT_TRUE(WriteToneWav(path, 8000, 1, 500, 0.5));
  absl::StatusOr<AudioClip> clip = LoadAudioClip(path);
  ASSERT_TRUE(clip.ok()) << clip.status();
  std::optional<testing::WavData> original = testing::ReadWav(path);
  ASSERT_TRUE(original.has_value());
  EXPECT_EQ(*clip, original->samples);
}

TEST(AudioClipTest, StereoFortyEightKilohertzIsMixedAndResampled) {
  std::string path = TestDir("clip") + "/stereo48k.wav";
  ASSERT_TRUE(WriteToneWav(path, 48000, 2, 500, 0.5));
  absl::StatusOr<AudioClip> clip = LoadAudioClip(path);
  ASSERT_TRUE(clip.ok()) << clip.status();
  EXPECT_NEAR(static_cast<double>(clip->size()), 4000, 40);  // 0.5 s at 8 kHz
  // Still a 500 Hz sine of amplitude 0.5 (RMS 0.354 of full scale).
  absl::Span<const int16_t> middle = absl::MakeConstSpan(*clip).subspan(400, 3200);
  EXPECT_NEAR(MeanSquare(middle), 16383.0 * 16383.0 / 2, 16383.0 * 16383.0 / 20);
  EXPECT_GT(GoertzelPower(middle, 500), 0.2 * MeanSquare(middle));
}

TEST(AudioClipTest, MissingFileIsInvalidArgumentNamingThePath) {
  absl::StatusOr<AudioClip> clip = LoadAudioClip("/nonexistent/dir/a.wav");
  ASSERT_FALSE(clip.ok());
  EXPECT_EQ(clip.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(clip.status().message().find("/nonexistent/dir/a.wav"), absl::string_view::npos);
}

TEST(AudioClipTest, NonAudioFileIsInvalidArgument) {
  std::string path = TestDir("clip") + "/not-audio.wav";
  std::ofstream(path) << "this is not a WAV file, just text\n";
  absl::StatusOr<AudioClip> clip = LoadAudioClip(path);
  ASSERT_FALSE(clip.ok());
  EXPECT_EQ(clip.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(clip.status().message().find(path), absl::string_view::npos);
}

TEST(AudioClipTest, EmptyWavIsInvalidArgument) {
  std::string path = TestDir("clip") + "/empty.wav";
  ASSERT_TRUE(WriteToneWav(path, 8000, 1, 500, 0.0));
  absl::StatusOr<AudioClip> clip = LoadAudioClip(path);
  ASSERT_FALSE(clip.ok());
  EXPECT_NE(clip.status().message().find("no audio"), absl::string_view::npos);
}

TEST(AudioClipCacheTest, SharesOneCopyWhileItIsInUse) {
  std::string path = TestDir("clip") + "/shared.wav";
  ASSERT_TRUE(WriteToneWav(path, 8000, 1, 500, 0.1));
  AudioClipCache cache;
  absl::StatusOr<std::shared_ptr<const AudioClip>> first = cache.Load(path);
  absl::StatusOr<std::shared_ptr<const AudioClip>> second = cache.Load(path);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->get(), second->get());
  EXPECT_FALSE(cache.Load("/nonexistent.wav").ok());
}

}  // namespace
}  // namespace telestra::backend
