#!/usr/bin/env bash
# The memory one request adds to a fresh server (issue 13): 32 texts in ONE
# request at beam 4 with max_length 64 against max_length 512, read from
# /proc/PID/status (VmRSS and VmHWM) once the server listens (loaded, warmed
# up) and after the answer.
#   demo       the demo model, the first 32 golden sources, their own output
#              lengths;
#   base size  a synthetic model of the OPUS-MT skeleton's shape (d_model 512,
#              6+6 layers, vocab 65,001; tests/integration/synthetic_model)
#              whose final_logits_bias favours </s> by 30, with min_length 32:
#              every output is exactly 32 tokens (</s> included), so only
#              max_length differs between the two requests.
# Requests go through the HTTP/JSON gateway (min_length has no client flag).
# Lengths alternate within each round; medians over REPS rounds.
#   REPS=3 LENGTHS="64 512" MODELS="demo base" SERVER_FLAGS="" \
#     bash scripts/bench_kv_memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPS="${REPS:-3}"
LENGTHS="${LENGTHS:-64 512}"
MODELS="${MODELS:-demo base}"
SERVER_FLAGS="${SERVER_FLAGS:-}"
SKELETON=tests/data/opus-mt-zh-en-skeleton
source scripts/bench_common.sh
trap stop_server EXIT
write_golden_sources "$OUT/kv_golden.txt"
head -32 "$OUT/kv_golden.txt" > "$OUT/kv_sources.txt"

BASE_DIR="$OUT/base_synthetic_eos"
if [[ " $MODELS " == *" base "* && ! -f "$BASE_DIR/model.safetensors" ]]; then
  SYNTHETIC="$(find build -type f -name synthetic_model -perm -u+x | head -1)"
  [[ -n "$SYNTHETIC" ]] || { echo "build synthetic_model first (TS_BUILD_TESTS=ON)" >&2; exit 1; }
  "$SYNTHETIC" "$SKELETON" "$BASE_DIR.tmp"
  # final_logits_bias[eos] = 30 in place (safetensors: u64 header length,
  # JSON header, data; F32 little-endian).
  /usr/bin/python3 - "$BASE_DIR.tmp" <<'EOF'
import json, struct, sys
d = sys.argv[1]
eos = json.load(open(d + "/config.json"))["eos_token_id"]
with open(d + "/model.safetensors", "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    t = json.loads(f.read(n))["final_logits_bias"]
    assert t["dtype"] == "F32", t
    f.seek(8 + n + t["data_offsets"][0] + 4 * eos)
    f.write(struct.pack("<f", 30.0))
EOF
  mv "$BASE_DIR.tmp" "$BASE_DIR"
fi

print_machine "$OUT/kv_golden.txt"
echo "one request of 32 texts, beam 4, max_length in {$LENGTHS}, a fresh" \
  "server each (defaults, --cache_mb=0 $SERVER_FLAGS); $REPS round(s)"

# measure MODEL LENGTH REP: one fresh server, one request, one row.
measure() {
  local model="$1" length="$2" rep="$3" dir="$DEMO" min_length=0
  if [[ "$model" == base ]]; then
    dir="$BASE_DIR"
    min_length=32
  fi
  echo "bench_kv_memory: round $rep, $model, max_length $length" >&2
  local http
  http=$(free_port)
  # shellcheck disable=SC2086
  MODEL_DIR="$dir" start_server "$OUT/kv_server.log" --cache_mb=0 \
    --http_port="$http" --http_address=127.0.0.1 $SERVER_FLAGS
  local rss0 hwm0 rss1 hwm1
  rss0=$(proc_status_kib "$SERVER_PID" VmRSS)
  hwm0=$(proc_status_kib "$SERVER_PID" VmHWM)
  /usr/bin/python3 - "$http" "$OUT/kv_sources.txt" "$length" "$min_length" \
    > "$OUT/kv_lengths.json" <<'EOF'
import json, sys, urllib.request
port, sources, length, min_length = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
texts = [line.rstrip("\n") for line in open(sources)]
options = {"beamSize": 4, "maxLength": length}
if min_length:
    options["minLength"] = min_length
request = urllib.request.Request(
    f"http://127.0.0.1:{port}/v1/translate",
    data=json.dumps({"texts": texts, "options": options}).encode(),
    headers={"Content-Type": "application/json"})
response = json.loads(urllib.request.urlopen(request, timeout=1800).read())
lengths = [len(t["hypotheses"][0].get("tokenIds", [])) for t in response["translations"]]
assert len(lengths) == len(texts), len(lengths)
print(json.dumps({"output_tokens_mean": sum(lengths) / len(lengths),
                  "output_tokens_max": max(lengths)}))
EOF
  rss1=$(proc_status_kib "$SERVER_PID" VmRSS)
  hwm1=$(proc_status_kib "$SERVER_PID" VmHWM)
  stop_server
  /usr/bin/python3 -c '
import json, sys
row = json.load(open(sys.argv[1]))
keys = ("model", "max_length", "rep", "rss_before_kib", "hwm_before_kib",
        "rss_after_kib", "hwm_after_kib")
row.update(zip(keys, [sys.argv[2]] + [int(v) for v in sys.argv[3:]]))
print(json.dumps(row))' "$OUT/kv_lengths.json" "$model" "$length" "$rep" \
    "$rss0" "$hwm0" "$rss1" "$hwm1" >> "$OUT/kv_runs.jsonl"
}

: > "$OUT/kv_runs.jsonl"
for rep in $(seq "$REPS"); do
  for model in $MODELS; do
    for length in $LENGTHS; do
      measure "$model" "$length" "$rep"
    done
  done
done

/usr/bin/python3 - "$OUT/kv_runs.jsonl" <<'EOF'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
med = statistics.median
mib = lambda kib: kib / 1024
print("| model | max_length | output tokens mean / max | RSS before MiB | "
      "peak added MiB (VmHWM after - VmRSS before; rounds) | "
      "RSS added MiB (VmRSS after - before) |")
print("|---|---|---|---|---|---|")
added = {}
for model in dict.fromkeys(r["model"] for r in runs):
    for length in dict.fromkeys(r["max_length"] for r in runs):
        mine = [r for r in runs if r["model"] == model and r["max_length"] == length]
        if not mine:
            continue
        peaks = [mib(r["hwm_after_kib"] - r["rss_before_kib"]) for r in mine]
        added[(model, length)] = med(peaks)
        print(f"| {model} | {length} | {med(r['output_tokens_mean'] for r in mine):.1f} / "
              f"{max(r['output_tokens_max'] for r in mine)} | "
              f"{med(mib(r['rss_before_kib']) for r in mine):.0f} | "
              f"{med(peaks):.0f} ({', '.join('%.0f' % p for p in peaks)}) | "
              f"{med(mib(r['rss_after_kib'] - r['rss_before_kib']) for r in mine):.0f} |")
for model in dict.fromkeys(r["model"] for r in runs):
    lengths = sorted(l for (m, l) in added if m == model)
    if len(lengths) >= 2 and added[(model, lengths[0])] > 0:
        print(f"\n{model}: peak added at max_length {lengths[-1]} / {lengths[0]} = "
              f"{added[(model, lengths[-1])] / added[(model, lengths[0])]:.2f}x")
EOF
