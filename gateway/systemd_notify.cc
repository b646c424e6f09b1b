#include "gateway/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstring>

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

void NotifyReloading() { Send("RELOADING=1\nSTATUS=Reloading the plan"); }

void NotifyStopping() { Send("STOPPING=1\nSTATUS=Shutting down"); }

}  // namespace telestra::gateway
