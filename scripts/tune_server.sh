#!/usr/bin/env bash
# Measures the server's throughput and latency for each combination of
# num_workers x intra_threads and max_queue_delay_ms (issue 7: defaults chosen
# by measurement), with 1 and 64 concurrent clients each sending one sentence
# per request (the demo model's golden sources, greedy). The translation cache
# is off (--cache_mb=0): the 200 sources repeat, and it would answer them.
# Prints a Markdown table; bench/README.md keeps the one the defaults came
# from.
#   DURATION_S=8 COMPUTE_TYPE=fp32 LAYOUTS="1x2 2x1" DELAYS="0 5" \
#     bash scripts/tune_server.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION_S="${DURATION_S:-8}"
LAYOUTS="${LAYOUTS:-1x2 2x1}"  # num_workers x intra_threads
DELAYS="${DELAYS:-0 2 5 10 20}"
COMPUTE_TYPE="${COMPUTE_TYPE:-fp32}"
source scripts/bench_common.sh
trap stop_server EXIT
write_golden_sources "$OUT/tune_sources.txt"

echo "| num_workers x intra_threads | max_queue_delay_ms | 1 client sent/s | p50 ms | 64 clients sent/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|"
for layout in $LAYOUTS; do
  workers="${layout%x*}"
  threads="${layout#*x}"
  for delay in $DELAYS; do
    start_server "$OUT/tune_server.log" --cache_mb=0 \
      --compute_type="$COMPUTE_TYPE" \
      --num_workers="$workers" --intra_threads="$threads" \
      --max_queue_delay_ms="$delay"
    row="| $workers x $threads | $delay"
    for clients in 1 64; do
      build/bin/transformer-client bench --server="127.0.0.1:$SERVER_PORT" \
        --input="$OUT/tune_sources.txt" --concurrency="$clients" \
        --duration_s="$DURATION_S" --texts_per_request=1 --beam_size=1 \
        --max_length=128 --report_json="$OUT/tune.json" > /dev/null 2>&1
      row+=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
cells = ["%.1f" % r["sentences_per_second"], "%.0f" % (1e3 * r["latency_p50_s"])]
if sys.argv[2] == "64": cells.append("%.0f" % (1e3 * r["latency_p99_s"]))
print(" | " + " | ".join(cells), end="")' "$OUT/tune.json" "$clients")
    done
    echo "$row |"
    stop_server
  done
done
