// Readiness and state changes reported to systemd (a unit with Type=notify,
// packaging/telestra.service), through libsystemd's sd_notify.
//
// Without $NOTIFY_SOCKET (not started by systemd, or a unit of another type)
// every function does nothing. A failure to send is logged once per call
// and otherwise ignored: the gateway runs the same with or without systemd.
//
// Thread: any.
#pragma once

namespace telestra::gateway {

// Every port is open and the accounts are starting to register: "READY=1"
// (systemd's start job ends here, and units ordered after this one start).
void NotifyReady();

// A reload (SIGHUP) has begun: "RELOADING=1". Send NotifyReady() once the
// new plan is in effect.
void NotifyReloading();

// Shutdown has begun (unregistering, ending calls): "STOPPING=1".
void NotifyStopping();

}  // namespace telestra::gateway
