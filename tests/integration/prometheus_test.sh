#!/usr/bin/env bash
# End to end with a real Prometheus: transformer-server on free loopback
# ports, Debian's `prometheus` scraping it every second with the scrape config
# of deploy/prometheus/prometheus.yml (target rewritten to the test server),
# 30 Translate requests from transformer-client, then Prometheus' HTTP API must
# show them in transformer_requests_total and
# transformer_request_duration_seconds. Skips (exit 0) without `prometheus`.
#
#   tests/integration/prometheus_test.sh SERVER_BIN CLIENT_BIN REPO_DIR
set -uo pipefail

# shellcheck source=harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
read_arguments "$@"
num_requests=30

if ! command -v prometheus >/dev/null; then
  echo "SKIP: prometheus is not installed (Debian package prometheus)"
  # CI runs every check: there a skip is a failure.
  [[ "${CI:-}" == true ]] && exit 1
  exit 0
fi

tmp="$(mktemp -d /tmp/ts_prometheus_test.XXXXXX)"
server_pid=""
prometheus_pid=""
cleanup() {
  [[ -n "${server_pid}" ]] && kill -9 "${server_pid}" 2>/dev/null && wait "${server_pid}" 2>/dev/null
  [[ -n "${prometheus_pid}" ]] && kill -9 "${prometheus_pid}" 2>/dev/null && wait "${prometheus_pid}" 2>/dev/null
  rm -rf "${tmp}"
}
trap cleanup EXIT

die() {
  fail "$*"
  echo "--- server stderr (tail) ---"; tail -n 30 "${tmp}/server.err" 2>/dev/null
  echo "--- prometheus log (tail) ---"; tail -n 30 "${tmp}/prometheus.log" 2>/dev/null
  finish
}

# 1. The server, with --port=0: it prints the port once the model is warm.
metrics_port="$(free_port)"
"${server_bin}" --host=127.0.0.1 --port=0 --metrics_port="${metrics_port}" \
  --http_port=0 --model_dir="${model_dir}" --num_workers=1 --intra_threads=1 \
  >"${tmp}/server.out" 2>"${tmp}/server.err" &
server_pid=$!
port=""
for _ in $(seq 1 3000); do
  port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "${tmp}/server.out")"
  [[ -n "${port}" ]] && break
  kill -0 "${server_pid}" 2>/dev/null || die "server exited before listening"
  sleep 0.1
done
[[ -n "${port}" ]] || die "server did not print its port within 300 s"
pass "server listening on 127.0.0.1:${port}, metrics on ${metrics_port}"

# 2. Prometheus with deploy/prometheus/prometheus.yml, rewritten for the test.
deploy_config="${repo_dir}/deploy/prometheus/prometheus.yml"
[[ -f "${deploy_config}" ]] || die "missing ${deploy_config}"
sed -e 's/^\([[:space:]]*scrape_interval:\).*/\1 1s/' \
    -e 's/^\([[:space:]]*evaluation_interval:\).*/\1 1s/' \
    -e "s/\"localhost:9464\"/\"127.0.0.1:${metrics_port}\"/" \
    "${deploy_config}" >"${tmp}/prometheus.yml"
# Rule files are resolved next to the config file.
for rules in "${repo_dir}"/deploy/prometheus/*.yml; do
  [[ "$(basename "${rules}")" == prometheus.yml ]] || cp "${rules}" "${tmp}/"
done
if grep -q "\"127.0.0.1:${metrics_port}\"" "${tmp}/prometheus.yml" &&
   grep -q 'scrape_interval: 1s' "${tmp}/prometheus.yml"; then
  pass "scrape config derived from deploy/prometheus/prometheus.yml"
else
  die "could not rewrite the target / scrape_interval of ${deploy_config}"
fi
if command -v promtool >/dev/null; then
  promtool check config "${tmp}/prometheus.yml" >"${tmp}/promtool.log" 2>&1 ||
    { cat "${tmp}/promtool.log"; die "promtool check config failed"; }
fi
web_port="$(free_port)"
prometheus --config.file="${tmp}/prometheus.yml" \
  --storage.tsdb.path="${tmp}/data" \
  --web.listen-address="127.0.0.1:${web_port}" >"${tmp}/prometheus.log" 2>&1 &
prometheus_pid=$!
api="http://127.0.0.1:${web_port}"
ready=0
for _ in $(seq 1 600); do
  if curl -sf "${api}/-/ready" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "${prometheus_pid}" 2>/dev/null || die "prometheus exited"
  sleep 0.1
done
[[ ${ready} -eq 1 ]] || die "prometheus not ready within 60 s"
pass "prometheus ready on 127.0.0.1:${web_port}"

# 3. 30 Translate requests of one golden sentence each.
"${python}" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")][:int(sys.argv[2])]
open(sys.argv[3], "w", encoding="utf-8").write("".join(r["source"] + "\n" for r in rows))
open(sys.argv[4], "w", encoding="utf-8").write("".join(r["greedy_text"] + "\n" for r in rows))
' "${model_dir}/golden/translations.jsonl" "${num_requests}" \
  "${tmp}/sources.txt" "${tmp}/expected.txt"
if "${client_bin}" translate --server="127.0.0.1:${port}" --texts_per_request=1 \
     --beam_size=1 --max_length=128 <"${tmp}/sources.txt" \
     >"${tmp}/translations.txt" 2>"${tmp}/client.err"; then
  if cmp -s "${tmp}/translations.txt" "${tmp}/expected.txt"; then
    pass "${num_requests} translations equal the golden greedy outputs"
  else
    fail "translations differ from golden:"
    diff "${tmp}/expected.txt" "${tmp}/translations.txt" | head -n 10
  fi
else
  cat "${tmp}/client.err"
  die "transformer-client translate failed"
fi

# 4. Poll Prometheus until the scraped series show every request.
# Prints the value of an instant query (sum of all series), or -1 if empty.
query() {
  curl -sf --get "${api}/api/v1/query" --data-urlencode "query=$1" |
    "${python}" -c '
import json, sys
try:
    result = json.load(sys.stdin)["data"]["result"]
    print(sum(float(r["value"][1]) for r in result) if result else -1)
except Exception:
    print(-1)'
}
at_least() { "${python}" -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$1" "$2"; }

requests_query='sum(transformer_requests_total{job="transformer-serving",method="Translate",code="OK"})'
duration_query='sum(transformer_request_duration_seconds_count{job="transformer-serving",method="Translate"})'
up_query='up{job="transformer-serving"}'
deadline=$((SECONDS + 60))
requests=-1; durations=-1; up=-1
while (( SECONDS < deadline )); do
  requests="$(query "${requests_query}")"
  durations="$(query "${duration_query}")"
  up="$(query "${up_query}")"
  if at_least "${requests}" "${num_requests}" &&
     at_least "${durations}" "${num_requests}" && at_least "${up}" 1; then
    break
  fi
  sleep 1
done
at_least "${up}" 1 && pass "target up (${up_query} = ${up})" ||
  fail "target not up (${up_query} = ${up})"
at_least "${requests}" "${num_requests}" &&
  pass "${requests_query} = ${requests} >= ${num_requests}" ||
  fail "${requests_query} = ${requests} < ${num_requests} after 60 s"
at_least "${durations}" "${num_requests}" &&
  pass "${duration_query} = ${durations} >= ${num_requests}" ||
  fail "${duration_query} = ${durations} < ${num_requests} after 60 s"
buckets="$(query 'sum(transformer_request_duration_seconds_bucket{job="transformer-serving",method="Translate",le="+Inf"})')"
at_least "${buckets}" "${num_requests}" &&
  pass "histogram +Inf bucket = ${buckets}" ||
  fail "histogram +Inf bucket = ${buckets} < ${num_requests}"

finish
