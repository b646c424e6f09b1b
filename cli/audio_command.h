// `telestra audio`: a call's live audio over the CallAudio stream
// (docs/audio.md): record what the call hears, play a file into it.
#pragma once

#include <ostream>

#include "absl/status/status.h"
#include "cli/command_line.h"
#include "cli/connection.h"
#include "cli/interrupt.h"

namespace telestra::cli {

// Opens the stream on the call and
//   - with a record path, writes every heard frame to that WAV file (mono,
//     16-bit, the stream's rate) until the call ends or `interrupts` fires;
//   - with a play path, sends the file (read and resampled to the stream's
//     rate, cli/wav_file.h) as fast as the gateway takes it, then a mark;
//     when the mark comes back (all of it went out on the wire) the command
//     ends, unless it is also recording.
// Prints the stream's events (started, dtmf, stopped) as lines, or as the
// JSON of /ws/audio with `json`. A file that cannot be read or created is a
// UsageError before anything is sent; a call that ends before the whole
// file went out is an error (exit 1).
absl::Status RunAudio(const AudioRequest& request, bool json, GatewayConnection& connection,
                      InterruptWatcher& interrupts, std::ostream& out);

}  // namespace telestra::cli
