#pragma once

#include <optional>
#include <vector>

namespace telestra::backend {

// Hands out RTP/RTCP port pairs from [port_min, port_max]: an even RTP port
// whose RTCP port (RTP + 1) is also in the range. Next-fit: the search
// starts after the pair handed out last, so a just-freed pair is reused as
// late as possible (stray packets of an ended call rarely reach a new one).
// Thread: not thread-safe; the engine's lock serialises access.
class RtpPortAllocator {
 public:
  RtpPortAllocator(int port_min, int port_max);

  int pair_count() const { return static_cast<int>(used_.size()); }
  int in_use() const { return in_use_; }

  // Reserves a free pair and returns its RTP port; nullopt if none is free.
  std::optional<int> Acquire();

  // Reserves the pair of `rtp_port` (even, in the range) itself; false when
  // it is not such a port or is in use.
  bool Reserve(int rtp_port);
  // Frees the pair of `rtp_port`. Ports not handed out are ignored.
  void Release(int rtp_port);

  // 0..pair_count()-1 for an RTP or RTCP port of the range, else -1.
  int IndexOf(int port) const;

 private:
  int first_port_;  // even
  std::vector<bool> used_;
  int next_ = 0;  // index where the next search starts
  int in_use_ = 0;
};

}  // namespace telestra::backend
