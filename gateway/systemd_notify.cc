#include "gateway/systemd_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "spdlog/spdlog.h"

namespace telestra::gateway {
namespace {

// sd_notify: > 0 sent, 0 no $NOTIFY_SOCKET (nothing to do), < 0 -errno.
void Send(const char* state) {
  const int sent = sd_notify(/*unset_environment=*/0, state);
  if (sent < 0) {
    spdlog::warn("cannot tell systemd '{}': {}", state, std::strerror(-sent));
  } else if (sent > 0) {
    spdlog::debug("told systemd '{}'", state);
  }
}

}  // namespace

void NotifyReady() { Send("READY=1\nSTATUS=Ready"); }

// MONOTONIC_USEC: when the reload began (systemd 253's Type=notify-reload
// asks for it; older ones ignore it).
void NotifyReloading() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const uint64_t usec = static_cast<uint64_t>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  Send(("RELOADING=1\nSTATUS=Reloading the plan\nMONOTONIC_USEC=" + std::to_string(usec)).c_str());
}

void NotifyStopping() { Send("STOPPING=1\nSTATUS=Shutting down"); }

}  // namespace telestra::gateway
