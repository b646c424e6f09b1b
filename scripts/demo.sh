#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running gateway:
# installs what is missing, builds, starts a local Kamailio registrar on
# 127.0.0.1:5060 with the demo users (3001..3008, password sip<user>), then
# runs the gateway with examples/plan.ini in the foreground (Ctrl-C stops
# both).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
bazel build //gateway:telestra_gateway

RUN_DIR=$(mktemp -d /tmp/telestra-demo.XXXXXX)
SIP_PORT=${KAMAILIO_PORT:-5060}
echo "demo: starting Kamailio on 127.0.0.1:${SIP_PORT} (log: ${RUN_DIR}/kamailio.log)"
kamailio -DD -E -f examples/kamailio.cfg -A "SIP_PORT=${SIP_PORT}" \
  -A "CTL_SOCK=\"${RUN_DIR}/kamailio-ctl\"" -P "${RUN_DIR}/kamailio.pid" \
  -Y "${RUN_DIR}" -w "${RUN_DIR}" -m 64 -M 8 >"${RUN_DIR}/kamailio.log" 2>&1 &
KAMAILIO_PID=$!
cleanup() {
  kill -TERM "$KAMAILIO_PID" 2>/dev/null || true
  wait "$KAMAILIO_PID" 2>/dev/null || true
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  if (echo >"/dev/tcp/127.0.0.1/${SIP_PORT}") 2>/dev/null; then break; fi
  if ! kill -0 "$KAMAILIO_PID" 2>/dev/null; then
    echo "demo: Kamailio did not start:" >&2
    cat "${RUN_DIR}/kamailio.log" >&2
    exit 1
  fi
  sleep 0.1
done

echo "demo: gateway native API on 127.0.0.1:3550; try:"
echo "  printf '{\"cmd\":\"get-status\",\"account\":\"account-1\"}\\0' | nc -q1 127.0.0.1 3550"
bazel-bin/gateway/telestra_gateway --plan=examples/plan.ini "$@" &
GATEWAY_PID=$!
trap 'kill -TERM "$GATEWAY_PID" 2>/dev/null || true' INT TERM
wait "$GATEWAY_PID" || true
wait "$GATEWAY_PID" 2>/dev/null || true
