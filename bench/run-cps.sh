#!/usr/bin/env bash
# Sustained calls per second to a sipp UAS via a private Kamailio: the gateway
# driven from the native port, then sipp UAC -> Kamailio -> sipp UAS as the
# ceiling (bench/cps.cc).
# Usage: bench/run-cps.sh [--seconds=30] [--warmup_seconds=35] [--window=64] [--ceiling_rates=3000,2800,...]
#        (figures to stdout; exit 1 if any call failed)
exec "$(dirname "$0")/run-harness-bench.sh" cps "$@"
