#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace telestra::backend {

// Reads any file libsndfile can read (WAV in any of its encodings, FLAC,
// Ogg, ...), averages its channels to mono and resamples it to `rate` Hz
// with speexdsp's resampler when its own rate differs; 16-bit samples, at
// most `max_seconds` of them. InvalidArgument "<path>: <why>" when the file
// cannot be opened, has no channels, an unsupported rate, or no audio.
// What the media engine's clips (audio_clip.h) and the CLI's `audio --play`
// both read.
// Thread: any. Blocks on file I/O.
absl::StatusOr<std::vector<int16_t>> DecodeMonoPcm(const std::string& path, int rate,
                                                   int max_seconds);

}  // namespace telestra::backend
