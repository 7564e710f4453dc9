#!/usr/bin/env bash
# Static vs continuous scheduling under load (issue 13). For each
# input, client count and repetition it runs the modes one after the other,
# each against a fresh server (`--scheduling=$mode`, the demo model, default
# server and request options: beam 4, max_length 512), and reports
# sentences/s, latency p50/p99, time to first token (if `transformer-client
# bench --stream` exists) and the server's peak RSS (VmHWM), medians over REPS.
#   DURATION=20 REPS=1 MODES="static continuous" CLIENTS="1 64" \
#     INPUTS="golden mixed repeated" bash scripts/bench_serving.sh
# Inputs, one text per request:
#   golden    the 200 golden sources in turn;
#   mixed     the same, every 20th request a paragraph of 4 consecutive
#             sources joined (transformer-client bench --paragraph_every=20);
#   repeated  the first golden source every time.
# CLIENTS entries are closed-loop client counts, or R/s for an open loop:
# requests arrive at R per second (Poisson; transformer-client bench
# --request_rate=R, 512 sending threads) whatever the answers' pace, as real
# traffic does. MODES=default passes no --scheduling flag (the server's
# default); continuous:N also passes --max_active_sequences=N (e.g.
# MODES="static continuous:16 continuous:64" compares two bounds in one run).
# --cache_mb=0 on every server: the translation cache would otherwise answer
# the inputs' repeats and measure itself. SERVER_FLAGS adds flags to every
# server. Time to first token comes from a second bench of the same case with
# --stream (TranslateStream) and STREAM_FLAGS (default none: beam 4, whose
# first message is the finished text; STREAM_FLAGS=--beam_size=1 streams a
# token per step). Rows go to bench/results/serving_runs.jsonl. For mixed
# input a last table gives the sentence and paragraph requests' latency apart.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-20}"
REPS="${REPS:-1}"
MODES="${MODES:-static continuous}"
CLIENTS="${CLIENTS:-1 64}"
INPUTS="${INPUTS:-golden mixed repeated}"
SERVER_FLAGS="${SERVER_FLAGS:-}"
STREAM_FLAGS="${STREAM_FLAGS:-}"
source scripts/bench_common.sh
trap stop_server EXIT
write_golden_sources "$OUT/serving_golden.txt"
head -1 "$OUT/serving_golden.txt" > "$OUT/serving_repeated.txt"

# Time to first token needs TranslateStream and `bench --stream`.
STREAM=0
if grep -q -- '--stream' <<<"$(build/bin/transformer-client bench --help 2>&1)"; then
  STREAM=1
fi

print_machine "$OUT/serving_golden.txt"
echo "transformer-client bench --concurrency=1|64 --duration_s=$DURATION" \
  "--texts_per_request=1 (mixed: --paragraph_every=20), default options;" \
  "a fresh server per mode and case: transformer-server --scheduling=MODE" \
  "--cache_mb=0 $SERVER_FLAGS; $REPS round(s);" \
  "$( ((STREAM)) && echo "TTFT: bench --stream $STREAM_FLAGS" || echo "no bench --stream")"

# run_case MODE INPUT CLIENTS REP: one server, one bench (and one --stream
# bench if available), one row of serving_runs.jsonl.
run_case() {
  local mode="$1" input="$2" clients="$3" rep="$4"
  local flags=(--cache_mb=0)
  [[ "$mode" != default ]] && flags+=("--scheduling=${mode%%:*}")
  [[ "$mode" == *:* ]] && flags+=("--max_active_sequences=${mode#*:}")
  # shellcheck disable=SC2206
  flags+=($SERVER_FLAGS)
  local file="$OUT/serving_golden.txt" bench=()
  [[ "$input" == repeated ]] && file="$OUT/serving_repeated.txt"
  [[ "$input" == mixed ]] && bench+=(--paragraph_every=20)
  local concurrency="$clients"
  if [[ "$clients" == */s ]]; then  # open loop at that many requests/s
    concurrency=512
    bench+=("--request_rate=${clients%/s}")
  fi
  echo "bench_serving: round $rep, $input, $clients clients, $mode" >&2
  start_server "$OUT/serving_server.log" "${flags[@]}"
  build/bin/transformer-client bench --server="127.0.0.1:$SERVER_PORT" \
    --input="$file" --concurrency="$concurrency" --duration_s="$DURATION" \
    --texts_per_request=1 "${bench[@]}" \
    --report_json="$OUT/serving_run.json" > /dev/null 2>&1 || true
  echo '{}' > "$OUT/serving_stream.json"
  if ((STREAM)); then
    # shellcheck disable=SC2086
    build/bin/transformer-client bench --stream \
      --server="127.0.0.1:$SERVER_PORT" --input="$file" \
      --concurrency="$concurrency" --duration_s="$DURATION" \
      --texts_per_request=1 "${bench[@]}" $STREAM_FLAGS \
      --report_json="$OUT/serving_stream.json" > /dev/null 2>&1 || true
  fi
  local hwm
  hwm=$(proc_status_kib "$SERVER_PID" VmHWM)
  stop_server
  /usr/bin/python3 -c '
import json, sys
run = json.load(open(sys.argv[1]))
run["stream"] = json.load(open(sys.argv[2]))
clients = int(sys.argv[5]) if sys.argv[5].isdigit() else sys.argv[5]
run.update(mode=sys.argv[3], input=sys.argv[4], clients=clients,
           rep=int(sys.argv[6]), server_vmhwm_kib=int(sys.argv[7]))
print(json.dumps(run))' "$OUT/serving_run.json" "$OUT/serving_stream.json" \
    "$mode" "$input" "$clients" "$rep" "$hwm" >> "$OUT/serving_runs.jsonl"
}

: > "$OUT/serving_runs.jsonl"
for rep in $(seq "$REPS"); do
  for input in $INPUTS; do
    for clients in $CLIENTS; do
      for mode in $MODES; do
        run_case "$mode" "$input" "$clients" "$rep"
      done
    done
  done
done

/usr/bin/python3 - "$OUT/serving_runs.jsonl" "$STREAM" "$MODES" <<'EOF'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
stream, modes = sys.argv[2] == "1", sys.argv[3].split()
med = statistics.median

def ttft(r, q):
    # The --stream report's time to first token (time_to_first_token_p50_s,
    # time_to_first_token_p99_s).
    return r["stream"].get(f"time_to_first_token_{q}_s")

def cell(values, fmt, scale=1.0):
    values = [v for v in values if v is not None]
    return fmt % (med(values) * scale) if values else "n/a"

print("| input | clients | mode | sentences/s (rounds) | p50 ms | p99 ms | "
      "TTFT p50 ms | TTFT p99 ms | server peak RSS MiB | status codes |")
print("|---|---|---|---|---|---|---|---|---|---|")
keys = []
for r in runs:
    if (r["input"], r["clients"], r["mode"]) not in keys:
        keys.append((r["input"], r["clients"], r["mode"]))
rates = {}
for key in keys:
    mine = [r for r in runs if (r["input"], r["clients"], r["mode"]) == key]
    sps = med(r["sentences_per_second"] for r in mine)
    p99 = med(r["latency_p99_s"] for r in mine)
    rates[key] = (sps, p99)
    rounds = ", ".join("%.1f" % r["sentences_per_second"] for r in mine)
    codes = {}
    for r in mine:
        for code, n in r["codes"].items():
            codes[code] = codes.get(code, 0) + n
    if stream:
        t50 = cell([ttft(r, "p50") for r in mine], "%.0f", 1e3)
        t99 = cell([ttft(r, "p99") for r in mine], "%.0f", 1e3)
    else:
        t50 = t99 = "n/a (no --stream)"
    print(f"| {key[0]} | {key[1]} | {key[2]} | {sps:.1f} ({rounds}) | "
          f"{med(r['latency_p50_s'] for r in mine) * 1e3:.0f} | {p99 * 1e3:.0f} | "
          f"{t50} | {t99} | "
          f"{med(r['server_vmhwm_kib'] for r in mine) / 1024:.0f} | " +
          " ".join(f"{c} {n}" for c, n in sorted(codes.items())) + " |")

if "static" in modes and len(modes) > 1:
    # Ratios of medians, and the median of each round's ratio: the two modes
    # of a round ran back to back, so a round's ratio cancels load that
    # other processes put on the machine during that round.
    print()
    print("| input | clients | mode | mode / static sentences/s: of medians "
          "(per round; median) | mode / static p99: of medians (per "
          "round; median) |")
    print("|---|---|---|---|---|")
    by_round = {(r["rep"], r["input"], r["clients"], r["mode"]): r for r in runs}
    for (inp, clients, mode) in keys:
        if mode == "static" or (inp, clients, "static") not in rates:
            continue
        s, c = rates[(inp, clients, "static")], rates[(inp, clients, mode)]
        cells = []
        for field in ("sentences_per_second", "latency_p99_s"):
            ratios = [by_round[(rep, inp, clients, mode)][field] /
                      by_round[(rep, inp, clients, "static")][field]
                      for rep in sorted({r["rep"] for r in runs})
                      if (rep, inp, clients, mode) in by_round
                      and (rep, inp, clients, "static") in by_round]
            cells.append(", ".join("%.2f" % x for x in ratios) +
                         "; %.2fx" % med(ratios))
        print(f"| {inp} | {clients} | {mode} | {c[0] / s[0]:.2f}x "
              f"({cells[0]}) | {c[1] / s[1]:.2f}x ({cells[1]}) |")

# Mixed input: latency of the sentence requests and of the paragraph requests
# apart (the overall p99 is mostly the paragraphs', 1 request in 20).
split = [key for key in keys
         if all("sentence_latency_p99_s" in r for r in runs
                if (r["input"], r["clients"], r["mode"]) == key)]
if split:
    print()
    print("| input | clients | mode | sentence requests p50 / p99 ms | "
          "paragraph requests p50 / p99 ms |")
    print("|---|---|---|---|---|")
    for key in split:
        mine = [r for r in runs if (r["input"], r["clients"], r["mode"]) == key]
        ms = lambda name: med(r[name] for r in mine) * 1e3
        print(f"| {key[0]} | {key[1]} | {key[2]} | "
              f"{ms('sentence_latency_p50_s'):.0f} / "
              f"{ms('sentence_latency_p99_s'):.0f} | "
              f"{ms('paragraph_latency_p50_s'):.0f} / "
              f"{ms('paragraph_latency_p99_s'):.0f} |")
EOF
