#!/usr/bin/env bash
# A 200-sentence document against the same sentences sent as separate texts,
# in one run (issue 22): the demo model's 200 golden sources, as one text of
# 200 lines (--document, INPUT_FORMAT_TEXT) and as 200 texts of one request
# (INPUT_FORMAT_SENTENCE), alternating, REPS rounds each; the translation
# cache is off, so every sentence is computed. Prints each round's seconds
# and the medians' sentences/s and ratio.
#   REPS=5 BEAM=4 bash scripts/bench_document.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_common.sh
REPS="${REPS:-5}"
BEAM="${BEAM:-4}"
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT
write_golden_sources "$work/sources.txt"
cp "$work/sources.txt" "$work/document.txt"
print_machine "$work/sources.txt"
start_server "$work/server.log" --cache_mb=0 --num_workers=2 --intra_threads=1
client=(build/bin/transformer-client translate --server="127.0.0.1:$SERVER_PORT"
        --beam_size="$BEAM" --max_length=128 --output=/dev/null)
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
"${client[@]}" --input="$work/sources.txt" --texts_per_request=200 >/dev/null  # warm up
doc=() sep=()
for round in $(seq "$REPS"); do
  d=$(seconds "${client[@]}" --document="$work/document.txt")
  s=$(seconds "${client[@]}" --input="$work/sources.txt" --input_format=sentence \
        --texts_per_request=200 --concurrency=1)
  echo "round $round: document ${d} s, separate texts ${s} s"
  doc+=("$d") sep+=("$s")
done
/usr/bin/python3 - "${doc[*]}" "${sep[*]}" <<'PY'
import statistics, sys
doc = [float(x) for x in sys.argv[1].split()]
sep = [float(x) for x in sys.argv[2].split()]
d, s = statistics.median(doc), statistics.median(sep)
print(f"median: document {200/d:.1f} sentences/s ({d:.3f} s), "
      f"separate texts {200/s:.1f} sentences/s ({s:.3f} s), ratio {s/d:.2f}x")
PY
