#!/usr/bin/env bash
# Media load: 100, 500 and 1000 calls in one RTP engine looped back to a
# second engine over 127.0.0.1, G.711 both ways, 10 s each (plus 1 s warm-up).
# Usage: bench/run-media-load.sh [seconds]   (figures go to stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
bazel build -c opt //bench:media_load 2>/dev/null
# Copy the binary: another bazel command may re-point bazel-bin meanwhile.
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
cp bazel-bin/bench/media_load "$BIN/"
nproc | xargs echo "cores:"
for calls in 100 500 1000; do
  "$BIN/media_load" --calls="$calls" --seconds="$SECONDS_PER_RUN"
done
