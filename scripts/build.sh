#!/usr/bin/env bash
# Configures and builds into build/ (binaries in build/bin/). Extra arguments
# go to CMake, e.g. -DTS_ASAN=ON. Uses both cores and ccache.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@"
cmake --build "$BUILD_DIR" -j"${JOBS:-2}"
