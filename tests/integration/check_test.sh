#!/usr/bin/env bash
# transformer-server --check on (1) the demo model in fp32 and int8, (2) a
# base-size model with synthesized weights (the OPUS-MT zh-en skeleton), and
# (3) a broken folder, which must fail with a clear message (--check, and
# serving it with the HTTP gateway on). The memory
# figures are checked against the config's numbers computed here.
#   check_test.sh SERVER SYNTHETIC_MODEL_TOOL SOURCE_DIR
set -euo pipefail
SERVER="$1"
SYNTH="$2"
SRC="$3"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0
pass() { echo "PASS  $*"; passed=$((passed + 1)); }
fail() { echo "FAIL  $*"; failed=$((failed + 1)); }

# expect_check NAME EXPECTED_KV_BYTES EXPECTED_SOURCE_WORD ARGS...: --check
# exits 0, prints OK, a translation and the KV bytes per token.
expect_check() {
  local name="$1" kv="$2"
  shift 2
  local out rc=0
  out="$("$SERVER" --check "$@" 2>&1)" || rc=$?
  printf '%s\n' "$out" | sed "s/^/  [$name] /"
  [[ $rc == 0 ]] && pass "$name: exit 0" || fail "$name: exit $rc"
  grep -q '^check: OK$' <<<"$out" && pass "$name: check: OK" || fail "$name: no 'check: OK'"
  grep -Eq '^translation \(greedy\): .+' <<<"$out" &&
    pass "$name: a translation" || fail "$name: no translation"
  grep -q "^KV cache per decoded token per row .*: $kv bytes$" <<<"$out" &&
    pass "$name: KV bytes per token $kv" || fail "$name: KV bytes per token is not $kv"
  for ct in fp32 bf16 int8; do
    grep -Eq "^  $ct: [0-9.]+ MiB \([0-9]+ bytes\)$" <<<"$out" &&
      pass "$name: $ct weight bytes" || fail "$name: no $ct weight bytes"
  done
  LAST_OUTPUT="$out"
}

# KV bytes per token = 2 (K, V) x decoder_layers x d_model x 4 (fp32).
kv_bytes() {
  /usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(2*c["decoder_layers"]*c["d_model"]*4)' "$1/config.json"
}

DEMO="$SRC/models/marian-en-de-multi30k"
expect_check "demo fp32" "$(kv_bytes "$DEMO")" --model_dir="$DEMO" \
  --check_sentence="A man is riding a bicycle."
grep -q '^translation (greedy): Ein Mann fährt' <<<"$LAST_OUTPUT" &&
  pass "demo fp32: the golden-like German translation" ||
  fail "demo fp32: expected 'Ein Mann fährt ...'"
expect_check "demo int8" "$(kv_bytes "$DEMO")" --model_dir="$DEMO" --compute_type=int8

SKELETON="$SRC/tests/data/opus-mt-zh-en-skeleton"
if "$SYNTH" "$SKELETON" "$TMP/base" 7; then
  pass "synthesized a base-size model"
  expect_check "base-size int8" "$(kv_bytes "$SKELETON")" \
    --model_dir="$TMP/base" --compute_type=int8 --check_sentence="我喜欢学习中文。"
  # int8 weights of the base size: ~75 M parameters, so between 70 and 120 MiB.
  mib="$(sed -n 's/^weights loaded (int8): \([0-9.]*\) MiB.*/\1/p' <<<"$LAST_OUTPUT")"
  /usr/bin/python3 -c "import sys; sys.exit(not 70 < float('${mib:-0}') < 120)" &&
    pass "base-size int8 weights loaded: $mib MiB" ||
    fail "base-size int8 weights loaded: '$mib' MiB, expected 70..120"
else
  fail "synthesized a base-size model"
fi

# A folder without weights fails, naming the folder and what is missing.
rc=0
out="$("$SERVER" --check --model_dir="$SKELETON" 2>&1)" || rc=$?
printf '%s\n' "$out" | sed 's/^/  [no weights] /'
[[ $rc != 0 ]] && pass "no weights: exit $rc" || fail "no weights: exit 0"
grep -q -- "--check failed: .*cannot load model from $SKELETON" <<<"$out" &&
  pass "no weights: the message names the folder" || fail "no weights: unclear message"

# Serving a folder that does not exist (not --check) with the HTTP gateway on
# exits with the reason rather than hanging: the gateway, started before the
# model loads, must stop even when loading fails at once. `timeout` ends a
# hung server (exit 137).
http_port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
rc=0
out="$(timeout -s KILL 60 "$SERVER" --model_dir="$TMP/missing" --host=127.0.0.1 \
  --port=0 --metrics_port=0 --http_address=127.0.0.1 --http_port="$http_port" 2>&1)" || rc=$?
printf '%s\n' "$out" | sed 's/^/  [serve, missing folder] /'
[[ $rc != 0 && $rc != 137 ]] &&
  pass "serving a missing folder, gateway on: exit $rc" ||
  fail "serving a missing folder, gateway on: exit $rc (137: hung, killed)"
grep -q -- "cannot load model from $TMP/missing" <<<"$out" &&
  pass "serving a missing folder: the message names it" ||
  fail "serving a missing folder: unclear message"

echo "$passed passed, $failed failed"
((failed == 0))
