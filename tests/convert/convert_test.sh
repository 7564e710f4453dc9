#!/usr/bin/env bash
# scripts/convert_checkpoint.py on the demo model saved as pytorch_model.bin
# (torch.save of its state dict with tied aliases and a strided tensor):
# the safetensors it writes holds each tensor once, contiguous, with the
# original values, and the engine reproduces the golden greedy ids 200/200
# from it (golden_test with TS_GOLDEN_MODEL_DIR pointing at the output).
#   convert_test.sh GOLDEN_TEST_BIN REPO_DIR
set -euo pipefail
golden_test="$1"
repo="$2"
py=/usr/bin/python3
demo="$repo/models/marian-en-de-multi30k"
tmp="$(mktemp -d /tmp/ts_convert_test.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
"$py" "$repo/tests/convert/make_and_check.py" make "$demo" "$tmp/bin"
[[ ! -e "$tmp/bin/model.safetensors" ]]
"$py" "$repo/scripts/convert_checkpoint.py" "$tmp/bin" "$tmp/out"
"$py" "$repo/tests/convert/make_and_check.py" check "$demo" "$tmp/out"
TS_GOLDEN_MODEL_DIR="$tmp/out" "$golden_test" \
  --gtest_filter=GoldenTest.GreedyIdsMatchExactly 2>&1 | tee "$tmp/golden.log"
grep -q "greedy: 200/200 exact id matches" "$tmp/golden.log"
grep -q "model folder: $tmp/out" "$tmp/golden.log"
echo "convert_test: converted checkpoint gives golden 200/200"
