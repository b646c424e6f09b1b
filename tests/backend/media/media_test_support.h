// Helpers for the media engine tests: free port ranges, raw UDP peers,
// WAV files and tone detection.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"

namespace telestra::backend::testing {

// `pairs` consecutive RTP/RTCP pairs on 127.0.0.1 (below the ephemeral port
// range) that were all free a moment ago. {0, 0} if none was found.
struct PortRange {
  int min = 0;
  int max = 0;
};
PortRange PickFreeRtpRange(int pairs);

// A plain non-blocking UDP socket on 127.0.0.1 (or another loopback
// address, to play a host other than the far end); it sends to 127.0.0.1.
class UdpPeer {
 public:
  // Binds `ip`:`port` (0: any free port).
  explicit UdpPeer(int port = 0, const char* ip = "127.0.0.1");
  ~UdpPeer();
  UdpPeer(const UdpPeer&) = delete;
  UdpPeer& operator=(const UdpPeer&) = delete;

  bool ok() const { return fd_ >= 0; }
  int port() const { return port_; }

  // The next datagram, waiting at most `timeout`.
  std::optional<std::vector<uint8_t>> Receive(absl::Duration timeout);
  // Drops everything queued; returns how many datagrams that was.
  int Drain();
  bool SendTo(int port, absl::Span<const uint8_t> data);

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Two UdpPeers on an even port and the next one (a fake far end).
struct UdpPeerPair {
  std::unique_ptr<UdpPeer> rtp;
  std::unique_ptr<UdpPeer> rtcp;
};
UdpPeerPair OpenUdpPeerPair();

// Polls `condition` every few ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout);

// Power of `hz` in `samples` (Goertzel), normalised by the number of samples
// squared, so a full-scale sine at `hz` gives about 0.25 * amplitude^2.
double GoertzelPower(absl::Span<const int16_t> samples, double hz, int rate = 8000);

// Mean square of the samples.
double MeanSquare(absl::Span<const int16_t> samples);

struct WavData {
  int rate = 0;
  int channels = 0;
  std::vector<int16_t> samples;  // interleaved
  std::vector<int16_t> Channel(int channel) const;
};
// Reads a file with libsndfile; nullopt if it cannot be opened.
std::optional<WavData> ReadWav(const std::string& path);

// Writes a 16-bit WAV with a sine of `hz` (amplitude 0.5 of full scale) on
// every channel.
bool WriteToneWav(const std::string& path, int rate, int channels, double hz, double seconds);

// A folder for the test's files (under TEST_TMPDIR).
std::string TestDir(const std::string& name);

}  // namespace telestra::backend::testing
