# Sourced by the shell integration tests: PASS/FAIL counting, the closing
# "N passed, N failed" line (exit status 0 only if none failed), and a free
# loopback port. Needs ${python} set to /usr/bin/python3.
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
