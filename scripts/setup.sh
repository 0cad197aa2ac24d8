#!/usr/bin/env bash
# Installs Lumen's dependencies (Debian bookworm packages only; idempotent) and
# builds a Release tree in build/. Nothing is assumed to be present: this runs
# on a minbase Debian (the Docker build stage is exactly that).
#   scripts/setup.sh                 install build deps + build everything
#   scripts/setup.sh --deps          install build deps only
#   scripts/setup.sh --deps --test   install build and test deps (scripts/test.sh)
#   scripts/setup.sh --targets T...  install build deps + build only targets T
set -euo pipefail
cd "$(dirname "$0")/.."

# What compiling Lumen needs. ocl-icd-opencl-dev: libdnnl-dev's CMake config
# calls find_package(OpenCL) but only Recommends the package, which
# --no-install-recommends skips.
BUILD_PACKAGES=(
  ca-certificates build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libdnnl-dev ocl-icd-opencl-dev prometheus-cpp-dev libhnswlib-dev
  libsqlite3-dev libpq-dev libssl-dev libcpp-httplib-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
# What the test suite needs on top (scripts/test.sh): sanitizer and fuzzer
# toolchains, Python/Node clients, a real Prometheus and PostgreSQL, openssl
# for TLS certificates, podman for the image test.
TEST_PACKAGES=(
  clang libclang-rt-14-dev libomp-14-dev curl procps openssl
  python3 python3-grpcio python3-protobuf python3-jsonschema python3-requests
  prometheus postgresql-15 nodejs npm
  podman buildah mmdebstrap runc uidmap slirp4netns fuse-overlayfs podman-compose
  golang-github-containernetworking-plugin-dnsname
)

install_deps=1
with_tests=0
build=1
targets=()
while (($#)); do
  case "$1" in
    --deps) build=0 ;;
    --test) with_tests=1 ;;
    --targets) shift; targets=("$@"); break ;;
    *) echo "setup: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

wanted=("${BUILD_PACKAGES[@]}")
((with_tests)) && wanted+=("${TEST_PACKAGES[@]}")
missing=()
for p in "${wanted[@]}"; do
  # nodejs/npm from another repository (NodeSource) satisfy the Node client tests.
  if [[ $p == npm || $p == nodejs ]] && command -v node >/dev/null && command -v npm >/dev/null; then
    continue
  fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((install_deps)) && ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
echo "setup: dependencies present"
((build)) || exit 0

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
if ((${#targets[@]})); then
  cmake --build build --parallel "$(nproc)" --target "${targets[@]}"
else
  cmake --build build --parallel "$(nproc)"
fi
echo "setup: built build/bin/{$(ls build/bin | paste -sd, -)}"
