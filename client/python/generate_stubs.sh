#!/usr/bin/env bash
# Generates the Python messages and gRPC stubs of the public API
# (proto/transformer/v1/transformer_service.proto) into OUT_DIR, default
# build/python of the checkout. The generated files are build output: never
# commit them.
#
#   client/python/generate_stubs.sh [OUT_DIR]
#   PYTHONPATH=OUT_DIR /usr/bin/python3 -c 'from transformer.v1 import transformer_service_pb2'
#
# Uses Debian's protoc and grpc_python_plugin (protobuf-compiler,
# protobuf-compiler-grpc; the C++ build needs them too). Debian's
# python3-grpc-tools (1.14) bundles protoc 3.5, which rejects the proto3
# `optional` field of the API, so `python3 -m grpc_tools.protoc` is only the
# fallback when those are missing.
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out_dir="${1:-${repo_dir}/build/python}"
proto="${repo_dir}/proto/transformer/v1/transformer_service.proto"

mkdir -p "${out_dir}"
if command -v protoc >/dev/null && command -v grpc_python_plugin >/dev/null; then
  protoc -I "${repo_dir}/proto" \
    --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
    --python_out="${out_dir}" --grpc_python_out="${out_dir}" "${proto}"
else
  "${TS_PYTHON:-/usr/bin/python3}" -m grpc_tools.protoc -I "${repo_dir}/proto" \
    --python_out="${out_dir}" --grpc_python_out="${out_dir}" "${proto}"
fi
echo "generated ${out_dir}/transformer/v1/transformer_service_pb2{,_grpc}.py"
