#!/usr/bin/env bash
# Many models in one server (issue 23), on the demo repository models/
# (transformer-server --model_repository=models --cache_mb=0, default
# request options). Each round runs, in this order:
#   a) 8 clients on one model (en-de) for DURATION s, then 8 clients
#      alternating between two models (en-de, en-fr: bench --models=A,B): the
#      throughput ratio two / one;
#   c) the quiet model's p50 (1 client on en-fr) alone, then while en-de is
#      flooded by 16 clients (a second bench started first, running longer);
#   d) the eviction thrash: a second server with --model_memory_mb=40 (one
#      31,419,652-byte fp32 model fits), 8 clients alternating between en-de
#      and en-fr: throughput, p50/p99, evictions and loads counted from
#      /metrics, against a)'s alternating run (no budget, the same round);
# and once at the end, on the unbounded server:
#   b) load time of de-en (idle): UnloadModel, wait for UNLOADED, then time
#      LoadModel (the client's wall time); LOADS times, median, and the
#      server's transformer_model_load_seconds over those loads.
#   DURATION=8 REPS=3 LOADS=5 bash scripts/bench_models.sh
# SUMMARY_ONLY=1 prints the tables of the last run's rows again.
# Texts: the 200 golden English sources, one per request (en-de and en-fr
# both read English). Rows go to bench/results/models_runs.jsonl; ratios are
# per round (back to back runs), then the median over rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-8}"
REPS="${REPS:-3}"
LOADS="${LOADS:-5}"
source scripts/bench_common.sh
trap stop_server EXIT
EN_DE=marian-en-de-multi30k
EN_FR=marian-en-fr-multi30k
DE_EN=marian-de-en-multi30k
SOURCES="$OUT/models_sources.txt"
write_golden_sources "$SOURCES"

[[ -n "${SUMMARY_ONLY:-}" ]] || print_machine "$SOURCES"
echo "transformer-server --model_repository=models --cache_mb=0 [--model_memory_mb=40];" \
  "transformer-client bench --input=golden sources --texts_per_request=1" \
  "--duration_s=$DURATION, default options; $REPS round(s); LOADS=$LOADS"

client() { build/bin/transformer-client --server="127.0.0.1:$SERVER_PORT" "$@"; }

# bench NAME [FLAGS...]: one bench run, its report in $OUT/models_NAME.json.
bench() {
  local name="$1"
  shift
  client bench --input="$SOURCES" --texts_per_request=1 \
    --duration_s="$DURATION" --report_json="$OUT/models_$name.json" "$@" \
    > /dev/null 2>&1 || true
}

# metric SERIES: the sum of the series on the running server's /metrics.
metric() {
  curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" |
    awk -v name="$1" '$1 == name || index($1, name "{") == 1 {s += $2}
                      END {printf "%.9g\n", s + 0}'
}

# model_state NAME: its state in ListModels (READY, UNLOADED, ...).
model_state() {
  client models --json | /usr/bin/python3 -c '
import json, sys
for m in json.load(sys.stdin)["models"]:
    if m["name"] == sys.argv[1]:
        print(m["state"].replace("MODEL_STATE_", ""))' "$1"
}

# minus A B: A - B, as a JSON number.
minus() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.9g\n", a - b}'; }

ROWS="$OUT/models_runs.jsonl"
if [[ -n "${SUMMARY_ONLY:-}" ]]; then
  REPS=0
else
  : > "$ROWS"
fi
# row KIND REP JSON-FILE [key=value...]: a bench report as one row.
row() {
  /usr/bin/python3 -c '
import json, sys
run = json.load(open(sys.argv[3]))
run.update(kind=sys.argv[1], rep=int(sys.argv[2]))
for kv in sys.argv[4:]:
    k, v = kv.split("=", 1)
    run[k] = float(v)
print(json.dumps(run))' "$@" >> "$ROWS"
}

for rep in $(seq "$REPS"); do
  echo "bench_models: round $rep: no budget" >&2
  start_server "$OUT/models_server.log" --model_repository=models --cache_mb=0
  bench one --concurrency=8 --model="$EN_DE"
  row one "$rep" "$OUT/models_one.json"
  bench two --concurrency=8 --models="$EN_DE,$EN_FR"
  row two "$rep" "$OUT/models_two.json"
  bench quiet_alone --concurrency=1 --model="$EN_FR"
  row quiet_alone "$rep" "$OUT/models_quiet_alone.json"
  # The flood starts first and ends after the quiet run.
  client bench --input="$SOURCES" --texts_per_request=1 \
    --duration_s=$((DURATION + 3)) --concurrency=16 --model="$EN_DE" \
    --report_json="$OUT/models_flood.json" > /dev/null 2>&1 &
  flood=$!
  sleep 1
  bench quiet_flooded --concurrency=1 --model="$EN_FR"
  wait "$flood" || true
  row quiet_flooded "$rep" "$OUT/models_quiet_flooded.json"
  row flood "$rep" "$OUT/models_flood.json"
  if ((rep == REPS)); then
    echo "bench_models: load time of $DE_EN" >&2
    sum0=$(metric transformer_model_load_seconds_sum)
    count0=$(metric transformer_model_load_seconds_count)
    for load in $(seq "$LOADS"); do
      client models unload "$DE_EN" > /dev/null
      for _ in $(seq 100); do
        [[ "$(model_state "$DE_EN")" == UNLOADED ]] && break
        sleep 0.1
      done
      t0=$(date +%s.%N)
      client models load "$DE_EN" > /dev/null
      t1=$(date +%s.%N)
      echo "{\"kind\": \"load\", \"load\": $load, \"seconds\": $(minus "$t1" "$t0")}" >> "$ROWS"
    done
    sum1=$(metric transformer_model_load_seconds_sum)
    count1=$(metric transformer_model_load_seconds_count)
    echo "{\"kind\": \"load_metric\", \"loads\": $(minus "$count1" "$count0"), \"seconds_sum\": $(minus "$sum1" "$sum0")}" >> "$ROWS"
  fi
  stop_server

  echo "bench_models: round $rep: --model_memory_mb=40" >&2
  start_server "$OUT/models_server_budget.log" --model_repository=models \
    --cache_mb=0 --model_memory_mb=40 --load_models="$EN_DE"
  evictions0=$(metric transformer_model_evictions_total)
  loads0=$(metric transformer_model_loads_total)
  bench thrash --concurrency=8 --models="$EN_DE,$EN_FR"
  evictions1=$(metric transformer_model_evictions_total)
  loads1=$(metric transformer_model_loads_total)
  row thrash "$rep" "$OUT/models_thrash.json" \
    "evictions=$(minus "$evictions1" "$evictions0")" \
    "loads=$(minus "$loads1" "$loads0")"
  stop_server
done

/usr/bin/python3 - "$ROWS" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
med = statistics.median
reps = sorted({r["rep"] for r in rows if "rep" in r})
by = {(r["kind"], r["rep"]): r for r in rows if "rep" in r}

def series(kind, field, scale=1.0):
    return [by[(kind, rep)][field] * scale for rep in reps]

def cell(values, fmt):
    return (fmt % med(values)) + " (" + ", ".join(fmt % v for v in values) + ")"

def ratio(kind_a, kind_b, field):
    values = [by[(kind_a, rep)][field] / by[(kind_b, rep)][field] for rep in reps]
    return cell(values, "%.2f")

def codes(kind):
    total = {}
    for rep in reps:
        for code, n in by[(kind, rep)]["codes"].items():
            total[code] = total.get(code, 0) + n
    return " ".join(f"{c} {n}" for c, n in sorted(total.items()))

print("Medians over rounds (each round's value in brackets).\n")
print("| case | sentences/s | p50 ms | p99 ms | status codes |")
print("|---|---|---|---|---|")
names = {"one": "a) 8 clients, one model (en-de)",
         "two": "a) 8 clients alternating en-de / en-fr, no budget",
         "quiet_alone": "c) quiet en-fr, 1 client, alone",
         "quiet_flooded": "c) quiet en-fr, 1 client, en-de flooded",
         "flood": "c) the flood: 16 clients on en-de",
         "thrash": "d) 8 clients alternating, --model_memory_mb=40"}
for kind, name in names.items():
    print(f"| {name} | {cell(series(kind, 'sentences_per_second'), '%.1f')} | "
          f"{cell(series(kind, 'latency_p50_s', 1e3), '%.0f')} | "
          f"{cell(series(kind, 'latency_p99_s', 1e3), '%.0f')} | {codes(kind)} |")
print()
print("| ratio (per round; median) | value |")
print("|---|---|")
print(f"| a) two models / one model, sentences/s | {ratio('two', 'one', 'sentences_per_second')} |")
print(f"| c) quiet p50 flooded / alone | {ratio('quiet_flooded', 'quiet_alone', 'latency_p50_s')} |")
print(f"| c) quiet p50 flooded / the flood's own p50 | {ratio('quiet_flooded', 'flood', 'latency_p50_s')} |")
print(f"| d) budget / no budget (alternating), sentences/s | {ratio('thrash', 'two', 'sentences_per_second')} |")
print(f"| d) budget / no budget (alternating), p50 | {ratio('thrash', 'two', 'latency_p50_s')} |")
print(f"| d) budget / no budget (alternating), p99 | {ratio('thrash', 'two', 'latency_p99_s')} |")
print(f"| d) evictions in the budget run | {cell(series('thrash', 'evictions'), '%.0f')} |")
print(f"| d) loads in the budget run | {cell(series('thrash', 'loads'), '%.0f')} |")
thrash_requests = series('thrash', 'requests')
evictions = series('thrash', 'evictions')
print(f"| d) evictions per request | {cell([e / max(1, n) for e, n in zip(evictions, thrash_requests)], '%.2f')} |")
loads = [r["seconds"] for r in rows if r["kind"] == "load"]
metric = [r for r in rows if r["kind"] == "load_metric"]
if loads:
    print(f"| b) LoadModel of de-en after UnloadModel, client wall ms | "
          f"{med(loads) * 1e3:.0f} (" + ", ".join("%.0f" % (s * 1e3) for s in loads) + ") |")
if metric and metric[0]["loads"] > 0:
    m = metric[0]
    print(f"| b) transformer_model_load_seconds mean over those {m['loads']:.0f} loads, ms | "
          f"{m['seconds_sum'] / m['loads'] * 1e3:.0f} |")
EOF
