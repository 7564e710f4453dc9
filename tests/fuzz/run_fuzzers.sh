#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan) into
# build-fuzz/ and runs each for SECONDS (default 60) from its seed corpus in
# tests/fuzz/corpus/<target>/. Prints the executions per target and exits
# non-zero if any target finds a crash, leak, timeout or undefined behaviour
# (the input is saved in build-fuzz/artifacts/<target>/).
#
#   tests/fuzz/run_fuzzers.sh [SECONDS]
#   build-fuzz/fuzz_safetensors build-fuzz/artifacts/fuzz_safetensors/crash-...   # replay
#
# Environment: CC/CXX (default clang-14/clang++-14), TS_FUZZ_BUILD_DIR
# (default build-fuzz), TS_FUZZ_TARGETS (default all five), TS_FUZZ_JOBS
# (build parallelism, default 2).
set -uo pipefail

duration="${1:-60}"
repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fuzz_dir="${repo_dir}/tests/fuzz"
build_dir="${TS_FUZZ_BUILD_DIR:-${repo_dir}/build-fuzz}"
targets=(${TS_FUZZ_TARGETS:-fuzz_safetensors fuzz_config fuzz_vocab fuzz_request fuzz_html fuzz_segment})

if ! [[ "${duration}" =~ ^[0-9]+$ ]] || [[ "${duration}" -lt 1 ]]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

export CC="${CC:-clang-14}" CXX="${CXX:-clang++-14}"
echo "== configuring and building ${build_dir} (${CXX})"
if ! cmake -S "${fuzz_dir}" -B "${build_dir}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
       >"${build_dir}.configure.log" 2>&1; then
  cat "${build_dir}.configure.log"
  echo "0 passed, ${#targets[@]} failed (configure)"
  exit 1
fi
rm -f "${build_dir}.configure.log"
if ! cmake --build "${build_dir}" -j "${TS_FUZZ_JOBS:-2}" --target "${targets[@]}"; then
  echo "0 passed, ${#targets[@]} failed (build)"
  exit 1
fi

passed=0
failed=0
summary=()
for target in "${targets[@]}"; do
  seeds="${fuzz_dir}/corpus/${target}"
  # New inputs go to a working corpus in the build tree; the seeds stay as
  # they are.
  work="${build_dir}/corpus/${target}"
  artifacts="${build_dir}/artifacts/${target}/"
  log="${build_dir}/${target}.log"
  mkdir -p "${work}" "${artifacts}"
  args=(-max_total_time="${duration}" -print_final_stats=1 -timeout=30
        -rss_limit_mb=4096 -artifact_prefix="${artifacts}")
  case "${target}" in
    fuzz_request | fuzz_segment) ;;
    fuzz_html) args+=(-dict="${fuzz_dir}/html.dict") ;;
    *) args+=(-dict="${fuzz_dir}/json.dict") ;;
  esac
  echo "== ${target}: ${duration} s"
  "${build_dir}/${target}" "${args[@]}" "${work}" "${seeds}" >"${log}" 2>&1
  status=$?
  executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "${log}" | tail -n 1)"
  executions="${executions:-0}"
  if [[ ${status} -eq 0 ]] && ! grep -qE '^(==[0-9]+==ERROR|SUMMARY: )' "${log}"; then
    passed=$((passed + 1))
    summary+=("PASS ${target}: ${executions} executions, corpus $(ls "${work}" | wc -l) inputs")
  else
    failed=$((failed + 1))
    summary+=("FAIL ${target}: exit ${status} after ${executions} executions; log ${log}; input in ${artifacts}")
    grep -E -A25 '^(==[0-9]+==ERROR|.*runtime error:|SUMMARY: )' "${log}" | head -n 60
  fi
done

printf '%s\n' "${summary[@]}"
echo "${passed} passed, ${failed} failed"
[[ ${failed} -eq 0 ]]
