#!/usr/bin/env bash
# Builds the scheduler's unit tests with ThreadSanitizer into build-tsan/ and
# runs them (repeated, to give races more chances). The scheduler uses
# std::mutex: Debian's abseil is not built with TSan, so absl::Mutex would
# report false races.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${TSAN_BUILD_DIR:-build-tsan}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_TSAN=ON \
  -DTS_WERROR=ON > "$BUILD_DIR.configure.log" 2>&1 || {
  cat "$BUILD_DIR.configure.log"; exit 1; }
cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target scheduler_test
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  "$BUILD_DIR/bin/scheduler_test" --gtest_repeat="${TSAN_REPEAT:-5}" \
  --gtest_brief=1
