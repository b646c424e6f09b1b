#!/usr/bin/env bash
# Native port round trip (get-status -> status), 1 and 64 clients.
# Usage: bench/run-native-roundtrip.sh   (figures go to stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build -c opt //gateway:telestra_gateway //bench:native_roundtrip 2>/dev/null
# Copy the binaries: another bazel command may re-point bazel-bin meanwhile.
BIN=$(mktemp -d)
cp bazel-bin/gateway/telestra_gateway bazel-bin/bench/native_roundtrip "$BIN/"
PORT=${PORT:-3560}
"$BIN/telestra_gateway" --plan=bench/plan.ini --native_port="$PORT" --metrics_port=0 --grpc_port=0 --web_port=0 \
  --log_level=warn &
GATEWAY=$!
trap 'kill -TERM $GATEWAY 2>/dev/null; wait $GATEWAY 2>/dev/null; rm -rf "$BIN"' EXIT
for _ in $(seq 1 100); do
  (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
"$BIN/native_roundtrip" --port="$PORT" --clients=1 --requests=20000
"$BIN/native_roundtrip" --port="$PORT" --clients=64 --requests=1000
