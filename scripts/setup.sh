#!/usr/bin/env bash
# Installs the Debian 12 packages the project needs. Idempotent: apt-get skips
# what is installed. Runs as root or through sudo.
#   bash scripts/setup.sh          build + tests + tools (CI, developers)
#   bash scripts/setup.sh --build  only what building the binaries needs (the
#                                  Dockerfile's build stage, scripts/serve.sh)
set -euo pipefail

# Compilers and the libraries the binaries link.
BUILD_PACKAGES=(
  build-essential cmake pkg-config ccache git
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libdnnl-dev ocl-icd-opencl-dev opencl-headers libabsl-dev prometheus-cpp-dev libsentencepiece-dev nlohmann-json3-dev
  libcpp-httplib-dev libicu-dev libgumbo-dev libcld2-dev
  curl procps
)
# Tests, sanitizers, fuzzers, benchmarks and the tools the tests call. Add
# test-only packages here, not above: the container image builds with --build.
TEST_PACKAGES=(
  clang-format
  libgtest-dev libgmock-dev libbenchmark-dev
  openssl python3-yaml prometheus
  clang libclang-rt-14-dev
  python3-grpcio python3-grpc-tools python3-pytest python3-sentencepiece
  chromium chromium-driver python3-selenium
  python3-torch
)
# kubectl for check_deploy's kustomize build: Debian's kubernetes-client,
# unless a kubectl is already there (another package may own
# /usr/bin/kubectl, e.g. a cloud SDK's, and the two conflict).
if ! command -v kubectl > /dev/null; then TEST_PACKAGES+=(kubernetes-client); fi

PACKAGES=("${BUILD_PACKAGES[@]}")
if [[ "${1:-}" != "--build" ]]; then PACKAGES+=("${TEST_PACKAGES[@]}"); fi

SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
