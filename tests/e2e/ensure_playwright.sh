#!/usr/bin/env bash
# Makes the e2e test's npm packages (package.json + package-lock.json beside
# this script: playwright-core, which drives Debian's /usr/bin/chromium and
# never downloads a browser) available, and prints their node_modules folder.
#
# They are installed once with `npm ci` into a cache outside the repository,
# keyed by the lock file's hash:
#   ${TELESTRA_E2E_CACHE:-<your home>/.cache/telestra-e2e}/<sha256>/node_modules
# (Bazel tests run with HOME set to a temporary folder, so the real home is
# looked up.) Concurrent runs take turns with flock; an install is moved into
# place only when complete.
#
# Usage: ensure_playwright.sh [OUTPUT_FILE]   (also writes the path there)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lock="$here/package-lock.json"
[[ -f "$lock" && -f "$here/package.json" ]] || { echo "missing $here/package*.json" >&2; exit 1; }
command -v node >/dev/null || { echo "node is not installed (apt-get install nodejs)" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is not installed" >&2; exit 1; }

real_home=$(getent passwd "$(id -u)" | cut -d: -f6 || true)
[[ -n "$real_home" && -d "$real_home" && -w "$real_home" ]] || real_home=/tmp
cache_root=${TELESTRA_E2E_CACHE:-$real_home/.cache/telestra-e2e}
key=$( (cat "$lock"; node --version) | sha256sum | cut -c1-16)
target="$cache_root/$key"
modules="$target/node_modules"

installed() { [[ -f "$modules/playwright-core/package.json" ]]; }

if ! installed; then
  mkdir -p "$cache_root"
  exec 9>"$cache_root/.lock"
  flock -w 600 9 || { echo "timed out waiting for $cache_root/.lock" >&2; exit 1; }
  if ! installed; then
    work=$(mktemp -d "$cache_root/install.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    cp "$here/package.json" "$lock" "$work/"
    echo "ensure_playwright: npm ci into $target" >&2
    (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
        --cache "$cache_root/npm-cache" >&2)
    rm -rf "$target"
    mv "$work" "$target"
    trap - EXIT
  fi
fi

echo "$modules"
if [[ $# -ge 1 ]]; then echo "$modules" >"$1"; fi
