// `telestra events`: the gateway's events over Subscribe, one a line.
#pragma once

#include <ostream>

#include "absl/status/status.h"
#include "cli/command_line.h"
#include "cli/connection.h"
#include "cli/interrupt.h"

namespace telestra::cli {

// Without follow: prints the replayed events (after_seq) and the snapshot
// (one status per selected account), then ends; bounded by the timeout.
// With follow: prints every event until `interrupts` fires (then OK) or
// the stream ends (the gateway shuts down: its status as the error).
// Lines are human-readable (cli/output.h), or the native JSON with `json`.
absl::Status RunEvents(const EventsRequest& request, bool json, GatewayConnection& connection,
                       InterruptWatcher& interrupts, std::ostream& out);

}  // namespace telestra::cli
