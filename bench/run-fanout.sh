#!/usr/bin/env bash
# Broadcast fan-out (bench/fanout.cc): make-call -> call-incoming at every one
# of N native clients, through a private Kamailio on loopback.
# Usage: bench/run-fanout.sh [--clients=1000] [--rounds=100] [...]
#   BEFORE=/path/to/telestra_gateway  also runs that gateway binary, taking
#                                     turns with this tree's build
#   RUNS=3                            runs per gateway (alternating)
# (figures to stdout, one line per run)
set -euo pipefail
cd "$(dirname "$0")/.."
BAZEL=${BAZEL:-bazel}  # e.g. BAZEL="bazel --output_base=/tmp/x"
$BAZEL build -c opt //bench:fanout 2>/dev/null
BIN=$($BAZEL info -c opt bazel-bin 2>/dev/null)
# Copy the runfiles: another bazel command may rebuild them meanwhile.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -rL "$BIN/bench/fanout.runfiles" "$WORK/after"
cp "$BIN/bench/fanout" "$WORK/"
mkdir -p "$WORK/tmp"
if [[ -n "${BEFORE:-}" ]]; then
  cp -rL "$BIN/bench/fanout.runfiles" "$WORK/before"
  GW=$(find "$WORK/before" -path '*/gateway/telestra_gateway' -type f | head -1)
  cp "$BEFORE" "$GW"
fi
for run in $(seq 1 "${RUNS:-3}"); do
  for which in before after; do
    [[ -d "$WORK/$which" ]] || continue
    TEST_SRCDIR="$WORK/$which" TEST_TMPDIR="$WORK/tmp" timeout 600 "$WORK/fanout" \
      --label="$which" "$@" || echo "$which: run $run failed"
  done
done
