#include "backend/media/audio_generator.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <vector>

#include "backend/media/audio_format.h"
#include "gtest/gtest.h"
#include "tests/backend/media/media_test_support.h"

namespace telestra::backend {
namespace {

using testing::GoertzelPower;
using testing::MeanSquare;

std::vector<int16_t> Generate(AudioGenerator* generator, int frames) {
  std::vector<int16_t> out(static_cast<size_t>(frames) * kFrameSamples);
  for (int i = 0; i < frames; ++i) generator->Next(out.data() + i * kFrameSamples);
  return out;
}

TEST(AudioGeneratorTest, SilenceIsZeros) {
  AudioGenerator silence = AudioGenerator::Silence();
  std::vector<int16_t> out = Generate(&silence, 3);
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](int16_t s) { return s == 0; }));
}

TEST(AudioGeneratorTest, ToneIsASineAtMinusTenDbfs) {
  AudioGenerator tone = AudioGenerator::Tone(1000);
  std::vector<int16_t> out = Generate(&tone, 50);  // 1 s
  int peak = 0;
  for (int16_t s : out) peak = std::max(peak, std::abs(static_cast<int>(s)));
  EXPECT_NEAR(peak, 10362, 60);  // 32767 * 10^(-10/20)
  // RMS of a sine = peak / sqrt(2): -10 dBFS relative to a full-scale sine.
  double rms_dbfs = 10 * std::log10(MeanSquare(out) / (32767.0 * 32767.0 / 2));
  EXPECT_NEAR(rms_dbfs, -10.0, 0.2);
  // The phase runs on across frames: all the energy is at 1000 Hz.
  double at_tone = GoertzelPower(out, 1000);
  EXPECT_GT(at_tone, 0.2 * MeanSquare(out));
  EXPECT_LT(GoertzelPower(out, 1100), at_tone / 1000);
}

TEST(AudioGeneratorTest, ToneWithALongPeriodIsSeamless) {
  // 441 Hz repeats only every 8000 samples: the table is one whole second.
  AudioGenerator tone = AudioGenerator::Tone(441);
  std::vector<int16_t> out = Generate(&tone, 100);  // 2 s, across the wrap
  double at_tone = GoertzelPower(out, 441);
  EXPECT_GT(at_tone, 0.2 * MeanSquare(out));
  EXPECT_LT(GoertzelPower(out, 450), at_tone / 1000);
  std::vector<int16_t> again(out.begin() + 8000, out.begin() + 16000);
  EXPECT_TRUE(std::equal(again.begin(), again.end(), out.begin()));
}

TEST(AudioGeneratorTest, ClipLoops) {
  auto clip = std::make_shared<AudioClip>();
  for (int i = 0; i < 300; ++i) clip->push_back(static_cast<int16_t>(i));
  AudioGenerator generator = AudioGenerator::Clip(clip);
  std::vector<int16_t> out = Generate(&generator, 5);  // 800 samples
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], static_cast<int16_t>(i % 300));
}

TEST(AudioGeneratorTest, EmptyClipIsSilence) {
  AudioGenerator generator = AudioGenerator::Clip(std::make_shared<AudioClip>());
  std::vector<int16_t> out = Generate(&generator, 1);
  EXPECT_EQ(MeanSquare(out), 0);
}

}  // namespace
}  // namespace telestra::backend
