#pragma once

namespace telestra::backend {

// The one audio format inside the media engine: 8 kHz, 16-bit linear, mono,
// 20 ms frames (one RTP packet of G.711).
inline constexpr int kSampleRate = 8000;
inline constexpr int kFrameMs = 20;
inline constexpr int kFrameSamples = kSampleRate * kFrameMs / 1000;  // 160

}  // namespace telestra::backend
