#!/usr/bin/env bash
# Installs every Debian 12 package that the build, the tests and the tools need.
# Idempotent: apt-get skips what is installed. Runs as root or through sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config ccache git clang-format
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libdnnl-dev ocl-icd-opencl-dev opencl-headers libabsl-dev prometheus-cpp-dev libsentencepiece-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  curl procps openssl python3-yaml prometheus
  clang libclang-rt-14-dev
  python3-grpcio python3-grpc-tools python3-pytest python3-sentencepiece
)

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
