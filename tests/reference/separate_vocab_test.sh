#!/usr/bin/env bash
# Separate source and target vocabularies (share_encoder_decoder_embeddings
# false, decoder_vocab_size, target_vocab.json) with untied encoder, decoder
# and output embeddings: a small random checkpoint of that layout
# (marian_reference.py make), translated by the real server (--check) and by
# a plain-PyTorch MarianMT (marian_reference.py translate). Source ids,
# greedy target ids and the decoded text must be equal.
#   separate_vocab_test.sh SERVER_BIN REPO_DIR
set -uo pipefail
server="$1"
repo="$2"
py=/usr/bin/python3
ref="$repo/tests/reference/marian_reference.py"
tmp="$(mktemp -d /tmp/ts_separate_vocab.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
finish() {
  echo "$passed passed, $failed failed"
  ((failed == 0))
  exit $?
}

if "$py" "$ref" make "$repo/models/marian-en-de-multi30k" "$tmp/model"; then
  pass "synthesized a separate-vocabulary checkpoint"
else
  fail "marian_reference.py make"
  finish
fi
all_ids=""
for text in "A man is riding a bicycle." "Two dogs play in the snow." \
            "A little girl in a pink dress is climbing stairs."; do
  expected="$("$py" "$ref" translate "$tmp/model" "$text")"
  out="$("$server" --check --model_dir="$tmp/model" --check_sentence="$text" 2>&1)"
  rc=$?
  if [[ $rc -ne 0 ]]; then
    fail "--check exited $rc on \"$text\""
    printf '%s\n' "$out" | sed 's/^/  /'
    continue
  fi
  got_src="$(sed -n 's/^source ids: //p' <<<"$out")"
  got_ids="$(sed -n 's/^target ids: //p' <<<"$out")"
  got_text="$(sed -n 's/^translation (greedy): //p' <<<"$out")"
  all_ids="$all_ids $got_ids"
  want_src="$(sed -n 1p <<<"$expected")"
  want_ids="$(sed -n 2p <<<"$expected")"
  want_text="$(sed -n 3p <<<"$expected")"
  [[ "$got_src" == "$want_src" ]] && pass "\"$text\": source ids" ||
    fail "\"$text\": source ids $got_src, reference $want_src"
  [[ "$got_ids" == "$want_ids" ]] && pass "\"$text\": greedy ids ($(wc -w <<<"$got_ids") tokens)" ||
    fail "\"$text\": greedy ids
  engine    $got_ids
  reference $want_ids"
  [[ "$got_text" == "$want_text" ]] && pass "\"$text\": text through target_vocab.json" ||
    fail "\"$text\": text '$got_text', reference '$want_text'"
done
# Some generated ids are past the source vocabulary: the decoder's own
# vocabulary is in use.
if "$py" -c "import sys; sys.exit(not any(int(t) > 8000 for t in sys.argv[1].split()))" "$all_ids"; then
  pass "target ids beyond the source vocabulary (8001 entries) were generated"
else
  fail "no target id beyond the source vocabulary: the test does not tell the vocabularies apart"
fi
finish
