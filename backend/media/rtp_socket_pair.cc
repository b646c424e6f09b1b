#include "backend/media/rtp_socket_pair.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace telestra::backend {
namespace {

constexpr int kDscpExpedited = 0xb8;  // DSCP EF (46) << 2, for voice

absl::Status SocketError(int error, const SocketAddress& address) {
  std::string what = absl::StrCat(address.ToString(), ": ", std::strerror(error));
  switch (error) {
    case EADDRINUSE:
    case EACCES:
      return absl::UnavailableError(absl::StrCat("RTP port in use ", what));
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      return absl::ResourceExhaustedError(absl::StrCat("cannot open RTP socket ", what));
    default:
      return absl::InternalError(absl::StrCat("cannot open RTP socket ", what));
  }
}

// Returns the socket or -errno.
int OpenBound(const SocketAddress& address) {
  int fd = socket(address.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int tos = kDscpExpedited;
  if (address.family() == AF_INET) {
    setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
  } else {
    setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos));
  }
  if (bind(fd, address.get(), address.length) != 0) {
    int error = errno;
    close(fd);
    return -error;
  }
  return fd;
}

}  // namespace

absl::StatusOr<RtpSocketPair> RtpSocketPair::Bind(const SocketAddress& local, int rtp_port) {
  SocketAddress rtp_address = local.WithPort(rtp_port);
  int rtp_fd = OpenBound(rtp_address);
  if (rtp_fd < 0) return SocketError(-rtp_fd, rtp_address);
  SocketAddress rtcp_address = local.WithPort(rtp_port + 1);
  int rtcp_fd = OpenBound(rtcp_address);
  if (rtcp_fd < 0) {
    close(rtp_fd);
    return SocketError(-rtcp_fd, rtcp_address);
  }
  return RtpSocketPair(rtp_fd, rtcp_fd, rtp_port, local.family());
}

RtpSocketPair::RtpSocketPair(RtpSocketPair&& other) noexcept
    : rtp_fd_(std::exchange(other.rtp_fd_, -1)),
      rtcp_fd_(std::exchange(other.rtcp_fd_, -1)),
      rtp_port_(other.rtp_port_),
      family_(other.family_) {}

RtpSocketPair& RtpSocketPair::operator=(RtpSocketPair&& other) noexcept {
  if (this != &other) {
    Reset();
    rtp_fd_ = std::exchange(other.rtp_fd_, -1);
    rtcp_fd_ = std::exchange(other.rtcp_fd_, -1);
    rtp_port_ = other.rtp_port_;
    family_ = other.family_;
  }
  return *this;
}

RtpSocketPair::~RtpSocketPair() { Reset(); }

void RtpSocketPair::Reset() {
  if (rtp_fd_ >= 0) close(rtp_fd_);
  if (rtcp_fd_ >= 0) close(rtcp_fd_);
  rtp_fd_ = rtcp_fd_ = -1;
}

}  // namespace telestra::backend
