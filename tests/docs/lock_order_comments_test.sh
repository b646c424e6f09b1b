#!/usr/bin/env bash
# Every `absl::Mutex` member declared in the service's headers has a
# "Lock order" comment on its line or in the comment block right above it.
set -euo pipefail
missing=0 checked=0
while IFS= read -r header; do
  while IFS=: read -r line _; do
    checked=$((checked + 1))
    # The declaration's line and the comment lines directly above it.
    start=$((line > 8 ? line - 8 : 1))
    block=$(sed -n "${start},${line}p" "$header" | tac | awk 'NR == 1 { print; next } /^[[:space:]]*\/\// { print; next } { exit }')
    if ! grep -q "Lock order" <<<"$block"; then
      echo "FAIL: $header:$line: absl::Mutex without a \"Lock order\" comment"
      missing=$((missing + 1))
    fi
  done < <(grep -nE '^[[:space:]]*(mutable[[:space:]]+)?absl::Mutex[[:space:]]+[a-z_]+;' "$header" || true)
done < <(find -L backend gateway -name '*.h' | sort)
if [[ $checked -lt 10 ]]; then
  echo "FAIL: found only $checked mutexes: the headers are not where the test looks"
  exit 1
fi
[[ $missing -eq 0 ]] || exit 1
echo "PASS: $checked mutexes, each with its place in the lock order"
