#include "backend/media/rtp_media_engine.h"

#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "backend/media/audio_format.h"
#include "backend/media/audio_generator.h"
#include "backend/media/rtp_socket_pair.h"
#include "backend/media/wav_recorder.h"
#include "spdlog/spdlog.h"

namespace telestra::backend {
namespace {

constexpr int kMaxCatchUpFrames = 3;
constexpr int kMaxEvents = 256;
constexpr int kMinToneHz = 1;
constexpr int kMaxToneHz = 3999;

int64_t MonotonicNanos() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

MediaCallSettings MakeSettings(const RtpConfig& config, const RtpMediaEngine::Options& options) {
  MediaCallSettings settings;
  settings.rtp_timeout_ns = std::max(0, config.rtp_timeout) * int64_t{1000000000};
  settings.jitter_buffer_ms = config.jitter_buffer_ms;
  settings.rtcp_interval = std::max(options.rtcp_interval, absl::Milliseconds(kFrameMs));
  return settings;
}

// A file-name-safe version of an account name.
std::string SafeFileName(const std::string& name) {
  std::string safe = name.empty() ? "account" : name;
  for (char& c : safe) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) c = '_';
  }
  if (safe[0] == '.') safe[0] = '_';
  return safe;
}

// Makes sure the process may open two sockets per port pair (plus slack).
void RaiseFileLimit(int pairs) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  rlim_t wanted = static_cast<rlim_t>(pairs) * 2 + 256;
  if (limit.rlim_cur >= wanted) return;
  rlim_t raised = std::min(wanted, limit.rlim_max);
  if (raised <= limit.rlim_cur) {
    spdlog::warn("RTP: open file limit {} allows fewer calls than the {} port pairs",
                 limit.rlim_cur, pairs);
    return;
  }
  rlim_t before = limit.rlim_cur;
  limit.rlim_cur = raised;
  if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
    spdlog::info("RTP: raised the open file limit from {} to {}", before, raised);
  }
}

}  // namespace

RtpMediaEngine::RtpMediaEngine(RtpConfig config, std::string bind_address, Options options)
    : config_(std::move(config)),
      bind_address_(std::move(bind_address)),
      options_(options),
      local_ip_(ParseSocketAddress(bind_address_, 0)),
      settings_(MakeSettings(config_, options_)),
      recv_buffers_(kRecvBatch),
      recv_vectors_(kRecvBatch),
      recv_messages_(kRecvBatch),
      ports_(config_.port_min, config_.port_max) {
  for (int i = 0; i < kRecvBatch; ++i) {
    recv_vectors_[i].iov_base = recv_buffers_[i].data();
    recv_vectors_[i].iov_len = recv_buffers_[i].size();
    std::memset(&recv_messages_[i], 0, sizeof(mmsghdr));
    recv_messages_[i].msg_hdr.msg_iov = &recv_vectors_[i];
    recv_messages_[i].msg_hdr.msg_iovlen = 1;
  }
  calls_by_port_.assign(ports_.pair_count(), nullptr);
  slot_count_ = ports_.pair_count();
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || timer_fd_ < 0 || wake_fd_ < 0) {
    init_status_ = absl::InternalError(
        absl::StrCat("RTP engine: cannot create epoll/timerfd/eventfd: ", std::strerror(errno)));
    return;
  }
  epoll_event timer_event{};
  timer_event.events = EPOLLIN;
  timer_event.data.u64 = kTimerKey;
  epoll_event wake_event{};
  wake_event.events = EPOLLIN;
  wake_event.data.u64 = kWakeKey;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &timer_event) != 0 ||
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake_event) != 0) {
    init_status_ =
        absl::InternalError(absl::StrCat("RTP engine: epoll_ctl: ", std::strerror(errno)));
  }
}

RtpMediaEngine::~RtpMediaEngine() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t ignored = write(wake_fd_, &one, sizeof(one));
    (void)ignored;
    thread_.join();
  }
  {
    absl::MutexLock lock(&mu_);
    std::vector<int64_t> ids;
    ids.reserve(calls_.size());
    for (const auto& [id, call] : calls_) ids.push_back(id);
    for (int64_t id : ids) CloseLocked(id);
  }
  for (int fd : {epoll_fd_, timer_fd_, wake_fd_}) {
    if (fd >= 0) close(fd);
  }
}

absl::Status RtpMediaEngine::Start() {
  if (!init_status_.ok()) return init_status_;
  if (!local_ip_) {
    return absl::InvalidArgumentError(
        absl::StrCat("RTP bind address \"", bind_address_, "\" is not an IP address"));
  }
  absl::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("RTP engine already started");
  if (ports_.pair_count() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("RTP port range ", config_.port_min, "-",
                                                   config_.port_max,
                                                   " holds no even/odd port pair"));
  }
  RaiseFileLimit(ports_.pair_count());
  itimerspec period{};
  period.it_interval.tv_nsec = kFrameMs * 1000000;
  period.it_value.tv_nsec = kFrameMs * 1000000;
  if (timerfd_settime(timer_fd_, 0, &period, nullptr) != 0) {
    return absl::InternalError(absl::StrCat("RTP engine: timerfd_settime: ", std::strerror(errno)));
  }
  started_ = true;
  thread_ = std::thread([this] { Run(); });
  clockid_t clock;
  if (pthread_getcpuclockid(thread_.native_handle(), &clock) == 0) media_thread_clock_ = clock;
  spdlog::info("RTP engine on {} ports {}-{} ({} calls at most)", bind_address_, config_.port_min,
               config_.port_max, ports_.pair_count());
  return absl::OkStatus();
}

absl::StatusOr<int> RtpMediaEngine::Open(int64_t call_id, const MediaOptions& options) {
  if (!init_status_.ok()) return init_status_;
  if (!local_ip_) {
    return absl::FailedPreconditionError(
        absl::StrCat("RTP bind address \"", bind_address_, "\" is not an IP address"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (calls_.contains(call_id)) {
      return absl::AlreadyExistsError(absl::StrCat("media of call ", call_id, " is open"));
    }
  }
  // The audio source, outside the lock: a file may take a while to decode.
  AudioGenerator source = AudioGenerator::Silence();
  switch (options.source.kind) {
    case AudioSource::Kind::kSilence:
      break;
    case AudioSource::Kind::kTone:
      if (options.source.tone_hz < kMinToneHz || options.source.tone_hz > kMaxToneHz) {
        return absl::InvalidArgumentError(absl::StrCat("tone frequency ", options.source.tone_hz,
                                                       " Hz is outside ", kMinToneHz, "..",
                                                       kMaxToneHz));
      }
      source = AudioGenerator::Tone(options.source.tone_hz);
      break;
    case AudioSource::Kind::kFile: {
      absl::StatusOr<std::shared_ptr<const AudioClip>> clip = clips_.Load(options.source.file);
      if (!clip.ok()) return clip.status();
      source = AudioGenerator::Clip(*std::move(clip));
      break;
    }
  }

  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::FailedPreconditionError("RTP engine is stopping");
  if (calls_.contains(call_id)) {
    return absl::AlreadyExistsError(absl::StrCat("media of call ", call_id, " is open"));
  }
  // A free pair that we can bind: ports taken by other programs are skipped
  // (and left free in the allocator: they may be released later).
  std::optional<RtpSocketPair> sockets;
  std::vector<int> busy;
  for (int attempt = 0; attempt < ports_.pair_count() && !sockets; ++attempt) {
    std::optional<int> port = ports_.Acquire();
    if (!port) break;
    absl::StatusOr<RtpSocketPair> bound = RtpSocketPair::Bind(*local_ip_, *port);
    if (bound.ok()) {
      sockets = *std::move(bound);
    } else if (absl::IsUnavailable(bound.status())) {
      busy.push_back(*port);
    } else {
      ports_.Release(*port);
      for (int p : busy) ports_.Release(p);
      spdlog::warn("call {}: {}", call_id, bound.status().ToString());
      return bound.status();
    }
  }
  for (int p : busy) ports_.Release(p);
  if (!sockets) return absl::ResourceExhaustedError("No RTP port available");
  int port = sockets->rtp_port();

  std::unique_ptr<WavRecorder> recorder;
  if (!options.record_dir.empty()) {
    std::string path =
        absl::StrCat(options.record_dir, "/", call_id, "-", SafeFileName(options.account), ".wav");
    absl::StatusOr<std::unique_ptr<WavRecorder>> created = WavRecorder::Create(path);
    if (!created.ok()) {
      ports_.Release(port);
      return created.status();
    }
    recorder = *std::move(created);
  }

  epoll_event rtp_event{};
  rtp_event.events = EPOLLIN;
  rtp_event.data.u64 = static_cast<uint64_t>(port);
  epoll_event rtcp_event{};
  rtcp_event.events = EPOLLIN;
  rtcp_event.data.u64 = static_cast<uint64_t>(port + 1);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, sockets->rtp_fd(), &rtp_event) != 0 ||
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, sockets->rtcp_fd(), &rtcp_event) != 0) {
    ports_.Release(port);
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot watch RTP sockets: ", std::strerror(errno)));
  }

  MediaCall::Init init;
  init.id = call_id;
  init.cname =
      absl::StrCat(options.account.empty() ? "telestra" : options.account, "@", bind_address_);
  init.sockets = *std::move(sockets);
  init.source = std::move(source);
  init.recorder = std::move(recorder);
  init.ssrc = absl::Uniform<uint32_t>(rng_);
  init.first_sequence = absl::Uniform<uint16_t>(rng_);
  init.first_timestamp = absl::Uniform<uint32_t>(rng_);
  auto call = std::make_unique<MediaCall>(std::move(init), settings_);
  calls_by_port_[ports_.IndexOf(port)] = call.get();
  calls_[call_id] = std::move(call);
  return port;
}

void RtpMediaEngine::Update(int64_t call_id, const MediaParams& params) {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  it->second->Update(params, MonotonicNanos(), rng_);
}

void RtpMediaEngine::Close(int64_t call_id) {
  absl::MutexLock lock(&mu_);
  CloseLocked(call_id);
}

void RtpMediaEngine::CloseLocked(int64_t call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  MediaCall* call = it->second.get();
  call->Close(MonotonicNanos());
  // Closing the sockets also removes them from the epoll set; a readiness
  // event already collected for them finds no call by port and is dropped.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, call->rtp_fd(), nullptr);
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, call->rtcp_fd(), nullptr);
  int port = call->rtp_port();
  calls_by_port_[ports_.IndexOf(port)] = nullptr;
  calls_.erase(it);  // closes the sockets
  ports_.Release(port);
}

std::optional<MediaStats> RtpMediaEngine::Stats(int64_t call_id) const {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return std::nullopt;
  return it->second->stats();
}

std::optional<MediaCallDiagnostics> RtpMediaEngine::Diagnostics(int64_t call_id) const {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return std::nullopt;
  return it->second->diagnostics();
}

void RtpMediaEngine::SetTimeoutHandler(std::function<void(int64_t call_id)> handler) {
  absl::MutexLock lock(&mu_);
  timeout_handler_ = std::move(handler);
}

size_t RtpMediaEngine::open_calls() const {
  absl::MutexLock lock(&mu_);
  return calls_.size();
}

RtpMediaEngine::Counters RtpMediaEngine::counters() const {
  absl::MutexLock lock(&mu_);
  Counters counters = counters_;
  timespec ts{};
  if (media_thread_clock_ && clock_gettime(*media_thread_clock_, &ts) == 0) {
    counters.media_thread_cpu_ns = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }
  return counters;
}

MediaCall* RtpMediaEngine::FindByPortLocked(uint64_t port) {
  int index = ports_.IndexOf(static_cast<int>(port));
  return index < 0 ? nullptr : calls_by_port_[index];
}

void RtpMediaEngine::Run() {
  epoll_event events[kMaxEvents];
  std::vector<int64_t> timed_out;
  timed_out.reserve(64);
  // Ends only when the destructor sets stopping_ and wakes us.
  while (true) {
    int count = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
    if (count < 0) {
      if (errno == EINTR) continue;
      spdlog::error("RTP engine: epoll_wait: {}", std::strerror(errno));
      return;
    }
    for (int i = 0; i < count; ++i) {
      uint64_t key = events[i].data.u64;
      if (key == kWakeKey) {
        uint64_t value;
        ssize_t ignored = read(wake_fd_, &value, sizeof(value));
        (void)ignored;
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
      } else if (key == kTimerKey) {
        uint64_t expirations = 0;
        if (read(timer_fd_, &expirations, sizeof(expirations)) == sizeof(expirations) &&
            expirations > 0) {
          RunTicks(expirations, &timed_out);
        }
      } else {
        ReadSocket(key);
      }
    }
    if (!timed_out.empty()) {
      std::function<void(int64_t)> handler;
      {
        absl::MutexLock lock(&mu_);
        handler = timeout_handler_;
      }
      for (int64_t id : timed_out) {
        spdlog::info("call {}: no RTP for {} s", id, config_.rtp_timeout);
        if (handler) handler(id);
      }
      timed_out.clear();
    }
  }
}

void RtpMediaEngine::ReadSocket(uint64_t port) {
  mmsghdr* messages = recv_messages_.data();
  absl::MutexLock lock(&mu_);
  MediaCall* call = FindByPortLocked(port);
  if (call == nullptr) return;  // closed since epoll_wait
  bool rtcp = port % 2 == 1;
  int fd = rtcp ? call->rtcp_fd() : call->rtp_fd();
  // Level-triggered: what is left after the bound is read on the next round.
  for (int batch = 0; batch < kMaxRecvBatchesPerEvent; ++batch) {
    int received = recvmmsg(fd, messages, kRecvBatch, MSG_DONTWAIT, nullptr);
    if (received <= 0) return;
    int64_t now = MonotonicNanos();
    for (int i = 0; i < received; ++i) {
      if (messages[i].msg_hdr.msg_flags & MSG_TRUNC) continue;  // not RTP of ours
      absl::Span<const uint8_t> datagram(recv_buffers_[i].data(), messages[i].msg_len);
      if (rtcp) {
        call->OnRtcp(datagram, now);
      } else {
        call->OnRtp(datagram, now);
      }
    }
    if (received < kRecvBatch) return;
  }
}

void RtpMediaEngine::RunTicks(uint64_t expirations, std::vector<int64_t>* timed_out) {
  int frames = static_cast<int>(std::min<uint64_t>(expirations, kMaxCatchUpFrames));
  int skipped = static_cast<int>(std::min<uint64_t>(expirations - frames, 1 << 20));
  int64_t start = MonotonicNanos();
  // Calls are visited by port index, kTickChunk at a time, releasing the
  // lock in between so Open/Close never wait for a whole tick. The table's
  // size is fixed, so the walk stays valid whatever changes between chunks
  // (a call opened mid-tick at an index already passed starts next tick).
  const int slots = slot_count_;
  for (int frame = 0; frame < frames; ++frame) {
    for (int first = 0; first < slots; first += kTickChunk) {
      absl::MutexLock lock(&mu_);
      int64_t now = MonotonicNanos();
      for (int index = first; index < std::min(slots, first + kTickChunk); ++index) {
        MediaCall* call = calls_by_port_[index];
        if (call == nullptr) continue;
        if (skipped > 0 && frame == 0) call->SkipFrames(skipped);
        if (call->OnTick(now, rng_)) timed_out->push_back(call->id());
      }
    }
  }
  absl::MutexLock lock(&mu_);
  counters_.ticks += frames;
  counters_.frames_skipped += skipped;
  counters_.max_tick_ns = std::max(counters_.max_tick_ns, MonotonicNanos() - start);
}

}  // namespace telestra::backend
