#!/usr/bin/env bash
# Sustained calls per second to a sipp UAS via a private Kamailio: the gateway
# driven from the native port, then sipp UAC -> Kamailio -> sipp UAS as the
# ceiling (bench/cps.cc).
# Usage: bench/run-cps.sh [--seconds=30] [--window=64] [--ceiling_rates=2500,2000,...]
#        (figures to stdout; exit 1 if any call failed)
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build -c opt //bench:cps 2>/dev/null
BIN=$(bazel info -c opt bazel-bin 2>/dev/null)
# Copy the runfiles: another bazel command may rebuild them meanwhile.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -rL "$BIN/bench/cps.runfiles" "$WORK/runfiles"
cp "$BIN/bench/cps" "$WORK/"
mkdir -p "$WORK/tmp"
# The harness finds the gateway and examples/kamailio.cfg in the runfiles and
# keeps its files (plans, logs, Kamailio's run directory) in TEST_TMPDIR.
TEST_SRCDIR="$WORK/runfiles" TEST_TMPDIR="$WORK/tmp" timeout 600 "$WORK/cps" "$@"
