#!/usr/bin/env bash
# Clients survive overload: a server with --max_queue_size=4 (one worker)
# and 32 transformer-client processes, each sending one golden source at the
# same moment. The queue refuses most of them at first (UNAVAILABLE, counted
# in the server's /metrics); gRPC's retry policy in the client's service
# config resends them with backoff, and every translation must arrive and
# equal the golden greedy text. Also: a request with more texts than the
# queue holds gets INVALID_ARGUMENT naming both limits, and a server whose
# max_texts_per_request exceeds max_queue_size refuses to start.
#
#   tests/integration/retry_test.sh SERVER_BIN CLIENT_BIN REPO_DIR
set -uo pipefail

# shellcheck source=harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
read_arguments "$@"

clients=32
make_scratch retry_test
die() {
  fail "$*"
  [[ -f "${tmp}/server.err" ]] && { echo "--- server stderr (tail) ---"; tail -n 20 "${tmp}/server.err"; }
  finish
}

# 1. A server whose requests could never fit its queue refuses to start.
if out="$("${server_bin}" --model_dir="${model_dir}" --port=0 --metrics_port=0 --http_port=0 \
            --max_queue_size=4 --max_texts_per_request=8 2>&1)"; then
  fail "server started with max_texts_per_request 8 > max_queue_size 4"
elif grep -q -- "--max_texts_per_request (8) must not exceed --max_queue_size (4)" <<<"${out}"; then
  pass "max_texts_per_request 8 > max_queue_size 4: refused to start, naming both"
else
  fail "refused to start, but the message does not name both limits: ${out}"
fi

# 2. The overloaded server.
metrics_port="$(free_port)"
"${server_bin}" --host=127.0.0.1 --port=0 --metrics_port="${metrics_port}" --http_port=0 \
  --model_dir="${model_dir}" --num_workers=1 --intra_threads=1 \
  --max_queue_size=4 --max_texts_per_request=4 \
  >"${tmp}/server.out" 2>"${tmp}/server.err" &
pids+=($!)
port=""
for _ in $(seq 1 3000); do
  port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "${tmp}/server.out")"
  [[ -n "${port}" ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || die "server exited before listening"
  sleep 0.1
done
[[ -n "${port}" ]] || die "server did not print its port within 300 s"
pass "server on 127.0.0.1:${port} with --max_queue_size=4"

"${python}" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
n = int(sys.argv[3])
for i, r in enumerate(rows[:n]):
    open(f"{sys.argv[2]}/source{i}.txt", "w", encoding="utf-8").write(r["source"] + "\n")
    open(f"{sys.argv[2]}/expected{i}.txt", "w", encoding="utf-8").write(r["greedy_text"] + "\n")
' "${model_dir}/golden/translations.jsonl" "${tmp}" "${clients}"

# 3. More texts than the queue holds: INVALID_ARGUMENT naming both limits.
if "${client_bin}" translate --server="127.0.0.1:${port}" --texts_per_request=5 \
     a b c d e >"${tmp}/five.out" 2>"${tmp}/five.err"; then
  fail "5 texts in one request to a queue of 4 succeeded"
elif grep -q "INVALID_ARGUMENT" "${tmp}/five.err" &&
     grep -q "max_texts_per_request 4" "${tmp}/five.err" &&
     grep -q "max_queue_size 4" "${tmp}/five.err"; then
  pass "5 texts in one request: INVALID_ARGUMENT naming max_texts_per_request and max_queue_size"
else
  fail "5 texts in one request: $(cat "${tmp}/five.err")"
fi

unavailable() {
  curl -sf "http://127.0.0.1:${metrics_port}/metrics" | "${python}" -c '
import re, sys
total = 0.0
for line in sys.stdin:
    m = re.match(r"transformer_requests_total\{([^}]*)\}\s+(\S+)", line)
    if m and "code=\"UNAVAILABLE\"" in m.group(1):
        total += float(m.group(2))
print(int(total))'
}
before="$(unavailable)" || die "curl /metrics failed"

# 4. 32 clients, each blocked on its own FIFO until all are running; then
# every FIFO gets its sentence at once.
client_pids=()
for ((i = 0; i < clients; i++)); do
  mkfifo "${tmp}/fifo${i}"
  "${client_bin}" translate --server="127.0.0.1:${port}" --beam_size=1 --max_length=128 \
    <"${tmp}/fifo${i}" >"${tmp}/out${i}.txt" 2>"${tmp}/err${i}.txt" &
  client_pids+=($!)
done
for ((i = 0; i < clients; i++)); do
  exec {fd}>"${tmp}/fifo${i}"
  fds[i]=${fd}
done
for ((i = 0; i < clients; i++)); do
  cat "${tmp}/source${i}.txt" >&"${fds[i]}"
done
for ((i = 0; i < clients; i++)); do
  exec {fds[i]}>&-
done
ok=0
for ((i = 0; i < clients; i++)); do
  if wait "${client_pids[i]}" && cmp -s "${tmp}/out${i}.txt" "${tmp}/expected${i}.txt"; then
    ok=$((ok + 1))
  else
    echo "client ${i}: $(cat "${tmp}/err${i}.txt") got '$(cat "${tmp}/out${i}.txt")'"
  fi
done
if [[ ${ok} -eq ${clients} ]]; then
  pass "${clients} of ${clients} concurrent clients got their golden translation"
else
  fail "${ok} of ${clients} concurrent clients got their golden translation"
fi
after="$(unavailable)" || die "curl /metrics failed"
if ((after - before > 0)); then
  pass "the server refused $((after - before)) attempts with UNAVAILABLE (the clients retried them)"
else
  fail "the server refused no attempt: the queue of 4 was never full, so retries were not exercised"
fi

finish
