// libFuzzer target: the receive jitter buffer (backend/media/jitter_buffer.h)
// and the RTP reception statistics fed by the same packets
// (backend/media/rtp_receive_stats.h): timestamps, sizes and sequence
// numbers come straight from the far end's packets.
//
// Input: byte 0 sets the depth (x 5 ms, clamped by the buffer to 20..1000),
// bytes 1..4 the first timestamp, 5..6 the first sequence number; then
// operations, one byte each plus their arguments:
//   0: the next 20 ms packet in order       1: a packet at a relative
//   timestamp (int16), of size 8 x (byte), sequence + (int8)
//   2: a packet at an absolute timestamp, of any size, any sequence number
//   3, 4: one playout tick (Get)             5: 1..16 ticks
//   6: Reset (a new source)                  7: an RTCP report block
// Every sample carries its own RTP timestamp (0x8000 | ts & 0x7fff: always
// negative, never the silence 0), so the output shows what was played when.
// Properties checked:
//  - Put: too large exactly when longer than the capacity; the counters
//    count what Put returns;
//  - Get: every sample is silence (0) or a received one; true exactly when
//    one was received; frames_played / frames_concealed count that;
//  - output in timestamp order: the samples of a frame are consecutive
//    timestamps; from one frame with audio to the next the playout point
//    moves on by exactly 20 ms per tick, or, when one overflow happened in
//    between, further forward by at most one second;
//  - bounded: audio is played at most depth + capacity after the last
//    stored packet;
//  - statistics: cumulative lost = expected - received; a taken packet is
//    counted once; a report block says what the statistics say and
//    survives the RTCP writer and parser.
// Built by scripts/fuzz.sh and replayed over fuzz/corpus/jitter_buffer by
// //tests/hardening:fuzz_corpus_jitter_buffer_test.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "backend/media/audio_format.h"
#include "backend/media/jitter_buffer.h"
#include "backend/media/rtcp.h"
#include "backend/media/rtp_receive_stats.h"

namespace {

namespace media = telestra::backend;
using media::JitterBuffer;
using media::kFrameSamples;

constexpr uint32_t kSsrc = 0x5eed;
constexpr int kMaxSize = 20000;      // samples of an absolute packet, beyond any capacity
constexpr uint32_t kMaxJump = 8000;  // the buffer's resync threshold (1 s)

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "jitter_buffer_fuzzer: property violated: %s\n", what);
    std::abort();
  }
}

int16_t SampleAt(uint32_t timestamp) {
  return static_cast<int16_t>(static_cast<uint16_t>(0x8000 | (timestamp & 0x7fff)));
}
uint32_t Timestamp15(int16_t sample) { return static_cast<uint16_t>(sample) & 0x7fff; }

// Reads the input front to back; zeros past its end.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() {
    const uint16_t high = Byte();
    return static_cast<uint16_t>(high << 8 | Byte());
  }
  uint32_t U32() {
    const uint32_t high = U16();
    return high << 16 | U16();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

class Harness {
 public:
  Harness(int depth_ms, uint32_t timestamp, uint16_t sequence)
      : buffer_(depth_ms), timestamp_(timestamp), sequence_(sequence) {
    // One packet's worth of samples, reused (the largest there is).
    samples_.resize(kMaxSize);
  }

  void Put(uint32_t timestamp, int size, uint16_t sequence) {
    timestamp_ = timestamp;
    size_ = size;
    sequence_ = sequence;
    Receive(timestamp, sequence);
    for (int i = 0; i < size; ++i) samples_[i] = SampleAt(timestamp + static_cast<uint32_t>(i));
    const JitterBuffer::Counters before = buffer_.counters();
    JitterBuffer::PutResult result =
        buffer_.Put(timestamp, absl::MakeConstSpan(samples_.data(), static_cast<size_t>(size)));
    const JitterBuffer::Counters& after = buffer_.counters();
    Check((result == JitterBuffer::PutResult::kTooLarge) == (size > buffer_.capacity_samples()),
          "too large exactly beyond the capacity");
    Check(after.packets_stored ==
              before.packets_stored + (result == JitterBuffer::PutResult::kStored && size > 0),
          "packets_stored counts stored packets");
    Check(after.packets_late == before.packets_late + (result == JitterBuffer::PutResult::kLate),
          "packets_late counts late packets");
    if (result == JitterBuffer::PutResult::kStored && size > 0) ticks_since_put_ = 0;
  }

  // The next 20 ms packet after the last one put.
  void PutNext() {
    Put(timestamp_ + static_cast<uint32_t>(size_), kFrameSamples,
        static_cast<uint16_t>(sequence_ + 1));
  }
  uint32_t timestamp() const { return timestamp_; }  // of the last packet put
  uint16_t sequence() const { return sequence_; }

  void Get() {
    int16_t frame[kFrameSamples];
    const JitterBuffer::Counters before = buffer_.counters();
    const bool got = buffer_.Get(frame);
    const JitterBuffer::Counters& after = buffer_.counters();
    ++ticks_since_put_;
    ++ticks_since_played_;
    ++ticks_;
    int received = 0;
    std::optional<uint32_t> cursor;  // the frame's first timestamp, 15 bits
    for (int i = 0; i < kFrameSamples; ++i) {
      Check(frame[i] <= 0, "every sample is silence or a received one");
      if (frame[i] == 0) continue;
      ++received;
      const uint32_t start = (Timestamp15(frame[i]) - static_cast<uint32_t>(i)) & 0x7fff;
      if (!cursor) cursor = start;
      Check(*cursor == start, "a frame's samples are consecutive timestamps");
    }
    Check(got == (received > 0), "Get is true exactly when it played received audio");
    Check(after.frames_played == before.frames_played + got, "frames_played");
    Check(after.frames_concealed == before.frames_concealed + (got && received < kFrameSamples),
          "frames_concealed");
    if (!got) return;

    Check(ticks_since_put_ <= buffer_.depth_samples() / kFrameSamples +
                                  buffer_.capacity_samples() / kFrameSamples + 1,
          "audio is played within depth + capacity of its packet");
    const bool continuous = last_cursor_.has_value() && !reset_since_played_ &&
                            after.resyncs == at_played_.resyncs &&
                            after.underruns == at_played_.underruns;
    if (continuous) {
      const uint32_t advance = (*cursor - *last_cursor_) & 0x7fff;
      const uint32_t ticks = (static_cast<uint32_t>(ticks_since_played_) * kFrameSamples) & 0x7fff;
      const uint64_t overflows = after.overflows - at_played_.overflows;
      if (overflows == 0) {
        Check(advance == ticks, "the playout point moves 20 ms per tick");
      } else if (overflows == 1) {
        const uint32_t skipped = (advance - ticks) & 0x7fff;
        Check(skipped >= 1 && skipped <= kMaxJump, "an overflow only moves forward, by <= 1 s");
      }
    }
    last_cursor_ = cursor;
    at_played_ = after;
    reset_since_played_ = false;
    ticks_since_played_ = 0;
  }

  void Reset() {
    buffer_.Reset();
    stats_.Reset(kSsrc, sequence_);
    reset_since_played_ = true;
  }

  void Report(uint32_t last_sr) {
    if (!stats_.started()) return;
    const int64_t lost = stats_.cumulative_lost();
    media::RtcpReportBlock block = stats_.MakeReportBlock(last_sr, ticks_);
    Check(block.ssrc == kSsrc, "block SSRC");
    Check(block.extended_highest_sequence == stats_.extended_highest_sequence(),
          "block highest sequence");
    Check(block.cumulative_lost == std::clamp<int64_t>(lost, -0x800000, 0x7fffff),
          "block cumulative lost");
    Check(block.jitter == stats_.jitter(), "block jitter");
    media::RtcpCompoundParams params;
    params.ssrc = 1;
    params.block = block;
    params.cname = "fuzz";
    uint8_t out[media::kMaxRtcpCompoundSize];
    const size_t size = media::WriteRtcpCompound(params, absl::MakeSpan(out));
    std::optional<media::RtcpSummary> parsed =
        media::ParseRtcpCompound(absl::MakeConstSpan(out, size), kSsrc);
    Check(parsed.has_value() && parsed->block_about_us.has_value(), "the report parses");
    const media::RtcpReportBlock& back = *parsed->block_about_us;
    Check(back.fraction_lost == block.fraction_lost &&
              back.cumulative_lost == block.cumulative_lost &&
              back.extended_highest_sequence == block.extended_highest_sequence &&
              back.jitter == block.jitter && back.last_sr == block.last_sr &&
              back.delay_since_last_sr == block.delay_since_last_sr,
          "the report block round trip");
  }

 private:
  // The statistics, as MediaCall::OnRtp feeds them.
  void Receive(uint32_t timestamp, uint16_t sequence) {
    if (!stats_.started()) stats_.Reset(kSsrc, sequence);
    const uint64_t before = stats_.received();
    const bool taken = stats_.UpdateSequence(sequence);
    if (taken) {
      // +1, or 1 when a confirmed jump restarted the statistics.
      Check(stats_.received() == before + 1 || stats_.received() == 1, "a packet counts once");
      stats_.UpdateJitter(timestamp, ticks_ * kFrameSamples);
    } else {
      Check(stats_.received() == before, "a packet not taken is not counted");
    }
    Check(stats_.expected() >= 1, "expected includes the first packet");
    Check(stats_.cumulative_lost() ==
              static_cast<int64_t>(stats_.expected()) - static_cast<int64_t>(stats_.received()),
          "lost = expected - received");
  }

  JitterBuffer buffer_;
  media::RtpReceiveStats stats_;
  std::vector<int16_t> samples_;
  uint32_t timestamp_;
  int size_ = 0;
  uint16_t sequence_;
  uint32_t ticks_ = 0;
  int ticks_since_put_ = 0;
  int ticks_since_played_ = 0;
  std::optional<uint32_t> last_cursor_;
  JitterBuffer::Counters at_played_;
  bool reset_since_played_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  const int depth_ms = in.Byte() * 5;
  const uint32_t timestamp = in.U32();
  const uint16_t sequence = in.U16();
  Harness harness(depth_ms, timestamp, sequence);
  while (!in.done()) {
    switch (in.Byte() & 7) {
      case 0:
        harness.PutNext();
        break;
      case 1: {
        const int16_t delta = static_cast<int16_t>(in.U16());
        const int packet_size = in.Byte() * 8;
        const int8_t step = static_cast<int8_t>(in.Byte());
        harness.Put(harness.timestamp() + static_cast<uint32_t>(static_cast<int32_t>(delta)),
                    packet_size, static_cast<uint16_t>(harness.sequence() + step));
        break;
      }
      case 2: {
        const uint32_t at = in.U32();
        const int packet_size = in.U16() % (kMaxSize + 1);
        harness.Put(at, packet_size, in.U16());
        break;
      }
      case 3:
      case 4:
        harness.Get();
        break;
      case 5:
        for (int n = 1 + in.Byte() % 16; n > 0; --n) harness.Get();
        break;
      case 6:
        harness.Reset();
        break;
      case 7:
        harness.Report(in.U32());
        break;
    }
  }
  return 0;
}
