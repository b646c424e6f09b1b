#include "bench/rtp_far_end.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "backend/media/audio_format.h"
#include "backend/media/g711.h"
#include "backend/media/rtp_packet.h"

namespace telestra::bench {
namespace {

using backend::kFrameSamples;

constexpr uint64_t kTimerKey = uint64_t{1} << 32;
constexpr uint64_t kStopKey = kTimerKey + 1;
constexpr int kSlotsPerFrame = backend::kFrameMs;  // one per millisecond
constexpr int kMaxReadsPerEvent = 16;
constexpr int64_t kLateSlotNs = 2'000'000;

int64_t MonotonicNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

}  // namespace

int64_t RealtimeNs() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

RtpFarEnd::RtpFarEnd(int calls, Handler* handler)
    : handler_(handler), count_(calls), calls_(std::make_unique<Call[]>(calls)) {}

RtpFarEnd::~RtpFarEnd() {
  Stop();
  for (int i = 0; i < count_; ++i) {
    if (calls_[i].fd >= 0) close(calls_[i].fd);
  }
  for (int fd : {epoll_fd_, timer_fd_, stop_fd_}) {
    if (fd >= 0) close(fd);
  }
}

absl::Status RtpFarEnd::Start() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || timer_fd_ < 0 || stop_fd_ < 0) {
    return absl::InternalError(absl::StrCat("far end set-up: ", std::strerror(errno)));
  }
  std::mt19937 random(std::random_device{}());
  for (int i = 0; i < count_; ++i) {
    Call& call = calls_[i];
    call.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    int on = 1;
    if (call.fd < 0 || bind(call.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(call.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        setsockopt(call.fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) != 0) {
      return absl::InternalError(absl::StrCat("far end socket ", i, ": ", std::strerror(errno)));
    }
    call.port = ntohs(addr.sin_port);
    call.sequence = static_cast<uint16_t>(random());
    call.timestamp = static_cast<uint32_t>(random());
    call.ssrc = static_cast<uint32_t>(random());
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = static_cast<uint64_t>(i);
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, call.fd, &event);
  }
  for (auto [fd, key] : {std::pair{timer_fd_, kTimerKey}, std::pair{stop_fd_, kStopKey}}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = key;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void RtpFarEnd::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!write(stop_fd_, &one, sizeof(one));
  thread_.join();
}

RtpFarEnd::Counters RtpFarEnd::counters() const {
  Counters counters;
  counters.sent = sent_.load();
  counters.send_errors = send_errors_.load();
  counters.received = received_.load();
  counters.not_rtp = not_rtp_.load();
  counters.late_slots = late_slots_.load();
  counters.max_lateness_ns = max_lateness_ns_.load();
  return counters;
}

void RtpFarEnd::Run() {
  pthread_setname_np(pthread_self(), "farend-rtp");
  // Millisecond m of the schedule is due at start + (m + 1) ms.
  const int64_t start = MonotonicNs();
  itimerspec spec{};
  spec.it_value.tv_nsec = 1'000'000;
  spec.it_interval.tv_nsec = 1'000'000;
  timerfd_settime(timer_fd_, 0, &spec, nullptr);
  int64_t next_ms = 0;
  epoll_event events[256];
  for (;;) {
    const int n = epoll_wait(epoll_fd_, events, 256, -1);
    if (n < 0 && errno != EINTR) return;
    for (int e = 0; e < n; ++e) {
      const uint64_t key = events[e].data.u64;
      if (key == kStopKey) return;
      if (key == kTimerKey) {
        uint64_t expirations = 0;
        if (read(timer_fd_, &expirations, sizeof(expirations)) != sizeof(expirations)) continue;
        const int64_t lateness = MonotonicNs() - (start + (next_ms + 1) * 1'000'000);
        if (lateness > kLateSlotNs) {
          late_slots_.fetch_add(1, std::memory_order_relaxed);
          if (lateness > max_lateness_ns_.load()) max_lateness_ns_.store(lateness);
        }
        // Every millisecond of the schedule, also the ones missed: a late
        // packet, never a missing one.
        for (uint64_t i = 0; i < expirations; ++i)
          SendSlot(static_cast<int>(next_ms++ % kSlotsPerFrame));
        continue;
      }
      Receive(static_cast<int>(key));
    }
  }
}

void RtpFarEnd::SendSlot(int millisecond) {
  int16_t pcm[kFrameSamples];
  uint8_t packet[backend::kRtpHeaderSize + kFrameSamples];
  for (int slot = millisecond; slot < count_; slot += kSlotsPerFrame) {
    Call& call = calls_[slot];
    const int remote = call.remote_port.load(std::memory_order_relaxed);
    if (remote == 0) continue;
    const uint32_t frame = call.frames_sent++;
    handler_->Fill(slot, frame, pcm);
    backend::RtpHeader header;
    header.marker = frame == 0;
    header.payload_type = backend::kPayloadTypePcmu;
    header.sequence = call.sequence++;
    header.timestamp = call.timestamp;
    header.ssrc = call.ssrc;
    call.timestamp += kFrameSamples;
    backend::WriteRtpHeader(header, packet);
    backend::G711Encode(backend::kPayloadTypePcmu, absl::MakeConstSpan(pcm, kFrameSamples),
                        packet + backend::kRtpHeaderSize);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(static_cast<uint16_t>(remote));
    const int64_t now = RealtimeNs();
    if (sendto(call.fd, packet, sizeof(packet), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) !=
        static_cast<ssize_t>(sizeof(packet))) {
      send_errors_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    sent_.fetch_add(1, std::memory_order_relaxed);
    handler_->OnSent(slot, frame, now);
  }
}

// RTCP goes to our port + 1, where nothing listens: the gateway's reports
// are dropped by the kernel (an unconnected socket ignores the ICMP), and
// this thread only ever reads RTP.
void RtpFarEnd::Receive(int slot) {
  const Call& call = calls_[slot];
  uint8_t datagram[2048];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  int16_t pcm[sizeof(datagram)];
  for (int read = 0; read < kMaxReadsPerEvent; ++read) {
    iovec vector{datagram, sizeof(datagram)};
    msghdr message{};
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    const ssize_t got = recvmsg(call.fd, &message, MSG_DONTWAIT);
    if (got < 0) return;  // EAGAIN: drained
    int64_t at = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec stamp{};
        std::memcpy(&stamp, CMSG_DATA(c), sizeof(stamp));
        at = int64_t{stamp.tv_sec} * 1'000'000'000 + stamp.tv_nsec;
      }
    }
    if (at == 0) at = RealtimeNs();
    std::optional<backend::RtpPacketView> packet =
        backend::ParseRtpPacket(absl::MakeConstSpan(datagram, static_cast<size_t>(got)));
    if (!packet || packet->header.payload_type != backend::kPayloadTypePcmu) {
      not_rtp_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    received_.fetch_add(1, std::memory_order_relaxed);
    backend::G711Decode(backend::kPayloadTypePcmu, packet->payload, pcm);
    handler_->OnHeard(slot, pcm, static_cast<int>(packet->payload.size()), at);
  }
}

}  // namespace telestra::bench
