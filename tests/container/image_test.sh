#!/usr/bin/env bash
# Builds the container image from the Dockerfile with nothing but Debian's
# mirror (no image registry) and runs it:
#   1. debian:bookworm and debian:bookworm-slim from `debootstrap --variant=minbase`
#      of the mirror apt already uses, imported with `podman import`;
#   2. `podman build --isolation=chroot --network host --pull=never`;
#   3. the runtime image stays under 500 MB (its size and the build stage's
#      are printed);
#   4. the server starts through the image's ENTRYPOINT with the image's ENV as
#      the image's USER (read with `podman image inspect`): with `podman run` if
#      the OCI runtime can start containers on this machine, else from the
#      image's own filesystem (`podman create` + `podman mount` + chroot);
#   5. against models/marian-en-de-multi30k/golden/translations.jsonl: health
#      SERVING, 20 golden greedy translations through the image's
#      transformer-client, /metrics counts them, and SIGTERM during a
#      180-sentence request drains it (answered, golden) and exits 0;
#   6. every container, mount and image tag it made is removed, also on failure.
# The base tarballs, podman's storage (image layers) and the build stage's
# ccache mount stay in BUILD_DIR/container-cache, so a second run reuses them
# (delete that folder to start from the mirror again).
#
#   tests/container/image_test.sh [BUILD_DIR]     (default: build/; as root)
# Ends with "N passed, M failed"; exit status 0 only if none failed.
set -uo pipefail

src_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="$(realpath -m "${1:-${BUILD_DIR:-${src_dir}/build}}")"
cache="${build_dir}/container-cache"
python=/usr/bin/python3
probe="${src_dir}/tests/container/image_probe.py"
golden="${src_dir}/models/marian-en-de-multi30k/golden/translations.jsonl"
suite=bookworm
max_image_bytes=$((500 * 1000 * 1000))
image="localhost/transformer-serving:image-test"
build_image="localhost/transformer-serving-build:image-test"
container="transformer-serving-image-test"
probe_container="transformer-serving-image-test-probe"
# Everything inside the image runs with these overrides of its environment
# only: loopback addresses, a free gRPC port (printed by the server) and free
# HTTP and metrics ports, so the test never collides with another server.
# TS_MAX_LENGTH_FACTOR=0: the golden outputs are generate's, which has no
# length factor (golden line 117's greedy output runs past the default bound).
run_overrides=(TS_HOST=127.0.0.1 TS_PORT=0 TS_HTTP_ADDRESS=127.0.0.1 TS_METRICS_ADDRESS=127.0.0.1
               TS_MAX_LENGTH_FACTOR=0)

passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
t_start="$(now)"

tmp="$(mktemp -d /tmp/ts_image_test.XXXXXX)"
server_pid=""   # chroot path: the server process
client_pid=""   # the draining request
mnt=""          # chroot path: the mounted container filesystem
runner=""       # "podman run" or "chroot"
locked=0        # 1 once this run holds the cache's lock
step_pid=""     # a long step (debootstrap, podman build) running now

# podman with its storage, run state and the build's cache mounts
# (buildah keeps them under TMPDIR) in the cache folder.
podman_cmd=(env "TMPDIR=${cache}/tmp" podman --root "${cache}/storage" --runroot "${cache}/run"
  --tmpdir "${cache}/libpod" --events-backend none)
podman_() { "${podman_cmd[@]}" "$@"; }

# Mount points under DIR, deepest first.
mounts_under() {
  findmnt -rn -o TARGET | awk -v d="$1/" 'index($0 "/", d) == 1' | sort -r
}

# Runs a long step in the background and waits for it, so that INT/TERM
# interrupt the wait at once (bash runs traps only between commands) and
# cleanup stops the step.
step() {
  "$@" &
  step_pid=$!
  wait "${step_pid}"
  local rc=$?
  step_pid=""
  return "${rc}"
}

# Removes what this run made; safe to call twice and on any failure path.
cleanup() {
  [[ -n "${step_pid}" ]] && kill -TERM "${step_pid}" 2>/dev/null && wait "${step_pid}" 2>/dev/null
  step_pid=""
  [[ -n "${client_pid}" ]] && kill -9 "${client_pid}" 2>/dev/null && wait "${client_pid}" 2>/dev/null
  [[ -n "${server_pid}" ]] && kill -9 "${server_pid}" 2>/dev/null && wait "${server_pid}" 2>/dev/null
  client_pid=""
  server_pid=""
  if [[ -n "${mnt}" ]]; then
    # Whatever still runs in the chroot (started by this run), then the
    # /proc, /dev, /sys bound into it.
    local p
    for p in /proc/[0-9]*; do
      [[ "$(readlink "${p}/root" 2>/dev/null)" == "${mnt}" ]] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    while read -r m; do umount "${m}" || umount -l "${m}"; done < <(mounts_under "${mnt}")
    mnt=""
  fi
  ((locked)) || { rm -rf "${tmp}"; return; }
  if command -v podman >/dev/null && [[ -d "${cache}/storage" ]]; then
    podman_ umount --all >/dev/null 2>&1
    # Every container in this storage is this run's (the lock below), also
    # the build's own if it was interrupted (--external).
    local ids
    ids="$(podman_ ps --all --external --quiet 2>/dev/null)"
    [[ -n "${ids}" ]] && podman_ rm --force ${ids} >/dev/null 2>&1
    # Untagged, the images and their parent layers stay as the build cache
    # (the next run's `podman image prune` drops them once no tag needs them).
    podman_ untag "${image}" >/dev/null 2>&1
    podman_ untag "${build_image}" >/dev/null 2>&1
  fi
  # What is still mounted under the cache: containers/storage's own bind of its
  # overlay folder, and debootstrap's /proc and /sys if it was interrupted.
  while read -r m; do umount "${m}" || umount -l "${m}"; done < <(mounts_under "${cache}")
  rm -rf "${tmp}"
}
trap cleanup EXIT
trap 'fail "interrupted by a signal"; finish' INT TERM

finish() {
  cleanup
  echo "image_test: total $(since "${t_start}") s"
  echo "${passed} passed, ${failed} failed"
  [[ ${failed} -eq 0 ]]
  exit $?
}
die() {
  fail "$*"
  finish
}
# Shows the last lines of a log file, indented.
tail_of() {
  echo "--- $1 (last ${2:-30} lines) ---"
  tail -n "${2:-30}" "$1" 2>/dev/null | sed 's/^/    /'
}

echo "image_test: source ${src_dir}, cache ${cache}"
[[ "$(id -u)" == 0 ]] || die "needs root (debootstrap, podman storage, chroot, mount)"
[[ -x "${python}" ]] && "${python}" -c 'import grpc' 2>/dev/null ||
  die "${python} with grpcio is needed (Debian package python3-grpcio: bash scripts/setup.sh)"
for tool in protoc grpc_python_plugin curl; do
  command -v "${tool}" >/dev/null || die "${tool} is needed (bash scripts/setup.sh)"
done

# 1. debootstrap and podman from Debian.
missing=()
for p in debootstrap podman; do
  dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q "install ok installed" || missing+=("${p}")
done
if ((${#missing[@]})); then
  t="$(now)"
  echo "image_test: installing ${missing[*]}"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
         { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; } >"${tmp}/apt.log" 2>&1; then
    tail_of "${tmp}/apt.log"
    die "apt-get install ${missing[*]}"
  fi
  echo "image_test: installed ${missing[*]} in $(since "${t}") s"
fi
pass "$(podman --version), debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"

# One run at a time per cache; fresh run state each time (the storage and
# its layers stay), after removing what a killed run may have left.
mkdir -p "${cache}/tmp" "${cache}/base"
exec 9>"${cache}/lock"
flock -w 3600 9 || die "another image_test holds ${cache}/lock"
locked=1
while read -r m; do umount "${m}" || umount -l "${m}"; done < <(mounts_under "${cache}")
rm -rf "${cache}/run" "${cache}/libpod"
podman_ rm --all --force >/dev/null 2>&1

# 2. The base images from the mirror apt already uses, without a registry.
# The Debian sites apt reads the suite (and its -updates, -security) from.
debian_sources() {
  apt-get indextargets --format '$(SITE) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' |
    awk -v s="${suite}" '$2 == s || $2 == s "-updates" || $2 == s "-security"' | sort -u
}
# Writes debian-SUITE.tar and debian-SUITE-slim.tar into the cache.
make_base_tarballs() {
  local mirror rootfs="${cache}/base/rootfs"
  mirror="$(debian_sources | awk -v s="${suite}" '$2 == s && $3 == "main" { print $1; exit }')"
  [[ -n "${mirror}" ]] || { echo "apt has no source for ${suite} main (apt-get indextargets)"; return 1; }
  echo "image_test: debootstrap --variant=minbase ${suite} from ${mirror}"
  rm -rf "${rootfs}"
  step debootstrap --variant=minbase "${suite}" "${rootfs}" "${mirror}" >"${tmp}/debootstrap.log" 2>&1 ||
    { tail_of "${tmp}/debootstrap.log"; return 1; }
  # As Debian's official images: apt reads the suite, -updates and -security
  # (the sites of this machine's apt), no package lists or .debs, no host
  # resolv.conf or hostname; /dev, /proc, /sys empty (the runtime fills them).
  rm -f "${rootfs}/etc/apt/sources.list"
  debian_sources | awk '{ printf "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n", $1, $2, $3 }' \
    >"${rootfs}/etc/apt/sources.list.d/debian.sources"
  rm -rf "${rootfs}"/var/lib/apt/lists/* "${rootfs}"/var/cache/apt/*.bin \
    "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}/etc/hostname"
  : >"${rootfs}/etc/resolv.conf"
  local tar_args=(--numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -C "${rootfs}")
  tar "${tar_args[@]}" -cf "${cache}/base/debian-${suite}.tar.tmp" . || return 1
  # -slim: without documentation, man pages and translations, and dpkg told
  # to leave them out of later packages (as debuerreotype-slimify).
  mkdir -p "${rootfs}/etc/dpkg/dpkg.cfg.d"
  cat >"${rootfs}/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  find "${rootfs}/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "${rootfs}/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "${rootfs}"/usr/share/{groff,info,linda,locale,man}/* "${rootfs}"/usr/share/lintian/overrides/*
  tar "${tar_args[@]}" -cf "${cache}/base/debian-${suite}-slim.tar.tmp" . || return 1
  mv "${cache}/base/debian-${suite}.tar.tmp" "${cache}/base/debian-${suite}.tar"
  mv "${cache}/base/debian-${suite}-slim.tar.tmp" "${cache}/base/debian-${suite}-slim.tar"
  rm -rf "${rootfs}"
}
t="$(now)"
base_note="cached"
for variant in "${suite}" "${suite}-slim"; do
  podman_ image exists "docker.io/library/debian:${variant}" && continue
  if [[ ! -s "${cache}/base/debian-${variant}.tar" ]]; then
    make_base_tarballs || die "debootstrap of ${suite} (log above)"
    base_note="debootstrap"
  fi
  # The config Docker gives debian images: PATH (the Dockerfile extends it)
  # and bash as the command.
  podman_ import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    "${cache}/base/debian-${variant}.tar" "docker.io/library/debian:${variant}" \
    >"${tmp}/import.log" 2>&1 || { tail_of "${tmp}/import.log"; die "podman import debian:${variant}"; }
  podman_ tag "docker.io/library/debian:${variant}" "localhost/debian:${variant}"
  [[ "${base_note}" == cached ]] && base_note="imported from the cached tarballs"
done
base_bytes="$(podman_ image inspect --format '{{.Size}}' "docker.io/library/debian:${suite}-slim" 2>/dev/null)" ||
  die "no debian:${suite}-slim image"
pass "base images debian:${suite}, debian:${suite}-slim ($(mb "${base_bytes}")) ${base_note}, $(since "${t}") s"

# 3. podman build: the build stage first (to measure it), then the image;
# the second reuses the first's layers.
build() {
  local what="$1" log="$2"
  shift 2
  local t
  t="$(now)"
  if step "${podman_cmd[@]}" build --isolation=chroot --network host --pull=never --layers \
       -f "${src_dir}/Dockerfile" "$@" "${src_dir}" >"${log}" 2>&1; then
    pass "podman build ${what}: $(grep -c 'STEP [0-9]' "${log}") steps ($(grep -c -- '--> Using cache' "${log}") cached) in $(since "${t}") s"
  else
    tail_of "${log}" 60
    die "podman build ${what}"
  fi
}
build "--target build" "${tmp}/build-stage.log" --target build -t "${build_image}"
build "(runtime image)" "${tmp}/build.log" -t "${image}"
# Layers cached for older sources are parents of neither image: drop them,
# so the cache does not grow with every edit.
podman_ image prune --force >/dev/null 2>&1 || fail "podman image prune"

# 4. Sizes.
image_bytes="$(podman_ image inspect --format '{{.Size}}' "${image}")"
build_bytes="$(podman_ image inspect --format '{{.Size}}' "${build_image}")"
echo "image_test: runtime image $(mb "${image_bytes}"), build stage $(mb "${build_bytes}"), base debian:${suite}-slim $(mb "${base_bytes}")"
if ((image_bytes < max_image_bytes)); then
  pass "runtime image $(mb "${image_bytes}") < $(mb "${max_image_bytes}") (build stage $(mb "${build_bytes}"))"
else
  fail "runtime image $(mb "${image_bytes}") is not under $(mb "${max_image_bytes}")"
fi
podman_ untag "${build_image}" || fail "podman untag ${build_image}"

# 5. The image's ENTRYPOINT, CMD, ENV, USER, WORKDIR as it says them.
podman_ image inspect "${image}" >"${tmp}/inspect.json" || die "podman image inspect ${image}"
"${python}" "${probe}" config "${tmp}/inspect.json" >"${tmp}/config.sh" || die "reading the image config"
# shellcheck source=/dev/null
source "${tmp}/config.sh"
echo "image_test: ENTRYPOINT ${image_entrypoint[*]-}; CMD ${image_cmd[*]-}; USER ${image_user}; WORKDIR ${image_workdir}"
printf 'image_test: ENV %s\n' "${image_env[@]}"
((${#image_entrypoint[@]})) || die "the image has no ENTRYPOINT"
[[ -n "${image_user}" && "${image_user%%:*}" != 0 && "${image_user%%:*}" != root ]] ||
  fail "the image's USER is root or unset ('${image_user}')"

free_port() {
  "${python}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
metrics_port="$(free_port)"
http_port="$(free_port)"
run_overrides+=("TS_METRICS_PORT=${metrics_port}" "TS_HTTP_PORT=${http_port}")

# 6. podman run if the OCI runtime can start a container here, else chroot.
if podman_ run --name "${probe_container}" --rm --network host "${image}" --version \
     >"${tmp}/podman-run.log" 2>&1; then
  runner="podman run"
else
  podman_ rm --force --ignore "${probe_container}" >/dev/null 2>&1
  echo "image_test: podman run cannot start a container here:"
  grep -v '^$' "${tmp}/podman-run.log" | head -n 5 | sed 's/^/    /'
  runner="chroot"
fi

# The image's user as uid and gid (names looked up in the image's files).
resolve_user() {
  local root="$1" user="${image_user%%:*}" group=""
  [[ "${image_user}" == *:* ]] && group="${image_user#*:}"
  if [[ ! "${user}" =~ ^[0-9]+$ ]]; then
    uid_gid="$(awk -F: -v u="${user}" '$1 == u { print $3 ":" $4 }' "${root}/etc/passwd")"
    [[ -n "${uid_gid}" ]] || return 1
    run_uid="${uid_gid%%:*}"
    run_gid="${uid_gid#*:}"
  else
    run_uid="${user}"
    run_gid="$(awk -F: -v u="${user}" '$3 == u { print $4 }' "${root}/etc/passwd")"
    run_gid="${run_gid:-0}"
  fi
  if [[ -n "${group}" ]]; then
    if [[ "${group}" =~ ^[0-9]+$ ]]; then
      run_gid="${group}"
    else
      run_gid="$(awk -F: -v g="${group}" '$1 == g { print $3 }' "${root}/etc/group")"
      [[ -n "${run_gid}" ]] || return 1
    fi
  fi
}

# The server, and "${client[@]}" ARGS: the image's transformer-client, both
# as the image's USER with its ENV (plus run_overrides) in its WORKDIR. Arrays,
# not functions, so that `... &` gives the command's own pid.
if [[ "${runner}" == "podman run" ]]; then
  env_args=()
  for kv in "${run_overrides[@]}"; do env_args+=(-e "${kv}"); done
  client=("${podman_cmd[@]}" run --rm -i --network host "${env_args[@]}"
    --entrypoint transformer-client "${image}")
  podman_ run -d --name "${container}" --network host "${env_args[@]}" "${image}" \
    >"${tmp}/podman-run-server.log" 2>&1 || { tail_of "${tmp}/podman-run-server.log"; die "podman run ${image}"; }
  server_log() { podman_ logs "${container}" 2>&1; }
  server_running() { [[ "$(podman_ inspect --format '{{.State.Running}}' "${container}" 2>/dev/null)" == true ]]; }
  stop_server() {  # SIGTERM; sets server_rc, or returns 1 if still running after $1 s
    podman_ kill --signal TERM "${container}" >/dev/null || return 1
    server_rc="$(timeout "$1" "${podman_cmd[@]}" wait "${container}")" || return 1
  }
else
  podman_ create --name "${container}" "${image}" >/dev/null 2>"${tmp}/create.log" ||
    { tail_of "${tmp}/create.log"; die "podman create ${image}"; }
  mnt="$(podman_ mount "${container}")" && [[ -d "${mnt}" ]] || die "podman mount ${container}"
  # What a runtime gives a container: /proc, /dev (the host's, bound) and
  # /sys. Nothing in the test resolves a name, so /etc/resolv.conf and
  # /etc/hosts stay the image's.
  mount -t proc proc "${mnt}/proc" && mount --bind /dev "${mnt}/dev" &&
    mount --bind /sys "${mnt}/sys" || die "binding /proc, /dev, /sys into ${mnt}"
  resolve_user "${mnt}" || die "USER ${image_user} is not in the image's /etc/passwd or /etc/group"
  # env -i, chroot and the image's env exec each other: one pid.
  in_image=(env -i "${image_env[@]}" "${run_overrides[@]}"
    "$(command -v chroot)" --userspec="${run_uid}:${run_gid}" --groups="${run_gid}" "${mnt}"
    /usr/bin/env --chdir="${image_workdir}")
  client=("${in_image[@]}" transformer-client)
  "${in_image[@]}" "${image_entrypoint[@]}" "${image_cmd[@]}" >"${tmp}/server.out" 2>"${tmp}/server.err" &
  server_pid=$!
  server_log() { cat "${tmp}/server.out" "${tmp}/server.err"; }
  server_running() { kill -0 "${server_pid}" 2>/dev/null; }
  stop_server() {
    kill -TERM "${server_pid}" || return 1
    local i
    for ((i = 0; i < $1 * 10; i++)); do
      server_running || break
      sleep 0.1
    done
    server_running && return 1
    wait "${server_pid}"
    server_rc=$?
    server_pid=""
  }
fi
pass "runner: ${runner} (ENTRYPOINT with the image's ENV as USER ${image_user}; overrides: ${run_overrides[*]})"
server_dump() {
  server_log >"${tmp}/server.log"
  tail_of "${tmp}/server.log" 40
}

# 7. The server listens once the model is loaded and warmed up.
t="$(now)"
port=""
for _ in $(seq 1 3000); do
  port="$(server_log | sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' | head -n 1)"
  [[ -n "${port}" ]] && break
  server_running || { server_dump; die "the server exited before listening"; }
  sleep 0.1
done
[[ -n "${port}" ]] || { server_dump; die "the server did not print its port within 300 s"; }
target="127.0.0.1:${port}"
metrics_url="http://127.0.0.1:${metrics_port}/metrics"
pass "server listening on ${target} after $(since "${t}") s (HTTP on ${http_port}, metrics on ${metrics_port})"

if "${python}" "${probe}" health "${target}" "${tmp}/stubs" SERVING 60 >"${tmp}/health.log" 2>&1; then
  pass "$(cat "${tmp}/health.log")"
else
  cat "${tmp}/health.log"
  fail "health is not SERVING"
fi

ready="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${http_port}/readyz")"
if [[ "${ready}" == 200 ]]; then
  pass "HTTP/JSON gateway: GET /readyz 200"
else
  fail "HTTP/JSON gateway: GET /readyz ${ready}, want 200"
fi

# 8. 20 golden greedy translations, one request each, by the image's client.
translate=(translate "--server=${target}" --beam_size=1 --max_length=128 --timeout_s=120)
"${python}" "${probe}" golden "${golden}" 0 20 "${tmp}/sources20.txt" "${tmp}/expected20.txt" ||
  die "reading ${golden}"
if "${client[@]}" "${translate[@]}" --texts_per_request=1 <"${tmp}/sources20.txt" \
     >"${tmp}/out20.txt" 2>"${tmp}/client20.err"; then
  if cmp -s "${tmp}/expected20.txt" "${tmp}/out20.txt"; then
    pass "20 translations by the image's transformer-client equal the golden greedy outputs"
  else
    fail "translations differ from the golden greedy outputs (expected, got):"
    diff "${tmp}/expected20.txt" "${tmp}/out20.txt" | head -n 20
  fi
else
  tail_of "${tmp}/client20.err"
  fail "transformer-client translate in the image"
fi

metric() { "${python}" "${probe}" metric "${metrics_url}" "$@"; }
ok="$(metric transformer_requests_total method=Translate code=OK)"
if [[ "${ok}" == 20 ]]; then
  pass "/metrics: transformer_requests_total{method=\"Translate\",code=\"OK\"} = 20"
else
  fail "/metrics: transformer_requests_total{method=\"Translate\",code=\"OK\"} = ${ok:-unreadable}, want 20"
fi

# 9. Drain: SIGTERM while a 180-sentence request is in flight; it must still
# be answered with the golden outputs, and the server exit 0.
"${python}" "${probe}" golden "${golden}" 20 180 "${tmp}/sources180.txt" "${tmp}/expected180.txt" ||
  die "reading ${golden}"
"${client[@]}" "${translate[@]}" --texts_per_request=180 <"${tmp}/sources180.txt" \
  >"${tmp}/out180.txt" 2>"${tmp}/client180.err" &
client_pid=$!
inflight=0
for _ in $(seq 1 3000); do
  inflight="$(curl -sf "${metrics_url}" | awk '$1 == "transformer_inflight_requests" { print $2 }')"
  [[ "${inflight:-0}" != 0 ]] && break
  kill -0 "${client_pid}" 2>/dev/null || break
  sleep 0.01
done
if [[ "${inflight:-0}" == 0 ]]; then
  fail "the 180-sentence request was never seen in flight (transformer_inflight_requests)"
fi
t="$(now)"
server_rc=""
if stop_server 60; then
  if [[ "${server_rc}" == 0 ]] && grep -q 'signal 15, draining' <<<"$(server_log)"; then
    pass "SIGTERM with ${inflight} request in flight: the server drained and exited 0 in $(since "${t}") s"
  else
    server_dump
    fail "the server exited ${server_rc} after SIGTERM (want 0 after 'signal 15, draining')"
  fi
else
  server_dump
  fail "the server still runs 60 s after SIGTERM"
fi
if wait "${client_pid}"; then
  client_pid=""
  if cmp -s "${tmp}/expected180.txt" "${tmp}/out180.txt"; then
    pass "the request in flight at SIGTERM was answered: 180 golden greedy outputs"
  else
    fail "the drained request's translations differ from golden (expected, got):"
    diff "${tmp}/expected180.txt" "${tmp}/out180.txt" | head -n 20
  fi
else
  client_pid=""
  tail_of "${tmp}/client180.err"
  fail "the request in flight at SIGTERM failed"
fi
server_log | grep -iE 'drain|shut' | head -n 3 | sed 's/^/    server: /'

# 10. Clean up now and check that nothing is left but the cache.
cleanup_mnt="${mnt}"
cleanup
tmp="$(mktemp -d /tmp/ts_image_test.XXXXXX)"
left="$(podman_ ps --all --external --format 'container {{.Names}}'
  podman_ images --format 'image {{.Repository}}:{{.Tag}}' | grep -F -e "${image}" -e "${build_image}"
  mounts_under "${cache}" | sed 's/^/mount /'
  [[ -n "${cleanup_mnt}" ]] && mounts_under "${cleanup_mnt}" | sed 's/^/mount /'
  [[ "${runner}" == chroot ]] && for p in /proc/[0-9]*; do
    [[ "$(readlink "${p}/root" 2>/dev/null)" == "${cleanup_mnt}" ]] && echo "process ${p#/proc/}"
  done)"
if [[ -z "${left}" ]]; then
  pass "cleanup: no container, mount or test image left ($(podman_ images -q | wc -l) cached images, cache $(du -sh "${cache}" | cut -f1))"
else
  fail "left after cleanup: ${left}"
fi
echo "image_test: runner ${runner}; runtime image $(mb "${image_bytes}"); build stage $(mb "${build_bytes}")"
finish
