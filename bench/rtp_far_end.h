// The RTP far ends of many calls, for benchmarks that need to know when each
// packet went out and came in (bench/call_audio.cc): one UDP socket per call
// on 127.0.0.1, PCMU both ways, 20 ms packets, all driven by one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "absl/status/status.h"

namespace telestra::bench {

// Call `slot` sends in the (slot % 20)-th millisecond of every 20 ms, so
// the calls' packets are spread over the frame as independent far ends'
// would be, not sent in one burst. A call sends from when its remote port
// is set until Stop(). Its frames are numbered from 0 and filled by the
// handler; what it receives is decoded and handed to the handler with the
// kernel's receive time (SO_TIMESTAMPNS, CLOCK_REALTIME): the moment the
// packet came off the loopback "wire", whatever this thread was doing.
//
// Thread: Start, Stop, SetRemote, port and counters from any thread; the
// handler runs on the far end's own thread ("farend-rtp").
class RtpFarEnd {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // Writes frame `frame` of call `slot` (kFrameSamples samples) to `pcm`.
    virtual void Fill(int slot, uint32_t frame, int16_t* pcm) = 0;
    // That frame was handed to the kernel at `realtime_ns` (just before
    // its sendto).
    virtual void OnSent(int slot, uint32_t frame, int64_t realtime_ns) = 0;
    // An RTP packet of call `slot`, decoded (`samples` samples).
    virtual void OnHeard(int slot, const int16_t* pcm, int samples, int64_t realtime_ns) = 0;
  };

  struct Counters {
    uint64_t sent = 0;
    uint64_t send_errors = 0;
    uint64_t received = 0;
    uint64_t not_rtp = 0;  // datagrams that are not PCMU RTP (RTCP never comes: see .cc)
    // Milliseconds of the send schedule handled more than 2 ms late (this
    // thread did not get the CPU in time), and the worst lateness.
    uint64_t late_slots = 0;
    int64_t max_lateness_ns = 0;
  };

  // `handler` outlives this object.
  RtpFarEnd(int calls, Handler* handler);
  ~RtpFarEnd();
  RtpFarEnd(const RtpFarEnd&) = delete;
  RtpFarEnd& operator=(const RtpFarEnd&) = delete;

  // Binds the calls' sockets and starts the thread.
  absl::Status Start();
  // Stops sending and receiving; joins the thread.
  void Stop();

  int calls() const { return count_; }
  // The local RTP port of call `slot` (for its SDP).
  int port(int slot) const { return calls_[slot].port; }
  // Where call `slot` sends: 127.0.0.1:`port` (the gateway's RTP port from
  // its SDP). Starts the call's frames.
  void SetRemote(int slot, int port) { calls_[slot].remote_port.store(port); }

  Counters counters() const;

 private:
  struct Call {
    int fd = -1;
    int port = 0;
    std::atomic<int> remote_port{0};
    // Far end thread only.
    uint32_t frames_sent = 0;
    uint16_t sequence = 0;
    uint32_t timestamp = 0;
    uint32_t ssrc = 0;
  };

  void Run();
  void SendSlot(int millisecond);
  void Receive(int slot);

  Handler* const handler_;
  const int count_;
  std::unique_ptr<Call[]> calls_;
  int epoll_fd_ = -1;
  int timer_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;

  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> send_errors_{0};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> not_rtp_{0};
  std::atomic<uint64_t> late_slots_{0};
  std::atomic<int64_t> max_lateness_ns_{0};
};

// CLOCK_REALTIME in nanoseconds: the clock of every timestamp of the
// benchmark (the kernel's receive timestamps use it).
int64_t RealtimeNs();

}  // namespace telestra::bench
