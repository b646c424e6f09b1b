#!/usr/bin/env bash
# Call setup latency: gateway make-call -> call-incoming vs baresip dial ->
# CALL_INCOMING, both through a private Kamailio on loopback (bench/call_setup.cc).
# Usage: bench/run-call-setup.sh [--calls=100] [--warmup=10]   (figures to stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build -c opt //bench:call_setup 2>/dev/null
BIN=$(bazel info -c opt bazel-bin 2>/dev/null)
# Copy the runfiles: another bazel command may rebuild them meanwhile.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -rL "$BIN/bench/call_setup.runfiles" "$WORK/runfiles"
cp "$BIN/bench/call_setup" "$WORK/"
mkdir -p "$WORK/tmp"
# The harness finds the gateway and examples/kamailio.cfg in the runfiles and
# keeps its files (plans, logs, Kamailio's run directory) in TEST_TMPDIR.
TEST_SRCDIR="$WORK/runfiles" TEST_TMPDIR="$WORK/tmp" timeout 600 "$WORK/call_setup" "$@"
