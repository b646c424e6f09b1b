#!/usr/bin/env bash
# Installs (with apt) whatever Debian 12 packages the gateway needs to build,
# test and run its demo, and only those that are missing.
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap pkg-config g++ protobuf-compiler protobuf-compiler-grpc
  # libraries
  libgrpc++-dev libprotobuf-dev libboost-dev libsimdjson-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsofia-sip-ua-dev libspdlog-dev prometheus-cpp-dev
  libspandsp-dev libsndfile1-dev libspeexdsp-dev libjemalloc-dev zlib1g-dev
  # SIP peers for the demo and the tests
  kamailio sip-tester baresip-core
  # tools the scripts use
  netcat-openbsd python3 procps
  # fuzzing (scripts/fuzz.sh: libFuzzer + ASan/UBSan, outside Bazel)
  clang-14 libfuzzer-14-dev
  # web front end: TLS (libssl-dev); its tests: certificates (openssl), the
  # dashboard in headless Chromium driven from Node (tests/e2e)
  libssl-dev openssl chromium nodejs
  # docs/architecture.svg from its Graphviz source (tests/docs checks it)
  graphviz
  # gRPC front end: the Python example client and its test (stubs generated
  # with protoc + grpc_python_plugin above; certificates with openssl)
  python3-grpcio python3-protobuf
  # the service package (scripts/package.sh, tests/package): readiness with
  # sd_notify (libsystemd-dev); dpkg-deb, dpkg-shlibdeps (dpkg-dev);
  # systemd-analyze verify of the unit (systemd); strip (binutils)
  libsystemd-dev dpkg-dev systemd binutils
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
# Debian's nodejs comes without npm (NodeSource's includes it).
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
