#!/usr/bin/env bash
# Installs the packages, builds and serves the demo models (models/, a model
# repository: en-de, de-en, en-fr; en-de answers requests that name no
# model or languages) on port 50051 (HTTP/JSON and LibreTranslate's API on
# 8080, metrics on 9464). Extra arguments go to transformer-server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --build
bash scripts/build.sh -DTS_BUILD_TESTS=OFF
exec build/bin/transformer-server --model_repository=models \
  --default_model=marian-en-de-multi30k "$@"
