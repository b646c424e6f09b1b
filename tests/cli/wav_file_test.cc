#include "cli/wav_file.h"

#include <sndfile.h>

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/support/test_files.h"

namespace telestra::cli {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::string TempPath(const std::string& name) {
  return telestra::testing::TestTempDir() + "/" + name;
}

// A stereo float WAV: `hz` at half of full scale on the left channel and at
// a quarter on the right (mixed to mono: 0.375).
void WriteStereoTone(const std::string& path, int rate, double hz, double seconds) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(file, nullptr) << sf_strerror(nullptr);
  const int frames = static_cast<int>(rate * seconds);
  std::vector<float> samples(2 * frames);
  for (int i = 0; i < frames; ++i) {
    const float s = static_cast<float>(0.5 * std::sin(2 * kPi * hz * i / rate));
    samples[2 * i] = s;
    samples[2 * i + 1] = s / 2;
  }
  ASSERT_EQ(sf_writef_float(file, samples.data(), frames), frames);
  sf_close(file);
}

// The power of `hz` in `pcm` (Goertzel), relative to the signal's.
double ToneShare(const std::vector<int16_t>& pcm, int rate, double hz) {
  const double coefficient = 2 * std::cos(2 * kPi * hz / rate);
  double s1 = 0, s2 = 0, energy = 0;
  for (int16_t sample : pcm) {
    const double s = sample + coefficient * s1 - s2;
    s2 = s1;
    s1 = s;
    energy += static_cast<double>(sample) * sample;
  }
  const double power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
  return energy > 0 ? 2 * power / (pcm.size() * energy) : 0;
}

TEST(WavFileTest, LoadMixesToMonoAndResamplesToTheStreamsRate) {
  const std::string path = TempPath("tone-44100-stereo.wav");
  WriteStereoTone(path, 44100, 700, 1.0);
  for (int rate : {8000, 16000}) {
    absl::StatusOr<std::vector<int16_t>> pcm = LoadMonoPcm(path, rate);
    ASSERT_TRUE(pcm.ok()) << pcm.status();
    EXPECT_NEAR(static_cast<double>(pcm->size()), rate, rate / 100.0) << rate;
    EXPECT_GT(ToneShare(*pcm, rate, 700), 0.9) << rate;
    EXPECT_LT(ToneShare(*pcm, rate, 1000), 0.05) << rate;
    // The mix: (0.5 + 0.25) / 2 of full scale at the peaks.
    int16_t peak = 0;
    for (int16_t s : *pcm) peak = std::max<int16_t>(peak, static_cast<int16_t>(std::abs(s)));
    EXPECT_NEAR(peak, 0.375 * 32768, 0.02 * 32768) << rate;
  }
}

TEST(WavFileTest, SameRateIsCopiedSampleForSample) {
  const std::string path = TempPath("tone-8000-stereo.wav");
  WriteStereoTone(path, 8000, 1000, 0.5);
  absl::StatusOr<std::vector<int16_t>> pcm = LoadMonoPcm(path, 8000);
  ASSERT_TRUE(pcm.ok()) << pcm.status();
  ASSERT_EQ(pcm->size(), 4000u);
  EXPECT_EQ((*pcm)[0], 0);
  // Sample 2 of 1000 Hz at 8 kHz is the sine's peak: 0.375 of full scale.
  EXPECT_NEAR((*pcm)[2], 0.375 * 32768, 1);
}

TEST(WavFileTest, UnreadableFilesNameThePath) {
  absl::StatusOr<std::vector<int16_t>> missing = LoadMonoPcm(TempPath("missing.wav"), 8000);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "missing.wav"));
  const std::string text = TempPath("not-audio.wav");
  FILE* file = std::fopen(text.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fputs("not a sound file\n", file);
  std::fclose(file);
  EXPECT_FALSE(LoadMonoPcm(text, 8000).ok());
}

std::string Frame(int16_t value, size_t samples) {
  std::string pcm;
  for (size_t i = 0; i < samples; ++i) {
    pcm.push_back(static_cast<char>(value & 0xFF));
    pcm.push_back(static_cast<char>((value >> 8) & 0xFF));
  }
  return pcm;
}

std::vector<int16_t> ReadWav(const std::string& path, SF_INFO* info) {
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, info);
  EXPECT_NE(file, nullptr) << sf_strerror(nullptr);
  if (file == nullptr) return {};
  std::vector<int16_t> samples(info->frames * info->channels);
  sf_read_short(file, samples.data(), static_cast<sf_count_t>(samples.size()));
  sf_close(file);
  return samples;
}

TEST(WavFileTest, RecorderFillsDroppedFramesWithSilenceAndIsValidWhileOpen) {
  const std::string path = TempPath("recording.wav");
  absl::StatusOr<std::unique_ptr<WavRecorder>> recorder = WavRecorder::Create(path, 16000);
  ASSERT_TRUE(recorder.ok()) << recorder.status();
  ASSERT_TRUE((*recorder)->Write(0, Frame(100, 320)).ok());
  ASSERT_TRUE((*recorder)->Write(1, Frame(-200, 320)).ok());
  ASSERT_TRUE((*recorder)->Write(4, Frame(300, 320)).ok());  // 2 and 3 were dropped
  EXPECT_EQ((*recorder)->samples(), 5 * 320);

  SF_INFO info{};
  std::vector<int16_t> open = ReadWav(path, &info);  // before closing
  EXPECT_EQ(info.samplerate, 16000);
  EXPECT_EQ(info.channels, 1);
  EXPECT_EQ(info.frames, 5 * 320);

  recorder->reset();
  std::vector<int16_t> samples = ReadWav(path, &info);
  ASSERT_EQ(samples.size(), 5u * 320);
  EXPECT_EQ(samples[0], 100);
  EXPECT_EQ(samples[320], -200);
  EXPECT_EQ(samples[2 * 320], 0);
  EXPECT_EQ(samples[4 * 320 - 1], 0);
  EXPECT_EQ(samples[4 * 320], 300);
}

TEST(WavFileTest, RecorderRefusesAPathItCannotCreate) {
  absl::StatusOr<std::unique_ptr<WavRecorder>> recorder =
      WavRecorder::Create(TempPath("no/such/dir/x.wav"), 8000);
  ASSERT_FALSE(recorder.ok());
  EXPECT_TRUE(absl::StrContains(recorder.status().message(), "no/such/dir/x.wav"));
}

}  // namespace
}  // namespace telestra::cli
