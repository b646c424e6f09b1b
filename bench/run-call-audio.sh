#!/usr/bin/env bash
# Call audio (issue 19, bench/call_audio.cc): the real gateway (-c opt) places
# N calls to RTP far ends in the benchmark's process, and each call gets one
# gRPC CallAudio stream (BOTH, 8 kHz) from that same process. Prints, per N,
# the latency both ways, the glitches (lost, late, underruns) and where the
# CPU went.
# Usage: bench/run-call-audio.sh [N...]        (default: 10 100 200 300 400)
#   RUN_SECONDS=60   measured seconds per run (after 3 s of warm-up)
#   CHANNELS=1       gRPC connections the streams are spread over
#   NICE=-10         runs the benchmark and the gateway (its child) at that
#                    nice level, so that other work on a shared machine (a
#                    build) takes less of the cores from them; the "other
#                    processes" line shows what still ran
#   RT=1             runs them at SCHED_FIFO priority 10 instead (chrt; every
#                    thread, the gateway's too): what the gateway and its
#                    clients do when they get the CPU first (the kernel still
#                    leaves 5 % to the rest)
# (figures to stdout; a run that misses the 0.1 % glitch bound says FAIL)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=("$@")
[[ ${#COUNTS[@]} -gt 0 ]] || COUNTS=(10 100 200 300 400)
bazel build -c opt //bench:call_audio 2>/dev/null
BIN=$(bazel info -c opt bazel-bin 2>/dev/null)
# Copy the runfiles (with the gateway): another bazel command may rebuild
# them meanwhile.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -rL "$BIN/bench/call_audio.runfiles" "$WORK/runfiles"
cp "$BIN/bench/call_audio" "$WORK/"
mkdir -p "$WORK/tmp"
PRIORITY=()
if [[ "${NICE:-0}" != 0 ]]; then PRIORITY=(nice -n "$NICE"); fi
if [[ "${RT:-0}" == 1 ]]; then PRIORITY=(chrt -f 10); fi
echo "cores: $(nproc); priority: ${PRIORITY[*]:-normal}; $(uptime)"
for calls in "${COUNTS[@]}"; do
  TEST_SRCDIR="$WORK/runfiles" TEST_TMPDIR="$WORK/tmp" timeout 1200 "${PRIORITY[@]}" "$WORK/call_audio" \
    --calls="$calls" --seconds="${RUN_SECONDS:-60}" --channels="${CHANNELS:-1}" ||
    echo "calls=$calls: exit status $?"
done
