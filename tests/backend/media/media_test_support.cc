#include "tests/backend/media/media_test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sndfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/ports.h"

namespace telestra::backend::testing {
namespace {

constexpr int kAttempts = 50;

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

}  // namespace

PortRange PickFreeRtpRange(int pairs) {
  int min = telestra::testing::PickFreeUdpRun(2 * pairs);
  if (min == 0) return {};
  return {min, min + 2 * pairs - 1};
}

UdpPeer::UdpPeer(int port, const char* ip) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  int buffer = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  sockaddr_in addr = Loopback(port);
  socklen_t len = sizeof(addr);
  if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1 ||
      bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return;
  }
  fd_ = fd;
  port_ = ntohs(addr.sin_port);
}

UdpPeer::~UdpPeer() {
  if (fd_ >= 0) close(fd_);
}

std::optional<std::vector<uint8_t>> UdpPeer::Receive(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  // Bounded by the deadline: poll() waits at most the time left.
  while (fd_ >= 0) {
    std::vector<uint8_t> buffer(2048);
    ssize_t size = recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (size >= 0) {
      buffer.resize(static_cast<size_t>(size));
      return buffer;
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
  }
  return std::nullopt;
}

int UdpPeer::Drain() {
  int count = 0;
  char buffer[2048];
  while (count < 100000 && recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT) >= 0) ++count;
  return count;
}

bool UdpPeer::SendTo(int port, absl::Span<const uint8_t> data) {
  sockaddr_in addr = Loopback(port);
  return sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&addr),
                sizeof(addr)) == static_cast<ssize_t>(data.size());
}

UdpPeerPair OpenUdpPeerPair() {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    PortRange range = PickFreeRtpRange(1);
    if (range.min == 0) break;
    auto rtp = std::make_unique<UdpPeer>(range.min);
    auto rtcp = std::make_unique<UdpPeer>(range.min + 1);
    if (rtp->ok() && rtcp->ok()) return {std::move(rtp), std::move(rtcp)};
  }
  return {};
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

double GoertzelPower(absl::Span<const int16_t> samples, double hz, int rate) {
  double coefficient = 2 * std::cos(2 * M_PI * hz / rate);
  double s1 = 0;
  double s2 = 0;
  for (int16_t sample : samples) {
    double s0 = sample + coefficient * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  double power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
  double n = static_cast<double>(samples.size());
  return n == 0 ? 0 : power / (n * n);
}

double MeanSquare(absl::Span<const int16_t> samples) {
  double sum = 0;
  for (int16_t sample : samples) sum += static_cast<double>(sample) * sample;
  return samples.empty() ? 0 : sum / samples.size();
}

std::vector<int16_t> WavData::Channel(int channel) const {
  std::vector<int16_t> out;
  for (size_t i = channel; i < samples.size(); i += channels) out.push_back(samples[i]);
  return out;
}

std::optional<WavData> ReadWav(const std::string& path) {
  SF_INFO info{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &info);
  if (file == nullptr) return std::nullopt;
  WavData data;
  data.rate = info.samplerate;
  data.channels = info.channels;
  data.samples.resize(static_cast<size_t>(info.frames) * info.channels);
  sf_count_t read = sf_readf_short(file, data.samples.data(), info.frames);
  data.samples.resize(static_cast<size_t>(read) * info.channels);
  sf_close(file);
  return data;
}

bool WriteToneWav(const std::string& path, int rate, int channels, double hz, double seconds) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  if (file == nullptr) return false;
  int frames = static_cast<int>(rate * seconds);
  std::vector<int16_t> samples(static_cast<size_t>(frames) * channels);
  for (int i = 0; i < frames; ++i) {
    auto value = static_cast<int16_t>(16383 * std::sin(2 * M_PI * hz * i / rate));
    for (int c = 0; c < channels; ++c) samples[static_cast<size_t>(i) * channels + c] = value;
  }
  bool ok = sf_writef_short(file, samples.data(), frames) == frames;
  sf_close(file);
  return ok;
}

std::string TestDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(root != nullptr ? root : "/tmp", "/", name);
  mkdir(dir.c_str(), 0755);
  return dir;
}

}  // namespace telestra::backend::testing
