#!/usr/bin/env bash
# Runs Node's built-in test runner on the given files (no npm packages):
# a readable report on stdout and, under Bazel, one JUnit test case per test
# in $XML_OUTPUT_FILE (which scripts/test.sh counts).
set -euo pipefail
command -v node >/dev/null || { echo "node is not installed" >&2; exit 1; }
reporters=(--test-reporter=spec --test-reporter-destination=stdout)
if [[ -n "${XML_OUTPUT_FILE:-}" ]]; then
  reporters+=(--test-reporter=junit "--test-reporter-destination=${XML_OUTPUT_FILE}")
fi
exec node --test "${reporters[@]}" "$@"
