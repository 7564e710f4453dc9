#!/usr/bin/env bash
# Installs the packages, builds and serves the demo model on port 50051
# (metrics on 9464). Extra arguments go to transformer-server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --build
bash scripts/build.sh -DTS_BUILD_TESTS=OFF
exec build/bin/transformer-server --model_dir=models/marian-en-de-multi30k "$@"
