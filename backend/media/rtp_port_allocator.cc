#include "backend/media/rtp_port_allocator.h"

#include <algorithm>

namespace telestra::backend {

RtpPortAllocator::RtpPortAllocator(int port_min, int port_max) {
  int first = std::max(port_min, 2);
  first += first % 2;  // round up to even
  int last = std::min(port_max, 65535);
  first_port_ = first;
  int pairs = last >= first + 1 ? (last - first + 1) / 2 : 0;
  used_.assign(pairs, false);
}

std::optional<int> RtpPortAllocator::Acquire() {
  int pairs = pair_count();
  for (int i = 0; i < pairs; ++i) {
    int index = (next_ + i) % pairs;
    if (!used_[index]) {
      used_[index] = true;
      ++in_use_;
      next_ = (index + 1) % pairs;
      return first_port_ + 2 * index;
    }
  }
  return std::nullopt;
}

bool RtpPortAllocator::Reserve(int rtp_port) {
  int index = IndexOf(rtp_port);
  if (index < 0 || rtp_port % 2 != 0 || used_[index]) return false;
  used_[index] = true;
  ++in_use_;
  return true;
}

void RtpPortAllocator::Release(int rtp_port) {
  int index = IndexOf(rtp_port);
  if (index < 0 || rtp_port % 2 != 0 || !used_[index]) return;
  used_[index] = false;
  --in_use_;
}

int RtpPortAllocator::IndexOf(int port) const {
  if (port < first_port_) return -1;
  int index = (port - first_port_) / 2;
  return index < pair_count() ? index : -1;
}

}  // namespace telestra::backend
