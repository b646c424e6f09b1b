#pragma once

#include "absl/status/statusor.h"
#include "backend/media/socket_address.h"

namespace telestra::backend {

// The two non-blocking UDP sockets of a call: RTP on an even port, RTCP on
// the next one, both bound to the engine's address. Closes them when
// destroyed. Thread: owned by one call.
class RtpSocketPair {
 public:
  // Unavailable if either port is taken (try another pair),
  // ResourceExhausted when out of file descriptors, Internal otherwise.
  static absl::StatusOr<RtpSocketPair> Bind(const SocketAddress& local, int rtp_port);

  RtpSocketPair() = default;  // no sockets
  RtpSocketPair(RtpSocketPair&& other) noexcept;
  RtpSocketPair& operator=(RtpSocketPair&& other) noexcept;
  ~RtpSocketPair();

  int rtp_fd() const { return rtp_fd_; }
  int rtcp_fd() const { return rtcp_fd_; }
  int rtp_port() const { return rtp_port_; }
  int family() const { return family_; }  // AF_INET or AF_INET6

 private:
  RtpSocketPair(int rtp_fd, int rtcp_fd, int rtp_port, int family)
      : rtp_fd_(rtp_fd), rtcp_fd_(rtcp_fd), rtp_port_(rtp_port), family_(family) {}
  void Reset();

  int rtp_fd_ = -1;
  int rtcp_fd_ = -1;
  int rtp_port_ = 0;
  int family_ = 0;
};

}  // namespace telestra::backend
