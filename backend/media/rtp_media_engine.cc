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
// Pre-bound pairs kept for Open: about one tick's worth of new calls at
// 1,600 calls/s, and never more than an eighth of the range.
constexpr int kMaxSparePairs = 32;

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
  settings.latch = config.latch;
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
// True if it may.
bool RaiseFileLimit(int pairs) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  rlim_t wanted = static_cast<rlim_t>(pairs) * 2 + 256;
  if (limit.rlim_cur >= wanted) return true;
  rlim_t raised = std::min(wanted, limit.rlim_max);
  if (raised <= limit.rlim_cur) {
    spdlog::warn("RTP: open file limit {} allows fewer calls than the {} port pairs",
                 limit.rlim_cur, pairs);
    return false;
  }
  rlim_t before = limit.rlim_cur;
  limit.rlim_cur = raised;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  spdlog::info("RTP: raised the open file limit from {} to {}", before, raised);
  return raised >= wanted;
}

}  // namespace

RtpMediaEngine::RtpMediaEngine(RtpConfig config, std::string bind_address, Options options)
    : config_(std::move(config)),
      bind_address_(std::move(bind_address)),
      options_(options),
      local_ip_(ParseSocketAddress(bind_address_, 0)),
      settings_(MakeSettings(config_, options_)),
      recv_buffers_(kRecvBatch),
      recv_sources_(kRecvBatch),
      recv_vectors_(kRecvBatch),
      recv_messages_(kRecvBatch),
      ports_(config_.port_min, config_.port_max) {
  for (int i = 0; i < kRecvBatch; ++i) {
    recv_vectors_[i].iov_base = recv_buffers_[i].data();
    recv_vectors_[i].iov_len = recv_buffers_[i].size();
    std::memset(&recv_messages_[i], 0, sizeof(mmsghdr));
    recv_messages_[i].msg_hdr.msg_iov = &recv_vectors_[i];
    recv_messages_[i].msg_hdr.msg_iovlen = 1;
    recv_messages_[i].msg_hdr.msg_name = &recv_sources_[i].storage;
  }
  calls_by_port_.assign(ports_.pair_count(), nullptr);
  slot_count_ = ports_.pair_count();
  idle_fds_.assign(2 * static_cast<size_t>(slot_count_), -1);
  parked_.resize(slot_count_);
  spare_target_ = std::min(kMaxSparePairs, slot_count_ / 8);
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
  std::vector<std::shared_ptr<CallAudioTap>> stopped;
  {
    absl::MutexLock lock(&mu_);
    std::vector<int64_t> ids;
    ids.reserve(calls_.size());
    for (const auto& [id, call] : calls_) {
      ids.push_back(id);
      call->StopTaps("Gateway shutting down");
      call->TakeWakeups(&stopped);
    }
    for (int64_t id : ids) CloseLocked(id);
    FinishClosingLocked();
    spares_.clear();  // closes their sockets
    parked_.clear();
  }
  for (const std::shared_ptr<CallAudioTap>& tap : stopped) tap->RunWakeup();
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
  keep_sockets_ = RaiseFileLimit(ports_.pair_count());
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
  absl::StatusOr<RtpSocketPair> sockets =
      options.port != 0 ? AcquireReservedLocked(options.port) : AcquirePairLocked(call_id);
  if (!sockets.ok()) return sockets.status();
  int port = sockets->rtp_port();
  // AcquirePairLocked may have waited without the lock.
  if (stopping_ || calls_.contains(call_id)) {
    ports_.Release(port);
    return stopping_
               ? absl::FailedPreconditionError("RTP engine is stopping")
               : absl::AlreadyExistsError(absl::StrCat("media of call ", call_id, " is open"));
  }

  std::unique_ptr<WavRecorder> recorder;
  if (!options.record_dir.empty()) {
    std::string path =
        absl::StrCat(options.record_dir, "/", call_id, "-", SafeFileName(options.account), ".wav");
    // A restored call (its port given) goes on with its last run's recording.
    absl::StatusOr<std::unique_ptr<WavRecorder>> created =
        options.port != 0 ? WavRecorder::Resume(path) : WavRecorder::Create(path);
    if (!created.ok()) {
      ports_.Release(port);
      return created.status();
    }
    recorder = *std::move(created);
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
  std::vector<std::shared_ptr<CallAudioTap>> stopped;
  {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(call_id);
    if (it != calls_.end()) {
      it->second->StopTaps("Call ended");
      it->second->TakeWakeups(&stopped);
    }
    CloseLocked(call_id);
  }
  for (const std::shared_ptr<CallAudioTap>& tap : stopped) tap->RunWakeup();
}

absl::Status RtpMediaEngine::AttachAudio(int64_t call_id, std::shared_ptr<CallAudioTap> tap) {
  std::vector<std::shared_ptr<CallAudioTap>> wake;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(call_id);
    if (it == calls_.end() || stopping_) {
      status = absl::NotFoundError(absl::StrCat("Unknown call ", call_id));
      if (tap->OnStopped("Call ended")) wake.push_back(tap);
    } else {
      it->second->AttachTap(tap);
      it->second->TakeWakeups(&wake);
    }
  }
  for (const std::shared_ptr<CallAudioTap>& woken : wake) woken->RunWakeup();
  return status;
}

void RtpMediaEngine::RunWakeups() {
  TELESTRA_ASSERT_ON(media_thread_);
  wakeup_thread_.Post(&wakeups_);
}

void RtpMediaEngine::CloseLocked(int64_t call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  std::unique_ptr<MediaCall> call = std::move(it->second);
  call->StopTaps("Call ended");  // (Close ran their wakeups already)
  calls_.erase(it);
  calls_by_port_[ports_.IndexOf(call->rtp_port())] = nullptr;
  SetIdleLocked(call->rtp_port(), call->rtp_fd(), call->rtcp_fd());
  // The media thread tears it down on its next tick, unless there is no
  // media thread (any more) or a recording that must be complete now.
  bool later = started_ && !stopping_ && !call->recording();
  closing_.push_back(std::move(call));
  if (!later) FinishClosingLocked();
}

void RtpMediaEngine::FinishClosingLocked() {
  if (closing_.empty()) return;
  int64_t now = MonotonicNanos();
  for (std::unique_ptr<MediaCall>& call : closing_) {
    call->Close(now);  // RTCP BYE, recording closed
    int port = call->rtp_port();
    if (keep_sockets_) {
      parked_[ports_.IndexOf(port)] = call->TakeSockets();  // still read (idle_fds_)
    } else {
      SetIdleLocked(port, -1, -1);
    }
    // Closing sockets also takes them out of the epoll set (never
    // duplicated); a readiness event already collected for them finds no
    // socket by port and is dropped.
    call.reset();
    ports_.Release(port);
  }
  closing_.clear();
}

absl::Status RtpMediaEngine::WatchPair(const RtpSocketPair& pair) {
  for (int fd : {pair.rtp_fd(), pair.rtcp_fd()}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 =
        static_cast<uint64_t>(fd == pair.rtp_fd() ? pair.rtp_port() : pair.rtp_port() + 1);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot watch RTP sockets: ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

void RtpMediaEngine::SetIdleLocked(int rtp_port, int rtp_fd, int rtcp_fd) {
  int index = ports_.IndexOf(rtp_port);
  idle_fds_[2 * index] = rtp_fd;
  idle_fds_[2 * index + 1] = rtcp_fd;
}

std::optional<RtpSocketPair> RtpMediaEngine::UnparkLocked(int rtp_port) {
  int index = ports_.IndexOf(rtp_port);
  if (index < 0 || !parked_[index]) return std::nullopt;
  std::optional<RtpSocketPair> pair = std::move(parked_[index]);
  parked_[index].reset();
  return pair;
}

absl::Status RtpMediaEngine::ReservePort(int rtp_port) {
  absl::MutexLock lock(&mu_);
  if (ports_.IndexOf(rtp_port) < 0 || rtp_port % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("RTP port ", rtp_port, " is not an even port of the RTP range"));
  }
  if (!ports_.Reserve(rtp_port)) {
    return absl::UnavailableError(absl::StrCat("RTP port ", rtp_port, " is in use"));
  }
  reserved_.insert(rtp_port);
  return absl::OkStatus();
}

void RtpMediaEngine::CancelReservation(int rtp_port) {
  absl::MutexLock lock(&mu_);
  if (reserved_.erase(rtp_port) > 0) ports_.Release(rtp_port);
}

absl::StatusOr<RtpSocketPair> RtpMediaEngine::AcquireReservedLocked(int rtp_port) {
  if (reserved_.erase(rtp_port) == 0) {
    return absl::FailedPreconditionError(absl::StrCat("RTP port ", rtp_port, " is not reserved"));
  }
  absl::StatusOr<RtpSocketPair> bound = RtpSocketPair::Bind(*local_ip_, rtp_port);
  if (!bound.ok()) {
    ports_.Release(rtp_port);
    return bound.status();
  }
  if (absl::Status watched = WatchPair(*bound); !watched.ok()) {
    ports_.Release(rtp_port);
    return watched;
  }
  return bound;
}

absl::StatusOr<RtpSocketPair> RtpMediaEngine::AcquirePairLocked(int64_t call_id) {
  if (spares_.empty() && spares_binding_ > 0 && ports_.in_use() == ports_.pair_count()) {
    // The media thread is binding the last free pairs: wait for them rather
    // than report a full range.
    mu_.Await(absl::Condition(
        +[](RtpMediaEngine* engine) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return engine->spares_binding_ == 0 || !engine->spares_.empty();
        },
        this));
  }
  if (!spares_.empty()) {
    RtpSocketPair pair = std::move(spares_.front());
    spares_.pop_front();
    SetIdleLocked(pair.rtp_port(), -1, -1);
    return pair;
  }
  // Bind a free pair now. Ports taken by other programs are skipped (and
  // left free in the allocator: they may be released later). A full range
  // may still hold pairs of closed calls not yet torn down: finish those.
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      if (closing_.empty()) break;
      FinishClosingLocked();
    }
    std::vector<int> busy;
    std::optional<RtpSocketPair> sockets;
    for (int attempt = 0; attempt < ports_.pair_count() && !sockets; ++attempt) {
      std::optional<int> port = ports_.Acquire();
      if (!port) break;
      if (std::optional<RtpSocketPair> parked = UnparkLocked(*port)) {
        SetIdleLocked(*port, -1, -1);
        for (int p : busy) ports_.Release(p);
        return *std::move(parked);  // already in the epoll set
      }
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
    if (!sockets) continue;
    if (absl::Status watched = WatchPair(*sockets); !watched.ok()) {
      ports_.Release(sockets->rtp_port());
      return watched;
    }
    return *std::move(sockets);
  }
  return absl::ResourceExhaustedError("No RTP port available");
}

void RtpMediaEngine::RefillSpares() {
  std::vector<int> ports;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    int wanted = spare_target_ - static_cast<int>(spares_.size()) - spares_binding_;
    for (; wanted > 0; --wanted) {
      std::optional<int> port = ports_.Acquire();
      if (!port) break;
      if (std::optional<RtpSocketPair> parked = UnparkLocked(*port)) {
        spares_.push_back(*std::move(parked));  // bound and read already
      } else {
        ports.push_back(*port);
      }
    }
    spares_binding_ += static_cast<int>(ports.size());
  }
  if (ports.empty()) return;
  // Bound without the lock: Open waits for these only when the range has
  // nothing else left.
  std::vector<RtpSocketPair> bound;
  std::vector<int> failed;  // in use by another program, out of descriptors
  for (int port : ports) {
    absl::StatusOr<RtpSocketPair> pair = RtpSocketPair::Bind(*local_ip_, port);
    if (pair.ok() && WatchPair(*pair).ok()) {
      bound.push_back(*std::move(pair));
    } else {
      failed.push_back(port);
    }
  }
  absl::MutexLock lock(&mu_);
  for (RtpSocketPair& pair : bound) {
    SetIdleLocked(pair.rtp_port(), pair.rtp_fd(), pair.rtcp_fd());
    spares_.push_back(std::move(pair));
  }
  for (int port : failed) ports_.Release(port);
  spares_binding_ -= static_cast<int>(ports.size());
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

absl::Status RtpMediaEngine::SendDtmf(int64_t call_id, const std::string& digits,
                                      int duration_ms, uint64_t request) {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return absl::NotFoundError(absl::StrCat("No media for call ", call_id));
  return it->second->QueueDtmf(digits, duration_ms, request);
}

void RtpMediaEngine::SetDtmfHandlers(DtmfHandlers handlers) {
  absl::MutexLock lock(&mu_);
  dtmf_handlers_ = std::move(handlers);
}

void RtpMediaEngine::ReportDtmf() {
  TELESTRA_ASSERT_ON(media_thread_);
  if (dtmf_notices_.empty()) return;
  DtmfHandlers handlers;
  {
    absl::MutexLock lock(&mu_);
    handlers = dtmf_handlers_;
  }
  for (const DtmfNotice& notice : dtmf_notices_) {
    if (notice.sent) {
      if (handlers.sent) handlers.sent(notice.call_id, notice.request);
    } else if (handlers.received) {
      handlers.received(notice.call_id, notice.digit, notice.duration_ms);
    }
  }
  dtmf_notices_.clear();
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
  pthread_setname_np(pthread_self(), "telestra-media");  // for top -H, perf, gdb
  media_thread_.Bind();
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
        {
          absl::MutexLock lock(&mu_);
          FinishClosingLocked();
        }
        RefillSpares();
      } else {
        ReadSocket(key);
      }
    }
    ReportDtmf();
    RunWakeups();
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
  TELESTRA_ASSERT_ON(media_thread_);
  mmsghdr* messages = recv_messages_.data();
  absl::MutexLock lock(&mu_);
  MediaCall* call = FindByPortLocked(port);
  bool rtcp = port % 2 == 1;
  if (call == nullptr) {
    // A spare or a call being torn down: discard. (Or a socket closed since
    // epoll_wait, whose port has no socket now.)
    int index = ports_.IndexOf(static_cast<int>(port));
    int fd = index < 0 ? -1 : idle_fds_[2 * index + (rtcp ? 1 : 0)];
    for (int batch = 0; fd >= 0 && batch < kMaxRecvBatchesPerEvent; ++batch) {
      int received = recvmmsg(fd, messages, kRecvBatch, MSG_DONTWAIT, nullptr);
      if (received <= 0) break;
      counters_.datagrams_discarded += static_cast<uint64_t>(received);
      if (received < kRecvBatch) break;
    }
    return;
  }
  int fd = rtcp ? call->rtcp_fd() : call->rtp_fd();
  // Level-triggered: what is left after the bound is read on the next round.
  for (int batch = 0; batch < kMaxRecvBatchesPerEvent; ++batch) {
    for (int i = 0; i < kRecvBatch; ++i) {
      messages[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);  // the kernel shrinks it
    }
    int received = recvmmsg(fd, messages, kRecvBatch, MSG_DONTWAIT, nullptr);
    if (received <= 0) return;
    int64_t now = MonotonicNanos();
    for (int i = 0; i < received; ++i) {
      if (messages[i].msg_hdr.msg_flags & MSG_TRUNC) continue;  // not RTP of ours
      absl::Span<const uint8_t> datagram(recv_buffers_[i].data(), messages[i].msg_len);
      SocketAddress& source = recv_sources_[i];
      source.length = messages[i].msg_hdr.msg_namelen;
      bool taken = rtcp ? call->OnRtcp(datagram, source, now) : call->OnRtp(datagram, source, now);
      if (!taken) ++counters_.datagrams_foreign;
    }
    call->TakeDtmf(&dtmf_notices_);
    if (received < kRecvBatch) return;
  }
}

void RtpMediaEngine::RunTicks(uint64_t expirations, std::vector<int64_t>* timed_out) {
  TELESTRA_ASSERT_ON(media_thread_);
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
        call->TakeDtmf(&dtmf_notices_);
        call->TakeWakeups(&wakeups_);
      }
    }
  }
  absl::MutexLock lock(&mu_);
  counters_.ticks += frames;
  counters_.frames_skipped += skipped;
  counters_.max_tick_ns = std::max(counters_.max_tick_ns, MonotonicNanos() - start);
}

}  // namespace telestra::backend
