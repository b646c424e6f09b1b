#!/usr/bin/env bash
# Builds //bench:TARGET (-c opt) and runs it on a private copy of its
# runfiles, the way the integration harness expects (the gateway binary and
# examples/kamailio.cfg from TEST_SRCDIR, its own files in TEST_TMPDIR).
# Usage: bench/run-harness-bench.sh TARGET [flags for TARGET...]
# (bench/run-call-setup.sh and bench/run-cps.sh call this.)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=$1
shift
bazel build -c opt "//bench:$TARGET" 2>/dev/null
BIN=$(bazel info -c opt bazel-bin 2>/dev/null)
# Copy the runfiles: another bazel command may rebuild them meanwhile.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -rL "$BIN/bench/$TARGET.runfiles" "$WORK/runfiles"
cp "$BIN/bench/$TARGET" "$WORK/"
mkdir -p "$WORK/tmp"
TEST_SRCDIR="$WORK/runfiles" TEST_TMPDIR="$WORK/tmp" timeout 1500 "$WORK/$TARGET" "$@"
