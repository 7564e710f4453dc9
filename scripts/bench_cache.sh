#!/usr/bin/env bash
# The translation cache under load (issue 17): 64 closed-loop clients, one
# golden source per request, default options (beam 4), where half the
# requests repeat an earlier one (transformer-client bench
# --repeat_fraction=0.5). Each round starts a fresh server with the cache off
# (--cache_mb=0) and then one with it on (--cache_mb=64), so both see the
# same requests from a cold start; prints every round and the medians as
# Markdown (bench/README.md keeps the table).
#   REPS=5 REQUESTS=400 CLIENTS=64 bash scripts/bench_cache.sh
# REQUESTS=400 over the 200 golden sources: ~200 fresh requests (each source
# about once) and ~200 repeats.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS="${REPS:-5}"
REQUESTS="${REQUESTS:-400}"
CLIENTS="${CLIENTS:-64}"
source scripts/bench_common.sh
trap stop_server EXIT
write_golden_sources "$OUT/cache_sources.txt"

# Runs one bench against a fresh server with --cache_mb=$1; appends the
# report (with the server's cache counters) to $OUT/cache_runs.jsonl.
run_once() {
  local cache_mb="$1"
  start_server "$OUT/cache_server.log" --cache_mb="$cache_mb"
  build/bin/transformer-client bench --server="127.0.0.1:$SERVER_PORT" \
    --input="$OUT/cache_sources.txt" --concurrency="$CLIENTS" \
    --requests="$REQUESTS" --texts_per_request=1 --repeat_fraction=0.5 \
    --report_json="$OUT/cache_run.json" > /dev/null 2>&1
  curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" > "$OUT/cache_metrics.txt"
  stop_server
  /usr/bin/python3 -c '
import json, sys
report = json.load(open(sys.argv[1]))
report["cache_mb"] = int(sys.argv[3])
for line in open(sys.argv[2]):
    for name in ("transformer_cache_hits_total", "transformer_cache_misses_total"):
        if line.startswith(name + " "):
            report[name] = float(line.split()[-1])
print(json.dumps(report))' "$OUT/cache_run.json" "$OUT/cache_metrics.txt" \
    "$cache_mb" >> "$OUT/cache_runs.jsonl"
}

: > "$OUT/cache_runs.jsonl"
for rep in $(seq "$REPS"); do
  run_once 0
  run_once 64
done

/usr/bin/python3 - "$OUT/cache_runs.jsonl" "$REPS" "$REQUESTS" "$CLIENTS" <<'EOF'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
print(f"{sys.argv[2]} rounds of {sys.argv[3]} requests, {sys.argv[4]} clients, "
      "one golden source per request, default options (beam 4), half repeats")
print("| cache | sentences/s | latency p50 ms | latency p99 ms | cache hits / misses | status codes |")
print("|---|---|---|---|---|---|")
for mb in (0, 64):
    mine = [r for r in runs if r["cache_mb"] == mb]
    sps = statistics.median(r["sentences_per_second"] for r in mine)
    p50 = statistics.median(r["latency_p50_s"] for r in mine) * 1e3
    p99 = statistics.median(r["latency_p99_s"] for r in mine) * 1e3
    hits = statistics.median(r.get("transformer_cache_hits_total", 0) for r in mine)
    misses = statistics.median(r.get("transformer_cache_misses_total", 0) for r in mine)
    codes = {}
    for r in mine:
        for code, n in r["codes"].items():
            codes[code] = codes.get(code, 0) + n
    label = "off (--cache_mb=0)" if mb == 0 else "on (--cache_mb=64)"
    rounds = ", ".join("%.1f" % r["sentences_per_second"] for r in mine)
    print(f"| {label} | {sps:.1f} (rounds: {rounds}) | {p50:.0f} | {p99:.0f} | "
          f"{hits:.0f} / {misses:.0f} | " +
          " ".join(f"{c} {n}" for c, n in sorted(codes.items())) + " |")
EOF
