#!/usr/bin/env bash
# Installs the packages, builds with warnings as errors and runs every test.
# Under CI=true a skipped check fails the run: every test prints its output
# into Testing/Temporary/LastTest.log, which is searched for the skip marks
# of GoogleTest ("[  SKIPPED ]") and of the shell tests ("SKIP").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh -DTS_WERROR=ON -DTS_BUILD_TESTS=ON
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 1200 -j1
if [[ "${CI:-}" == true ]]; then
  log=Testing/Temporary/LastTest.log
  if grep -nE '^SKIP|\[  SKIPPED \]' "$log"; then
    echo "test.sh: FAILED: the checks above were skipped; CI runs every check" >&2
    exit 1
  fi
  echo "test.sh: no check skipped"
fi
