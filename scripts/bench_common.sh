# Sourced by the server benchmark scripts (tune_server.sh, bench_cache.sh,
# bench_serving.sh, bench_kv_memory.sh):
# the demo model's golden sources as input, free loopback ports, a server
# started and stopped, /proc figures and the machine description.
DEMO=models/marian-en-de-multi30k
OUT=bench/results
mkdir -p "$OUT"
[[ -x build/bin/transformer-server ]] || bash scripts/build.sh

# Writes the 200 golden source sentences, one per line, to $1.
write_golden_sources() {
  /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    print(json.loads(line)["source"])' "$DEMO/golden/translations.jsonl" > "$1"
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts transformer-server on $MODEL_DIR (default: the demo model) on free
# loopback ports, with the extra flags given (later flags win), output to the
# log file $1; returns once it listens (model loaded, workers warmed up).
# Sets SERVER_PID, SERVER_PORT, METRICS_PORT. stop_server ends it.
start_server() {
  local log="$1"
  shift
  SERVER_PORT=$(free_port)
  METRICS_PORT=$(free_port)
  build/bin/transformer-server --model_dir="${MODEL_DIR:-$DEMO}" \
    --host=127.0.0.1 --port="$SERVER_PORT" --metrics_port="$METRICS_PORT" \
    --metrics_address=127.0.0.1 --http_port=0 "$@" > "$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 600); do
    grep -q "listening" "$log" 2>/dev/null && return 0
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "transformer-server exited; its log $log:" >&2
      tail -20 "$log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "transformer-server not listening after 120 s: $log" >&2
  return 1
}

stop_server() {
  [[ -n "${SERVER_PID:-}" ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" || true
  SERVER_PID=
}

# A field of /proc/PID/status in KiB: proc_status_kib PID VmHWM.
proc_status_kib() {
  awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"
}

# Prints the CPU model and the ISAs oneDNN and the engine's kernels use here
# (transformer-bench on one golden sentence), as scripts/bench.sh reports.
print_machine() {
  head -1 "$1" > "$OUT/machine_source.txt"
  build/bin/transformer-bench --model_dir="$DEMO" \
    --input="$OUT/machine_source.txt" --batch_size=1 --repeat=1 \
    --threads=1 --json="$OUT/machine.json" > /dev/null
  /usr/bin/python3 -c '
import json, os, sys
m = json.load(open(sys.argv[1]))
print("CPU: %s, %d cores; oneDNN ISA: %s, kernels: %s" % (
    m["cpu"], os.cpu_count(), m["isa"], m.get("kernel_isa", "?")))' \
    "$OUT/machine.json"
}
