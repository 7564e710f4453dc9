# Sourced by the server benchmark scripts (tune_server.sh, bench_cache.sh):
# the demo model's golden sources as input, and free loopback ports.
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
