#!/usr/bin/env bash
# gRPC front end benchmarks (docs/benchmarks.md):
#   1. unary GetStatus latency against the gateway (bench/plan.ini), 1 and 16
#      clients, and the same request on a Session stream;
#   2. Subscribe throughput in-process, to 1 and to 100 subscribers.
# Usage: bench/run-grpc.sh   (figures go to stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build -c opt //gateway:telestra_gateway //bench:grpc_bench 2>/dev/null
# Copy the binaries: another bazel command may re-point bazel-bin meanwhile.
BIN=$(mktemp -d)
cp bazel-bin/gateway/telestra_gateway bazel-bin/bench/grpc_bench "$BIN/"
GRPC_PORT=${GRPC_PORT:-3561}
"$BIN/telestra_gateway" --plan=bench/plan.ini --native_port=0 --web_port=0 \
  --grpc_port="$GRPC_PORT" --metrics_port=0 --log_level=warn &
GATEWAY=$!
trap 'kill -TERM $GATEWAY 2>/dev/null; wait $GATEWAY 2>/dev/null; rm -rf "$BIN"' EXIT
for _ in $(seq 1 100); do
  (echo >"/dev/tcp/127.0.0.1/$GRPC_PORT") 2>/dev/null && break
  sleep 0.1
done
"$BIN/grpc_bench" --mode=unary --port="$GRPC_PORT" --clients=1 --requests=20000
"$BIN/grpc_bench" --mode=unary --port="$GRPC_PORT" --clients=16 --requests=2000
"$BIN/grpc_bench" --mode=session --port="$GRPC_PORT" --clients=1 --requests=20000
"$BIN/grpc_bench" --mode=fanout --subscribers=1 --events=200000
"$BIN/grpc_bench" --mode=fanout --subscribers=100 --events=20000
