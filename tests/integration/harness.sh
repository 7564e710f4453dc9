# Sourced by the shell integration tests: their arguments, PASS/FAIL
# counting, the closing "N passed, N failed" line (exit status 0 only if none
# failed), and a free loopback port.
python=/usr/bin/python3
# SERVER_BIN CLIENT_BIN REPO_DIR -> server_bin, client_bin, repo_dir and the
# demo model's model_dir; usage and exit 2 otherwise.
read_arguments() {
  if [[ $# -ne 3 ]]; then
    echo "usage: $0 SERVER_BIN CLIENT_BIN REPO_DIR" >&2
    exit 2
  fi
  server_bin="$1"
  client_bin="$2"
  repo_dir="$3"
  model_dir="${repo_dir}/models/marian-en-de-multi30k"
}
passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
finish() {
  echo "${passed} passed, ${failed} failed"
  [[ ${failed} -eq 0 ]]
  exit $?
}
free_port() {
  "${python}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# A scratch folder ($tmp, named after $1) and a list of background processes
# ($pids): on exit, however the test exits, the processes are killed and the
# folder removed.
make_scratch() {
  tmp="$(mktemp -d "/tmp/ts_$1.XXXXXX")"
  pids=()
  trap remove_scratch EXIT
}
remove_scratch() {
  for pid in "${pids[@]}"; do
    kill -9 "${pid}" 2>/dev/null && wait "${pid}" 2>/dev/null
  done
  rm -rf "${tmp}"
}
