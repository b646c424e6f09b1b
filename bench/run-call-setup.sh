#!/usr/bin/env bash
# Call setup latency: gateway make-call -> call-incoming vs baresip dial ->
# CALL_INCOMING, both through a private Kamailio on loopback (bench/call_setup.cc).
# Usage: bench/run-call-setup.sh [--calls=100] [--warmup=10]   (figures to stdout)
exec "$(dirname "$0")/run-harness-bench.sh" call_setup "$@"
