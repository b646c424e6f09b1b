#pragma once

#include <sys/socket.h>
#include <time.h>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/account_config.h"
#include "backend/media/audio_clip.h"
#include "backend/media/media_call.h"
#include "backend/media/rtp_port_allocator.h"
#include "backend/media/tap_wakeup_thread.h"
#include "backend/media/socket_address.h"
#include "backend/media_engine.h"
#include "backend/thread_owner.h"

namespace telestra::backend {

// The gateway's MediaEngine: G.711 RTP/RTCP for every call on one media
// thread.
//
// Design:
//  - One thread drives every call: an epoll set holding a 20 ms timerfd
//    (the send and playout clock of all calls), an eventfd (stop) and each
//    call's two UDP sockets. A tick sends one packet per sending call, pulls
//    one frame out of each receiving call's jitter buffer into its
//    recording, and sends RTCP when due. No thread per call, no allocation
//    per packet (packets are built on the stack; received datagrams land in
//    a fixed recvmmsg batch). A call takes RTP/RTCP only from its far end
//    (the SDP's address, or with `latch` the first source after the answer);
//    the rest is discarded and counted (MediaCall).
//  - If the thread misses ticks (timerfd expirations > 1) it catches up by
//    at most 3 frames and advances the RTP timestamps over the rest, so the
//    far end sees real time, not a burst.
//  - Open/Update/Close/Stats run on the caller's thread under `mu_`, which
//    the media thread also holds while it touches calls (per readable
//    socket, and per 32 calls of a tick, so a caller never waits for a whole
//    tick). A `file:` source is decoded before the lock is taken. Close is
//    safe at any point of a tick.
//  - The caller's thread (the SIP thread) makes no system call in Open or
//    Close in the common case: the media thread keeps a small pool of
//    pre-bound port pairs (already in its epoll set) that Open hands out,
//    topped up after each tick, and Close leaves the teardown (RTCP BYE,
//    freeing the ports) to the media thread's next tick, at most 20 ms
//    later. The sockets of a torn-down call stay bound, parked for the next
//    call on that pair (the allocator is next-fit, so that is after the rest
//    of the range), unless the open file limit is too low for a socket pair
//    per port pair of the range: after one pass over the range, calls cost
//    no socket system call at all. Open binds a pair itself when the pool is
//    empty, and finishes pending teardowns itself when it needs their ports
//    (so a full range frees up as soon as a call closes). A call with a
//    recording is torn down inside Close, so its file is complete when
//    Close returns. Sockets that belong to no call (spares, calls being torn
//    down) are still read, and what arrives on them discarded and counted.
//  - Applications' audio streams (CallAudioTap) get the call's frames and
//    give theirs during the tick; their wakeups (which start a client's
//    write) are handed to a thread of their own (`telestra-audio`,
//    TapWakeupThread) once per round, so no client write delays a tick.
//  - The timeout handler is called on the media thread without the lock (it
//    may call Close). It can run just after the SIP side closed that call;
//    unknown ids must be ignored.
//
// Libraries: G.711 is spandsp's, WAV reading and writing libsndfile's,
// resampling of `file:` sources speexdsp's (the tone is a std::sin table,
// see audio_generator.h). The
// RTP/RTCP layer is this folder's own (rtp_packet, rtcp, rtp_receive_stats:
// RFC 3550 appendix A) rather than oRTP: oRTP allocates an mblk_t per packet,
// runs its own scheduler and jitter buffer per session (we need one clock
// for all calls that also feeds the recordings), needs process-wide
// ortp_init and logging set-up, and hides the SR/RR contents we must
// control; the header and report formats are a few hundred lines. The
// jitter buffer is our own for the reasons in jitter_buffer.h.
//
// Memory per call: the jitter buffer (3 bytes per sample of capacity, about
// 5 KB at the default 60 ms), a 9.6 KB recording buffer plus libsndfile's
// state when recording, and two sockets' kernel buffers (not in our RSS).
//
// File descriptors: two per port pair that has carried a call (parked
// sockets stay open), plus two per spare. Start() raises the soft
// RLIMIT_NOFILE (up to the hard limit) if it is below what the port range
// needs; if it cannot, sockets are closed at the end of each call instead.
//
// Thread: every public method may be called from any thread.
class RtpMediaEngine final : public MediaEngine {
 public:
  struct Options {
    // Mean RTCP report interval (randomised 0.5..1.5 x, RFC 3550 6.3.5).
    absl::Duration rtcp_interval = absl::Seconds(5);
  };

  // `bind_address` is an IP literal (the SIP bind address); it is also what
  // local_address() returns for SDP.
  RtpMediaEngine(RtpConfig config, std::string bind_address, Options options);
  RtpMediaEngine(RtpConfig config, std::string bind_address)
      : RtpMediaEngine(std::move(config), std::move(bind_address), Options()) {}
  // Stops the media thread and closes every call (with RTCP BYE).
  ~RtpMediaEngine() override;

  RtpMediaEngine(const RtpMediaEngine&) = delete;
  RtpMediaEngine& operator=(const RtpMediaEngine&) = delete;

  // Starts the media thread. InvalidArgument for a bad bind address or an
  // empty port range; FailedPrecondition if already started.
  absl::Status Start();

  // MediaEngine.
  absl::Status ReservePort(int rtp_port) override;
  void CancelReservation(int rtp_port) override;
  absl::StatusOr<int> Open(int64_t call_id, const MediaOptions& options) override;
  void Update(int64_t call_id, const MediaParams& params) override;
  void Close(int64_t call_id) override;
  std::optional<MediaStats> Stats(int64_t call_id) const override;
  void SetTimeoutHandler(std::function<void(int64_t call_id)> handler) override;
  absl::Status SendDtmf(int64_t call_id, const std::string& digits, int duration_ms,
                        uint64_t request) override;
  void SetDtmfHandlers(DtmfHandlers handlers) override;
  absl::Status AttachAudio(int64_t call_id, std::shared_ptr<CallAudioTap> tap) override;
  const std::string& local_address() const override { return bind_address_; }
  size_t open_calls() const override;

  // More detail on a call than MediaStats (tests, diagnostics).
  std::optional<MediaCallDiagnostics> Diagnostics(int64_t call_id) const;

  struct Counters {
    uint64_t ticks = 0;
    uint64_t frames_skipped = 0;       // ticks missed beyond the catch-up bound
    int64_t max_tick_ns = 0;           // longest tick (all calls) so far
    int64_t media_thread_cpu_ns = 0;   // CPU time of the media thread
    uint64_t datagrams_discarded = 0;  // arrived on a port of no call
    // RTP/RTCP of a call from a source other than its far end (discarded;
    // see MediaCall and RtpConfig::latch).
    uint64_t datagrams_foreign = 0;
  };
  Counters counters() const;

 private:
  // epoll keys: a socket's port (< 65536) or one of these.
  static constexpr uint64_t kTimerKey = uint64_t{1} << 32;
  static constexpr uint64_t kWakeKey = kTimerKey + 1;
  static constexpr int kTickChunk = 32;  // calls ticked per lock hold
  static constexpr int kRecvBatch = 16;
  static constexpr int kMaxRecvBatchesPerEvent = 4;
  static constexpr size_t kDatagramSize = 2048;

  void Run();
  // Reads a readable socket (key = its port). Takes the lock.
  void ReadSocket(uint64_t port);
  // Runs the ticks for `expirations` timer expirations. Takes the lock.
  void RunTicks(uint64_t expirations, std::vector<int64_t>* timed_out);
  // Reports the DTMF notices collected (without the lock).
  void ReportDtmf();
  // Hands the taps' wakeups collected to wakeup_thread_ (without the lock).
  void RunWakeups();
  void CloseLocked(int64_t call_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tears down the calls Close left to the media thread.
  void FinishClosingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A pair for a new call: a spare, else a freshly bound one (in the epoll
  // set either way).
  absl::StatusOr<RtpSocketPair> AcquirePairLocked(int64_t call_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The parked sockets of the pair of `rtp_port`, if any (taken out).
  std::optional<RtpSocketPair> UnparkLocked(int rtp_port) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Binds the pair ReservePort kept (MediaOptions::port).
  absl::StatusOr<RtpSocketPair> AcquireReservedLocked(int rtp_port)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Binds spares until the pool holds spare_target_ (media thread, after a
  // tick; binds without the lock).
  void RefillSpares();
  // Adds a pair's sockets to the epoll set (keys: their ports).
  absl::Status WatchPair(const RtpSocketPair& pair);
  // Records the sockets of the pair of `rtp_port` as open but of no call
  // (read and discarded), or, with -1, as a call's or closed.
  void SetIdleLocked(int rtp_port, int rtp_fd, int rtcp_fd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  MediaCall* FindByPortLocked(uint64_t port) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RtpConfig config_;
  const std::string bind_address_;
  const Options options_;
  const std::optional<SocketAddress> local_ip_;
  const MediaCallSettings settings_;
  absl::Status init_status_;  // of the epoll/timer/eventfd set-up
  int epoll_fd_ = -1;
  int timer_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  ThreadOwner media_thread_;  // the thread running Run()
  AudioClipCache clips_;

  // Media thread only: the receive batch (buffers, source addresses and
  // recvmmsg headers pointing at them, set up once).
  std::vector<std::array<uint8_t, kDatagramSize>> recv_buffers_;
  std::vector<SocketAddress> recv_sources_;
  std::vector<iovec> recv_vectors_;
  std::vector<mmsghdr> recv_messages_;
  // What the calls reported of DTMF during the current round (collected
  // under the lock, reported after it).
  std::vector<DtmfNotice> dtmf_notices_;
  // The audio taps whose wakeup is due (collected under the lock, handed to
  // wakeup_thread_ after it).
  std::vector<std::shared_ptr<CallAudioTap>> wakeups_;
  TapWakeupThread wakeup_thread_;

  // Lock order: a leaf. Taken by the SIP thread (Open/Start/Close of a
  // call's media) and the media thread; nothing is called with it held: the
  // RTP-timeout handler runs after it is released.
  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  RtpPortAllocator ports_ ABSL_GUARDED_BY(mu_);
  // Pairs ReservePort kept for restored calls, not opened yet.
  std::set<int> reserved_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, std::unique_ptr<MediaCall>> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<MediaCall*> calls_by_port_ ABSL_GUARDED_BY(mu_);  // by pair index
  int slot_count_ = 0;  // calls_by_port_.size(), fixed after construction
  // Pre-bound pairs for Open, oldest first, and how many the media thread
  // is binding right now (acquired from ports_, not yet in spares_).
  std::deque<RtpSocketPair> spares_ ABSL_GUARDED_BY(mu_);
  int spares_binding_ ABSL_GUARDED_BY(mu_) = 0;
  int spare_target_ = 0;  // fixed after construction
  // Calls Close left to the media thread.
  std::vector<std::unique_ptr<MediaCall>> closing_ ABSL_GUARDED_BY(mu_);
  // Open sockets of no call (spares, calls in closing_), by 2 x pair index
  // + (RTCP ? 1 : 0), else -1: read and discarded when readable.
  std::vector<int> idle_fds_ ABSL_GUARDED_BY(mu_);
  // Bound sockets of free pairs, by pair index (see keep_sockets_).
  std::vector<std::optional<RtpSocketPair>> parked_ ABSL_GUARDED_BY(mu_);
  // Whether torn-down calls' sockets are parked (the file limit allows a
  // socket pair per port pair) or closed.
  bool keep_sockets_ ABSL_GUARDED_BY(mu_) = false;
  absl::BitGen rng_ ABSL_GUARDED_BY(mu_);
  std::function<void(int64_t)> timeout_handler_ ABSL_GUARDED_BY(mu_);
  DtmfHandlers dtmf_handlers_ ABSL_GUARDED_BY(mu_);
  Counters counters_ ABSL_GUARDED_BY(mu_);
  std::optional<clockid_t> media_thread_clock_ ABSL_GUARDED_BY(mu_);
};

}  // namespace telestra::backend
