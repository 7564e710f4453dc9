#!/usr/bin/env bash
# Client-side load balancing: two transformer-server processes on free
# loopback ports; transformer-client sends the 200 golden sources, one text
# per request, to --server=ipv4:127.0.0.1:P1,127.0.0.1:P2 with
# --lb_policy=round_robin. Every output line must equal the golden greedy
# text, and each server's transformer_requests_total{method="Translate",
# code="OK"} (its own /metrics) must grow by at least a quarter of the
# requests.
#
#   tests/integration/lb_test.sh SERVER_BIN CLIENT_BIN REPO_DIR
set -uo pipefail

# shellcheck source=harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
read_arguments "$@"

make_scratch lb_test

die() {
  fail "$*"
  for i in 1 2; do
    [[ -f "${tmp}/server${i}.err" ]] || continue
    echo "--- server ${i} stderr (tail) ---"; tail -n 20 "${tmp}/server${i}.err"
  done
  finish
}

# transformer_requests_total{method="Translate",code="OK"} of one server's
# /metrics (0 before the first request).
translate_ok() {
  curl -sf "http://127.0.0.1:$1/metrics" | "${python}" -c '
import re, sys
total = 0.0
for line in sys.stdin:
    m = re.match(r"transformer_requests_total\{([^}]*)\}\s+(\S+)", line)
    if m and "method=\"Translate\"" in m.group(1) and "code=\"OK\"" in m.group(1):
        total += float(m.group(2))
print(int(total))'
}

# The help text is read whole first: with pipefail, grep -q exiting at its
# first match would let the client die of SIGPIPE and fail the pipeline.
client_help="$("${client_bin}" translate --help 2>&1)"
if ! grep -q -- '--lb_policy' <<<"${client_help}"; then
  die "${client_bin} has no --lb_policy flag"
fi

# 1. Two servers, --port=0 each; both load and warm up in parallel.
ports=()
metrics_ports=()
for i in 1 2; do
  metrics_ports+=("$(free_port)")
  "${server_bin}" --host=127.0.0.1 --port=0 --metrics_port="${metrics_ports[-1]}" \
    --http_port=0 --model_dir="${model_dir}" --num_workers=1 --intra_threads=1 \
    --max_length_factor=0 \
    >"${tmp}/server${i}.out" 2>"${tmp}/server${i}.err" &
  pids+=($!)
done
for i in 1 2; do
  port=""
  for _ in $(seq 1 3000); do
    port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "${tmp}/server${i}.out")"
    [[ -n "${port}" ]] && break
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || die "server ${i} exited before listening"
    sleep 0.1
  done
  [[ -n "${port}" ]] || die "server ${i} did not print its port within 300 s"
  ports+=("${port}")
done
if [[ "${metrics_ports[0]}" == "${metrics_ports[1]}" ]]; then
  die "both servers got metrics port ${metrics_ports[0]}"
fi
pass "servers on 127.0.0.1:${ports[0]} and :${ports[1]} (metrics ${metrics_ports[0]}, ${metrics_ports[1]})"

before=()
for i in 0 1; do
  value="$(translate_ok "${metrics_ports[$i]}")" || die "curl /metrics of server $((i + 1)) failed"
  before+=("${value}")
done

# 2. The 200 golden sources, one per request, round robin over both (the
# servers run without the length factor, as the golden outputs: line 117
# runs to max_length).
"${python}" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
open(sys.argv[2], "w", encoding="utf-8").write("".join(r["source"] + "\n" for r in rows))
open(sys.argv[3], "w", encoding="utf-8").write("".join(r["greedy_text"] + "\n" for r in rows))
' "${model_dir}/golden/translations.jsonl" "${tmp}/sources.txt" "${tmp}/expected.txt"
num_texts="$(wc -l <"${tmp}/sources.txt")"
[[ "${num_texts}" -eq 200 ]] || die "expected 200 golden sources, found ${num_texts}"
if "${client_bin}" translate --server="ipv4:127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}" \
     --lb_policy=round_robin --texts_per_request=1 --beam_size=1 --max_length=128 \
     <"${tmp}/sources.txt" >"${tmp}/translations.txt" 2>"${tmp}/client.err"; then
  pass "transformer-client translate over ipv4:127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}"
else
  cat "${tmp}/client.err"
  die "transformer-client translate failed"
fi
if cmp -s "${tmp}/translations.txt" "${tmp}/expected.txt"; then
  pass "${num_texts} translations equal the golden greedy outputs"
else
  fail "translations differ from golden ($(wc -l <"${tmp}/translations.txt") lines):"
  diff "${tmp}/expected.txt" "${tmp}/translations.txt" | head -n 10
fi

# 3. Both servers took a fair share (round robin: about half each).
minimum=$((num_texts / 4))
for i in 0 1; do
  after="$(translate_ok "${metrics_ports[$i]}")" || die "curl /metrics of server $((i + 1)) failed"
  grew=$((after - before[i]))
  if [[ ${grew} -ge ${minimum} ]]; then
    pass "server $((i + 1)): Translate OK requests grew by ${grew} >= ${minimum}"
  else
    fail "server $((i + 1)): Translate OK requests grew by ${grew} < ${minimum}"
  fi
done

finish
