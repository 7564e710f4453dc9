#!/usr/bin/env bash
# BLEU of the demo model with and without --max_length_factor (issue 24):
# the 200 golden sentences of Multi30k test_2016_flickr (the 1000-line set is
# not shipped; golden/translations.jsonl has the first 200 with their
# references), translated by the real server and client, greedy and beam 4,
# at max_length 128 (the golden files') and 512 (the default), for each
# factor; scored with bench/bleu.py (sacreBLEU 13a, exp smoothing). Also
# counts the outputs that differ from factor 0.
#   FACTORS="0 3" bash scripts/bleu_length_factor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FACTORS="${FACTORS:-0 3}"
source scripts/bench_common.sh
trap stop_server EXIT
write_golden_sources "$OUT/bleu_sources.txt"
/usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    print(json.loads(line)["reference"])' "$DEMO/golden/translations.jsonl" \
  > "$OUT/bleu_references.txt"

echo "| max_length_factor | search | max_length | BLEU (200 sentences) | outputs differing from factor 0 |"
echo "|---|---|---|---|---|"
for factor in $FACTORS; do
  start_server "$OUT/bleu_server.log" --max_length_factor="$factor" \
    --num_workers=1 --intra_threads=2
  for beam in 1 4; do
    for max_length in 128 512; do
      out="$OUT/bleu_f${factor}_b${beam}_m${max_length}.txt"
      build/bin/transformer-client translate \
        --server="127.0.0.1:$SERVER_PORT" --beam_size="$beam" \
        --max_length="$max_length" --input="$OUT/bleu_sources.txt" \
        --output="$out" 2> /dev/null
      bleu=$(/usr/bin/python3 bench/bleu.py "$out" "$OUT/bleu_references.txt")
      base="$OUT/bleu_f0_b${beam}_m${max_length}.txt"
      differ="-"
      if [[ -f "$base" ]]; then
        differ=$(diff "$base" "$out" | grep -c '^>' || true)
      fi
      search=$([[ $beam == 1 ]] && echo greedy || echo "beam 4")
      echo "| $factor | $search | $max_length | $bleu | $differ |"
    done
  done
  stop_server
done
