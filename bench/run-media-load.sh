#!/usr/bin/env bash
# Media load: 100, 500 and 1000 calls in one RTP engine looped back to a
# second engine over 127.0.0.1, G.711 both ways, 10 s each (after 1 s of
# warm-up). Both engines run in this one process, so the machine carries
# 2 x N call legs.
# Usage: bench/run-media-load.sh [seconds]      (figures go to stdout)
#   MEDIA_LOAD_RT=1 bench/run-media-load.sh     runs at SCHED_FIFO priority 10
#   (chrt), so that other load on a shared machine cannot starve the media
#   threads; the "waited for a CPU" line shows how much that mattered.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
bazel build -c opt //bench:media_load 2>/dev/null
# Copy the binary: another bazel command may re-point bazel-bin meanwhile.
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
cp bazel-bin/bench/media_load "$BIN/"
PRIORITY=()
if [[ "${MEDIA_LOAD_RT:-0}" == 1 ]]; then PRIORITY=(chrt -f 10); fi
echo "cores: $(nproc); priority: ${PRIORITY[*]:-normal}"
for calls in 100 500 1000; do
  "${PRIORITY[@]}" "$BIN/media_load" --calls="$calls" --seconds="$SECONDS_PER_RUN"
done
