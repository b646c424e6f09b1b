#!/usr/bin/env bash
# Usage: architecture_svg_test.sh DOT SVG
# Fails when SVG is not what `dot -Tsvg DOT` makes (re-render: the command in
# docs/architecture.dot).
set -euo pipefail
dot_file=$1 svg_file=$2
if ! command -v dot >/dev/null; then
  echo "FAIL: graphviz's dot is not installed (scripts/install-deps.sh installs it)"
  exit 1
fi
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
dot -Tsvg "$dot_file" -o "$rendered"
if ! diff -q "$rendered" "$svg_file" >/dev/null; then
  echo "FAIL: docs/architecture.svg is stale; run: dot -Tsvg docs/architecture.dot -o docs/architecture.svg"
  diff "$rendered" "$svg_file" | head -20
  exit 1
fi
grep -qE "telestra(-|&#45;)sip" "$svg_file" || { echo "FAIL: the SVG does not show the SIP thread"; exit 1; }
echo "PASS: docs/architecture.svg matches docs/architecture.dot"
