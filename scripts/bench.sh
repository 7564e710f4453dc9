#!/usr/bin/env bash
# Runs the engine (build/bin/transformer-bench) and the PyTorch baseline
# (bench/torch_baseline.py) side by side on this machine and prints the
# ratios (issue 7): the base-size OPUS-MT skeleton with synthesized weights
# (source length 20, exactly 32 output tokens) at batch 1 and 32, greedy and
# beam 4; then the demo model on its golden sentences (BLEU against the
# references). Results go to bench/results/ as JSON and a Markdown table.
#   REPEAT=9 THREADS=2 COMPUTE_TYPES="fp32 bf16" bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT="${REPEAT:-5}"
THREADS="${THREADS:-2}"
COMPUTE_TYPES="${COMPUTE_TYPES:-fp32 bf16}"
SKELETON="${SKELETON:-tests/data/opus-mt-zh-en-skeleton}"
DEMO=models/marian-en-de-multi30k
OUT=bench/results
PY=/usr/bin/python3
mkdir -p "$OUT"
[[ -x build/bin/transformer-bench ]] || bash scripts/build.sh
# The faster OpenBLAS build for PyTorch, as a user would pick it.
OPENBLAS_OMP=/usr/lib/x86_64-linux-gnu/openblas-openmp
TORCH_ENV=()
[[ -d "$OPENBLAS_OMP" ]] && TORCH_ENV=(env "LD_LIBRARY_PATH=$OPENBLAS_OMP")

run_case() {  # name, common args...
  local name="$1"; shift
  "${TORCH_ENV[@]}" "$PY" bench/torch_baseline.py "$@" --threads="$THREADS" \
    --repeat="$REPEAT" --json="$OUT/$name.torch.json" > /dev/null
  for ct in $COMPUTE_TYPES; do
    build/bin/transformer-bench "$@" --threads="$THREADS" --repeat="$REPEAT" \
      --compute_type="$ct" --json="$OUT/$name.$ct.json" > /dev/null
  done
}

for batch in 32 1; do
  for beam in 1 4; do
    echo "bench: skeleton batch $batch beam $beam" >&2
    run_case "skeleton_b${batch}_beam${beam}" --model_dir="$SKELETON" \
      --synthetic_weights --batch_size="$batch" --beam_size="$beam" \
      --num_sentences="$batch" --source_length=20 --output_length=32
  done
done

# Demo model: the golden sentences (the 1000-line test set is not shipped).
"$PY" - "$DEMO/golden/translations.jsonl" "$OUT" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
open(sys.argv[2] + "/demo_sources.txt", "w").write("".join(r["source"] + "\n" for r in rows))
open(sys.argv[2] + "/demo_references.txt", "w").write("".join(r["reference"] + "\n" for r in rows))
PYEOF
echo "bench: demo model" >&2
"${TORCH_ENV[@]}" "$PY" bench/torch_baseline.py --model_dir="$DEMO" \
  --input="$OUT/demo_sources.txt" --batch_size=32 --beam_size=1 \
  --threads="$THREADS" --repeat="$REPEAT" --json="$OUT/demo.torch.json" \
  --output="$OUT/demo.torch.txt" > /dev/null
for ct in $COMPUTE_TYPES; do
  build/bin/transformer-bench --model_dir="$DEMO" --input="$OUT/demo_sources.txt" \
    --batch_size=32 --beam_size=1 --threads="$THREADS" --repeat="$REPEAT" \
    --compute_type="$ct" --json="$OUT/demo.$ct.json" --output="$OUT/demo.$ct.txt" > /dev/null
done
# The same with every hypothesis's cross-attention recorded (issue 14).
build/bin/transformer-bench --model_dir="$DEMO" --input="$OUT/demo_sources.txt" \
  --batch_size=32 --beam_size=1 --threads="$THREADS" --repeat="$REPEAT" \
  --return_attention --json="$OUT/demo.fp32_attention.json" \
  --output="$OUT/demo.fp32_attention.txt" > /dev/null

"$PY" - "$OUT" "$COMPUTE_TYPES" <<'PYEOF'
import json, os, subprocess, sys
out, cts = sys.argv[1], sys.argv[2].split()
def load(name):
    return json.load(open(os.path.join(out, name)))
first = load(f"skeleton_b32_beam1.{cts[0]}.json")
lines = [f"CPU: {first['cpu']}, oneDNN ISA: {first['isa']}, "
         f"kernels: {first.get('kernel_isa', '?')}, threads: {first['threads']}, "
         f"median of {first['repeat']} runs", "",
         "| case | PyTorch tok/s | " + " | ".join(f"{c} tok/s (x PyTorch)" for c in cts)
         + " | " + " | ".join(f"{c} peak RSS MiB" for c in cts) + " |",
         "|---|---|" + "---|" * (2 * len(cts))]
for batch in (32, 1):
    for beam in (1, 4):
        name = f"skeleton_b{batch}_beam{beam}"
        t = load(f"{name}.torch.json")["target_tokens_per_second"]
        cells = []
        for c in cts:
            e = load(f"{name}.{c}.json")["target_tokens_per_second"]
            cells.append(f"{e:.0f} ({e / t:.2f}x)")
        rss = [f"{load(f'{name}.{c}.json')['peak_rss_mib']:.0f}" for c in cts]
        lines.append(f"| base size, {'greedy' if beam == 1 else f'beam {beam}'}, batch {batch} "
                     f"| {t:.0f} | " + " | ".join(cells) + " | " + " | ".join(rss) + " |")
lines += ["", "| demo model, golden sentences, batch 32, greedy | sentences/s | BLEU |", "|---|---|---|"]
ref = os.path.join(out, "demo_references.txt")
names = {"torch": "PyTorch", "fp32_attention": "fp32, return_attention"}
for c in ["torch"] + cts + ["fp32_attention"]:
    j = load(f"demo.{c}.json")
    bleu = subprocess.run(["/usr/bin/python3", "bench/bleu.py", os.path.join(out, f"demo.{c}.txt"), ref],
                          capture_output=True, text=True).stdout.strip()
    lines.append(f"| {names.get(c, c)} | {j['sentences_per_second']:.1f} | {bleu} |")
text = "\n".join(lines)
print(text)
open(os.path.join(out, "summary.md"), "w").write(text + "\n")
PYEOF
