#!/usr/bin/env bash
# Checks the Dockerfile and deploy/ against the real server binary:
#   (a) every YAML file in deploy/ and the Grafana dashboard parse; only known
#       metric names are used;
#   (b) every TS_* variable of deploy/deployment.yaml is a server flag (and
#       every server flag has one), the values parse, ports and selectors agree;
#   (c) the Dockerfile's runtime apt list provides every library that `ldd`
#       resolves for transformer-server (and transformer-client next to it);
#   (d) promtool checks the rules, the config and the rule unit tests (if
#       promtool is installed: Debian package `prometheus`);
#   (e) `kubectl kustomize deploy` builds (if kubectl is installed);
#   (f) a real server started with the deployment's settings serves /metrics
#       with every metric the dashboard and the alerts use (if python3 can
#       reach it on loopback);
#   (g) the model-repository component (deploy/components/model-repository):
#       kustomize builds deploy/ with it, the volume is mounted at
#       TS_MODEL_REPOSITORY, the memory limit covers the budget, KV pools,
#       cache and process; envoy.yaml hashes on x-model over the headless
#       Service; a real server with its settings serves the checkout's
#       models/ as the repository.
#
# Usage: check_deploy.sh [path/to/transformer-server] [source dir]
# Prints one line per check and ends with "N passed, M failed".
set -euo pipefail

SRC="${2:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
SERVER="${1:-$SRC/build/bin/transformer-server}"
PY=/usr/bin/python3
DEPLOY="$SRC/deploy"
DOCKERFILE="$SRC/Dockerfile"

passed=0
failed=0
skipped=0
pass() { echo "PASS  $*"; passed=$((passed + 1)); }
fail() { echo "FAIL  $*"; failed=$((failed + 1)); }
# Under CI=true nothing may be skipped: a skip counts as a failure there.
skip() {
  echo "SKIP  $*"
  if [[ "${CI:-}" == true ]]; then
    fail "skipped under CI=true (install what it needs: scripts/setup.sh)"
  fi
  skipped=$((skipped + 1))
}

# check "description" command...: PASS if the command succeeds, else FAIL
# with its output.
check() {
  local what="$1"
  shift
  local out
  if out="$("$@" 2>&1)"; then
    pass "$what"
  else
    fail "$what"
    printf '%s\n' "$out" | sed 's/^/      /'
  fi
}

echo "check_deploy: source $SRC, server $SERVER"

if [[ ! -x "$PY" ]] || ! "$PY" -c 'import yaml' 2>/dev/null; then
  fail "$PY with the yaml module (Debian package python3-yaml) is needed"
  echo "$passed passed, $failed failed"
  exit 1
fi

# The metric names of the service (DESIGN.md "Metrics").
METRICS="transformer_requests_total transformer_request_duration_seconds
transformer_queue_duration_seconds transformer_compute_duration_seconds
transformer_batch_size transformer_batch_tokens transformer_queue_size
transformer_inflight_requests transformer_input_tokens_total
transformer_output_tokens_total transformer_model_info transformer_build_info
transformer_cache_hits_total transformer_cache_misses_total transformer_cache_bytes
transformer_active_sequences transformer_kv_cache_bytes transformer_kv_cache_limit_bytes
transformer_decode_steps_total transformer_admitted_sequences_total
transformer_time_to_first_token_seconds transformer_model_loaded transformer_model_weight_bytes
transformer_model_loads_total transformer_model_evictions_total transformer_model_load_seconds"
export METRICS

############################################################################
echo "== (a) deploy/ files parse"
############################################################################
while IFS= read -r f; do
  check "YAML parses: ${f#"$SRC"/}" "$PY" -c '
import sys, yaml
with open(sys.argv[1]) as fh:
    docs = [d for d in yaml.safe_load_all(fh) if d is not None]
if not docs:
    sys.exit("no YAML document in " + sys.argv[1])
' "$f"
done < <(find "$DEPLOY" "$SRC/tests/deploy" -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)

check "JSON parses: deploy/grafana/dashboard.json (panels, metric queries)" "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
panels = d["panels"]
exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
assert len(exprs) >= 10, "too few queries: %d" % len(exprs)
for needle in ("transformer_requests_total", "transformer_request_duration_seconds_bucket",
               "transformer_queue_duration_seconds_bucket", "transformer_compute_duration_seconds_bucket",
               "transformer_batch_size_bucket", "transformer_queue_size", "transformer_inflight_requests",
               "transformer_output_tokens_total", "transformer_input_tokens_total",
               "transformer_time_to_first_token_seconds_bucket", "transformer_active_sequences",
               "transformer_kv_cache_bytes", "transformer_kv_cache_limit_bytes",
               "transformer_decode_steps_total", "transformer_admitted_sequences_total",
               "transformer_model_loaded", "transformer_model_weight_bytes",
               "transformer_model_loads_total", "transformer_model_evictions_total",
               "transformer_model_load_seconds_bucket"):
    assert any(needle in e for e in exprs), "no panel queries " + needle
ids = [p["id"] for p in panels]
assert len(ids) == len(set(ids)), "duplicate panel ids"
# The "Models" row: per-model requests and latency quantiles, by the model label.
rows = [p["title"] for p in panels if p["type"] == "row"]
assert "Models" in rows, "no Models row: %s" % rows
for needle in ("sum by (model) (rate(transformer_requests_total",
               "sum by (le, model) (rate(transformer_request_duration_seconds_bucket"):
    assert any(needle in e for e in exprs), "no panel queries " + needle
assert "model" in [v["name"] for v in d["templating"]["list"]], "no model variable"
# No two panels overlap on the 24-column grid.
cells = {}
for p in panels:
    g = p["gridPos"]
    assert g["x"] + g["w"] <= 24, "panel %d wider than the grid" % p["id"]
    for x in range(g["x"], g["x"] + g["w"]):
        for y in range(g["y"], g["y"] + g["h"]):
            assert (x, y) not in cells, "panels %d and %d overlap" % (cells[(x, y)], p["id"])
            cells[(x, y)] = p["id"]
' "$DEPLOY/grafana/dashboard.json"

check "deploy/ uses only the service's metric names" "$PY" -c '
import os, re, sys
known = set(os.environ["METRICS"].split())
bad = []
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        path = os.path.join(root, name)
        for m in set(re.findall(r"\btransformer_[a-z_]+", open(path).read())):
            base = re.sub(r"_(bucket|sum|count)$", "", m)
            if m not in known and base not in known:
                bad.append("%s: %s" % (os.path.relpath(path, sys.argv[1]), m))
if bad:
    sys.exit("unknown metric names:\n" + "\n".join(sorted(bad)))
' "$DEPLOY"

############################################################################
echo "== (b) deployment.yaml against transformer-server --helpfull"
############################################################################
if [[ -x "$SERVER" ]]; then
  HELP="$("$SERVER" --helpfull 2>&1 || true)"
  export HELP
  check "server prints its flags (--helpfull)" grep -q -- '--model_dir' <<<"$HELP"

  check "every TS_* env in deployment.yaml is a server flag and every server flag has one" \
    "$PY" - "$DEPLOY/deployment.yaml" <<'EOF'
import os, re, sys, yaml
help_text = os.environ["HELP"]
# Flags of the server's own files ("Flags from .../server/...:"), not absl's.
server_flags, all_flags, section = set(), set(), ""
for line in help_text.splitlines():
    m = re.match(r"\s*Flags from (.*):\s*$", line)
    if m:
        section = m.group(1)
        continue
    m = re.match(r"\s+--([a-z0-9_]+) ", line)
    if m:
        all_flags.add(m.group(1))
        if "server/" in section:
            server_flags.add(m.group(1))
if not server_flags:
    sys.exit("no server flags found in --helpfull output")
dep = yaml.safe_load(open(sys.argv[1]))
env = {e["name"]: e.get("value") for c in dep["spec"]["template"]["spec"]["containers"]
       for e in c.get("env", [])}
ts = {k[3:].lower() for k in env if k.startswith("TS_")}
errors = ["TS_%s: no flag --%s" % (n.upper(), n) for n in sorted(ts - all_flags)]
errors += ["--%s: no TS_%s in deployment.yaml" % (n, n.upper()) for n in sorted(server_flags - ts)]
if errors:
    sys.exit("\n".join(errors))
print("%d TS_* variables, %d server flags" % (len(ts), len(server_flags)))
EOF

  # The server applies TS_* before parsing flags, so --helpfull with the
  # deployment's environment fails on a value that does not parse and shows
  # the values it took ("currently: ...").
  DEP_ENV="$("$PY" - "$DEPLOY/deployment.yaml" <<'EOF'
import sys, yaml
dep = yaml.safe_load(open(sys.argv[1]))
for c in dep["spec"]["template"]["spec"]["containers"]:
    for e in c.get("env", []):
        if e["name"].startswith("TS_"):
            print("%s=%s" % (e["name"], e["value"]))
EOF
)"
  mapfile -t DEP_ENV_ARR <<<"$DEP_ENV"
  check "the server accepts every TS_* value of deployment.yaml" \
    bash -c 'out="$(env "$@" --helpfull 2>&1)"; grep -q -- "--model_dir" <<<"$out" || { echo "$out"; exit 1; }' \
    _ "${DEP_ENV_ARR[@]}" "$SERVER"

  check "ports: flag defaults = deployment env/containerPorts/probes = services = scrape configs" \
    "$PY" - "$DEPLOY" <<'EOF'
import os, re, sys, yaml
d = sys.argv[1]
help_text = os.environ["HELP"]
def default(flag):
    m = re.search(r"--%s \(.*?\);\s+default: (\d+);" % flag, help_text, re.S)
    if not m:
        sys.exit("no default for --%s in --helpfull" % flag)
    return int(m.group(1))
grpc, metrics, http = default("port"), default("metrics_port"), default("http_port")
errors = []
def expect(what, got, want):
    if str(got) != str(want):
        errors.append("%s: %s, want %s" % (what, got, want))
expect("--port default", grpc, 50051)
expect("--metrics_port default", metrics, 9464)
expect("--http_port default", http, 8080)
dep = yaml.safe_load(open(os.path.join(d, "deployment.yaml")))
c = dep["spec"]["template"]["spec"]["containers"][0]
env = {e["name"]: e.get("value") for e in c["env"]}
expect("TS_PORT", env.get("TS_PORT"), grpc)
expect("TS_METRICS_PORT", env.get("TS_METRICS_PORT"), metrics)
expect("TS_HTTP_PORT", env.get("TS_HTTP_PORT"), http)
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
expect("containerPort grpc", ports.get("grpc"), grpc)
expect("containerPort metrics", ports.get("metrics"), metrics)
expect("containerPort http", ports.get("http"), http)
for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
    expect(probe + ".grpc.port", c.get(probe, {}).get("grpc", {}).get("port"), grpc)
ann = dep["spec"]["template"]["metadata"].get("annotations", {})
expect("prometheus.io/port annotation", ann.get("prometheus.io/port"), metrics)
for f in ("service.yaml", "service-headless.yaml"):
    svc = yaml.safe_load(open(os.path.join(d, f)))
    sp = {p["name"]: p for p in svc["spec"]["ports"]}
    expect(f + " grpc port", sp.get("grpc", {}).get("port"), grpc)
    expect(f + " grpc appProtocol", sp.get("grpc", {}).get("appProtocol"), "grpc")
    for name, p in sp.items():
        if p.get("targetPort") not in ports and p.get("targetPort") not in ports.values():
            errors.append("%s: targetPort %s is no container port" % (f, p.get("targetPort")))
    if f == "service.yaml":
        expect(f + " metrics port", sp.get("metrics", {}).get("port"), metrics)
        expect(f + " http port", sp.get("http", {}).get("port"), http)
        expect(f + " http appProtocol", sp.get("http", {}).get("appProtocol"), "http")
    else:
        expect(f + " clusterIP", svc["spec"].get("clusterIP"), "None")
prom = yaml.safe_load(open(os.path.join(d, "prometheus", "prometheus.yml")))
targets = [t for sc in prom["scrape_configs"] for s in sc.get("static_configs", []) for t in s["targets"]]
expect("prometheus.yml target", targets, ["localhost:%d" % metrics])
expect("prometheus.yml job", [sc["job_name"] for sc in prom["scrape_configs"]], ["transformer-serving"])
if errors:
    sys.exit("\n".join(errors))
EOF
else
  fail "transformer-server binary not found at $SERVER (build it: cmake --build build --target transformer-server)"
fi

check "deployment: probes, drain timing, security, resources; selectors of Service/PDB/HPA/ServiceMonitor match" \
  "$PY" - "$DEPLOY" "$DOCKERFILE" <<'EOF'
import os, re, sys, yaml
d, dockerfile = sys.argv[1], sys.argv[2]
load = lambda f: yaml.safe_load(open(os.path.join(d, f)))
dep = load("deployment.yaml")
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)
pod = dep["spec"]["template"]["spec"]
labels = dep["spec"]["template"]["metadata"]["labels"]
sel = dep["spec"]["selector"]["matchLabels"]
need(all(labels.get(k) == v for k, v in sel.items()), "Deployment selector does not match its pod labels")
c = pod["containers"][0]
env = {e["name"]: e.get("value") for e in c["env"]}
grace = pod.get("terminationGracePeriodSeconds", 30)
drain = int(env.get("TS_DRAIN_TIMEOUT_S", 30))
pre = c.get("lifecycle", {}).get("preStop", {})
sleep = int(pre.get("sleep", {}).get("seconds", 0)) or int(next(
    (a for a in pre.get("exec", {}).get("command", []) if str(a).isdigit()), 0))
need(sleep > 0, "no preStop sleep")
# preStop sleep + drain + the server's 5 s gRPC shutdown grace must fit.
need(grace >= sleep + drain + 5, "terminationGracePeriodSeconds %d < preStop %d + drain %d + 5" % (grace, sleep, drain))
for p in ("startupProbe", "readinessProbe", "livenessProbe"):
    need("grpc" in c.get(p, {}), p + " is not a native gRPC probe")
live = c["livenessProbe"]
need(live.get("periodSeconds", 10) * live.get("failureThreshold", 3) > grace,
     "livenessProbe could kill a draining pod (period x threshold <= grace period)")
sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
need(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem not set")
need((sc.get("runAsNonRoot") or psc.get("runAsNonRoot")) is True, "runAsNonRoot not set")
need(psc.get("runAsUser", sc.get("runAsUser")) == 10001, "runAsUser is not 10001")
res = c.get("resources", {})
for kind in ("requests", "limits"):
    need("cpu" in res.get(kind, {}) and "memory" in res.get(kind, {}), "resources.%s cpu/memory missing" % kind)
workers = int(env.get("TS_NUM_WORKERS", 1)); intra = int(env.get("TS_INTRA_THREADS", 0))
cpu = str(res.get("limits", {}).get("cpu", "0"))
cpu = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
need(intra > 0 and workers * intra <= max(1, cpu), "TS_NUM_WORKERS x TS_INTRA_THREADS (%d x %d) exceeds limits.cpu %s" % (workers, intra, cpu))
# The model dir of the deployment is the one baked into the image.
df = open(dockerfile).read()
m = re.search(r"TS_MODEL_DIR=(\S+)", df)
need(m is not None and m.group(1) == env.get("TS_MODEL_DIR"), "TS_MODEL_DIR differs from the Dockerfile's ENV")
for f in ("service.yaml", "service-headless.yaml"):
    s = load(f)["spec"]["selector"]
    need(all(labels.get(k) == v for k, v in s.items()), f + " selector does not match the pods")
pdb = load("pdb.yaml")
need(pdb["apiVersion"] == "policy/v1" and pdb["spec"].get("minAvailable") == 1, "pdb: want policy/v1 minAvailable 1")
need(all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()), "pdb selector does not match the pods")
hpa = load("hpa.yaml")
need(hpa["apiVersion"] == "autoscaling/v2", "hpa: want autoscaling/v2")
ref = hpa["spec"]["scaleTargetRef"]
need(ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"], "hpa does not target the Deployment")
need(any(m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"]["metrics"]), "hpa has no cpu metric")
sm = load("servicemonitor.yaml")
svc = load("service.yaml")
need(sm["apiVersion"] == "monitoring.coreos.com/v1", "servicemonitor apiVersion")
need(all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()),
     "servicemonitor does not select service.yaml")
need([e["port"] for e in sm["spec"]["endpoints"]] == ["metrics"], "servicemonitor endpoint port is not 'metrics'")
kust = load("kustomization.yaml")
files = sorted(f for f in os.listdir(d) if f.endswith(".yaml") and f != "kustomization.yaml")
need(sorted(kust["resources"]) == files, "kustomization resources %s != %s" % (sorted(kust["resources"]), files))
if errors:
    sys.exit("\n".join(errors))
EOF

############################################################################
echo "== (c) Dockerfile runtime packages provide the binaries' libraries"
############################################################################
# The runtime stage: from the last FROM on.
RUNTIME_STAGE="$(awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$DOCKERFILE")"
check "Dockerfile: bookworm build stage, bookworm-slim runtime, non-root, ports, entrypoint" \
  "$PY" - "$DOCKERFILE" "$SRC/.dockerignore" <<'EOF'
import re, sys
df = open(sys.argv[1]).read()
ignore = open(sys.argv[2]).read().split()
stages = re.split(r"(?m)^FROM ", df)[1:]
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)
need(len(stages) == 2, "want 2 stages, got %d" % len(stages))
build, run = stages[0], stages[-1]
need(build.startswith("debian:bookworm AS build"), "build stage is not debian:bookworm")
need("scripts/setup.sh" in build and "scripts/build.sh -DTS_BUILD_TESTS=OFF" in build, "build stage does not use setup.sh/build.sh")
need(run.startswith("debian:bookworm-slim"), "runtime stage is not debian:bookworm-slim")
need(len(re.findall(r"apt-get install", run)) == 1 and "--no-install-recommends" in run, "runtime: one apt-get install --no-install-recommends")
need("-dev" not in re.sub(r"#.*", "", run), "runtime stage installs a -dev package")
need(re.search(r"(?m)^USER 10001\b", run), "no USER 10001")
need(re.search(r"useradd .*--uid 10001", run), "no user with uid 10001")
need(re.search(r"(?m)^EXPOSE 50051 8080 9464\s*$", run), "no EXPOSE 50051 8080 9464 (gRPC, HTTP, metrics)")
need('ENTRYPOINT ["/opt/transformer-serving/bin/transformer-server"]' in run, "ENTRYPOINT")
need("TS_MODEL_DIR=/opt/transformer-serving/models/marian-en-de-multi30k" in run, "ENV TS_MODEL_DIR")
for what in ("transformer-server", "transformer-client", "models/marian-en-de-multi30k"):
    need(re.search(r"(?m)^COPY .*" + re.escape(what), run), "runtime does not COPY " + what)
need("build*/" in ignore and ".git" in ignore, ".dockerignore must exclude build*/ and .git")
if errors:
    sys.exit("\n".join(errors))
EOF

# Owner package of each library, from one `dpkg -S` over all basenames
# (usrmerge: ldd says /lib/..., dpkg may have registered /usr/lib/..., so
# paths are compared without a leading /usr).
declare -A OWNER=()
load_owners() {
  local line path pkg
  while IFS= read -r line; do
    [[ "$line" == *": /"* ]] || continue
    path="${line#*: }"
    pkg="${line%%: /*}"
    pkg="${pkg%%,*}"
    OWNER["${path#/usr}"]="${pkg%%:*}"
  done < <(dpkg -S "$@" 2>/dev/null || true)
}
owner() {
  local path="$1" real candidate
  real="$(readlink -f "$path")"
  for candidate in "${path#/usr}" "${real#/usr}"; do
    if [[ -n "${OWNER[$candidate]:-}" ]]; then
      echo "${OWNER[$candidate]}"
      return 0
    fi
  done
  return 1
}

# Packages of the base image (libc6 holds libc, libm, ld-linux).
BASE_PACKAGES=" libc6 libstdc++6 libgcc-s1 "
if ! command -v dpkg >/dev/null || ! command -v ldd >/dev/null; then
  skip "(c) needs dpkg and ldd"
elif [[ ! -x "$SERVER" ]]; then
  fail "(c) transformer-server binary not found at $SERVER"
else
  BINARIES=("$SERVER")
  CLIENT="$(dirname "$SERVER")/transformer-client"
  if [[ -x "$CLIENT" ]]; then BINARIES+=("$CLIENT"); else skip "transformer-client not built next to the server"; fi
  mapfile -t LIB_NAMES < <(for bin in "${BINARIES[@]}"; do
    ldd "$bin" | awk '/=> \// {print $3}' | while read -r l; do basename "$l"; basename "$(readlink -f "$l")"; done
  done | sort -u)
  load_owners "${LIB_NAMES[@]}"
  for bin in "${BINARIES[@]}"; do
    name="$(basename "$bin")"
    problems=()
    packages=()
    while IFS= read -r line; do
      if [[ "$line" == *"not found"* ]]; then
        problems+=("unresolved: $line")
        continue
      fi
      [[ "$line" =~ =\>\ (/[^ ]+) ]] || continue
      lib="${BASH_REMATCH[1]}"
      if ! pkg="$(owner "$lib")"; then
        problems+=("$lib belongs to no Debian package")
        continue
      fi
      [[ "$BASE_PACKAGES" == *" $pkg "* ]] && continue
      if ! grep -Eq "(^|[[:space:]])${pkg//+/\\+}([[:space:]]|\\\\|$)" <<<"$RUNTIME_STAGE"; then
        problems+=("$lib: package $pkg is missing from the Dockerfile runtime stage")
      fi
      packages+=("$pkg")
    done < <(ldd "$bin")
    uniq_packages="$(printf '%s\n' "${packages[@]}" | sort -u | tr '\n' ' ')"
    if ((${#problems[@]} == 0)); then
      pass "$name: every library is provided by the runtime stage ($uniq_packages)"
    else
      fail "$name: runtime libraries"
      printf '      %s\n' "$(printf '%s\n' "${problems[@]}" | sort -u)"
    fi
  done
  if command -v apt-cache >/dev/null; then
    # Every package of the runtime list is a real bookworm package.
    LISTED="$(grep -A1 -E 'apt-get install' <<<"$RUNTIME_STAGE" | tail -n1 | tr -d '\\')"
    check "runtime package list names real packages ($(wc -w <<<"$LISTED") packages)" \
      bash -c 'for p in $1; do apt-cache show "$p" >/dev/null 2>&1 || { echo "unknown package: $p"; bad=1; }; done; exit ${bad:-0}' _ "$LISTED"
  fi
fi

############################################################################
echo "== (d) promtool"
############################################################################
if command -v promtool >/dev/null; then
  check "promtool check rules deploy/prometheus/alerts.yml" promtool check rules "$DEPLOY/prometheus/alerts.yml"
  check "promtool check config deploy/prometheus/prometheus.yml" promtool check config "$DEPLOY/prometheus/prometheus.yml"
  check "promtool test rules tests/deploy/alerts_test.yml" promtool test rules "$SRC/tests/deploy/alerts_test.yml"
else
  skip "promtool not installed (apt-get install prometheus)"
fi

############################################################################
echo "== (e) kustomize"
############################################################################
if command -v kubectl >/dev/null; then
  check "kubectl kustomize deploy: 6 objects, images set" bash -c '
    out="$(kubectl kustomize "$1")" || exit 1
    kinds="$(grep -E "^kind: " <<<"$out" | sort | tr "\n" " ")"
    want="kind: Deployment kind: HorizontalPodAutoscaler kind: PodDisruptionBudget kind: Service kind: Service kind: ServiceMonitor "
    [[ "$kinds" == "$want" ]] || { echo "kinds: $kinds"; exit 1; }
    grep -q "image: transformer-serving:" <<<"$out" || { echo "image tag not set"; exit 1; }' _ "$DEPLOY"
else
  skip "kubectl not installed (no kustomize build)"
fi

############################################################################
echo "== (f) a real server with the deployment's settings: metrics, one request, drain"
############################################################################
CLIENT="$(dirname "$SERVER")/transformer-client"
if [[ -x "$SERVER" && -x "$CLIENT" && -d "$SRC/models/marian-en-de-multi30k" ]]; then
  check "server runs with deployment.yaml's env, answers a Translate (gRPC and HTTP), /metrics has every metric, SIGTERM exits 0" \
    "$PY" - "$SERVER" "$CLIENT" "$SRC/models/marian-en-de-multi30k" "${DEP_ENV:-}" "$SRC/tests/deploy" <<'EOF'
import json, os, sys, urllib.request, subprocess
server, client, model, dep_env, helpers = sys.argv[1:6]
sys.dont_write_bytecode = True
sys.path.insert(0, helpers)
from deploy_server import DeployServer
# The deployment's settings, on loopback ports of our own and the checkout's model.
srv = DeployServer(server, dep_env, TS_MODEL_DIR=model)
port, mport, hport, die = srv.port, srv.mport, srv.hport, srv.die
try:
    srv.wait_listening()
    r = subprocess.run([client, "translate", "--server=127.0.0.1:%d" % port, "--timeout_s=60",
                        "A man is riding a bicycle."], capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or not r.stdout.strip():
        die("transformer-client translate failed (%d): %s %s" % (r.returncode, r.stdout, r.stderr))
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
    names = {line.split()[2] for line in body.splitlines() if line.startswith("# TYPE ")}
    missing = sorted(set(os.environ["METRICS"].split()) - names)
    if missing:
        die("missing from /metrics: " + " ".join(missing))
    if 'code="OK"' not in body:
        die('no transformer_requests_total{code="OK"} after a successful request')
    # The HTTP/JSON gateway on TS_HTTP_PORT: probes' endpoints and one call.
    for path in ("/healthz", "/readyz"):
        status = urllib.request.urlopen("http://127.0.0.1:%d%s" % (hport, path), timeout=10).status
        if status != 200:
            die("GET %s: HTTP %d" % (path, status))
    req = urllib.request.Request("http://127.0.0.1:%d/v1/translate" % hport,
                                 data=b'{"texts": ["A man is riding a bicycle."]}',
                                 headers={"Content-Type": "application/json"})
    http_text = json.loads(urllib.request.urlopen(req, timeout=60).read())["translations"][0]["hypotheses"][0]["text"]
    if http_text != r.stdout.strip():
        die("HTTP /v1/translate gave %r, gRPC %r" % (http_text, r.stdout.strip()))
    srv.drain()
    print("translated: %s" % r.stdout.strip())
finally:
    srv.close()
EOF
else
  skip "(f) needs transformer-server, transformer-client and models/marian-en-de-multi30k"
fi

############################################################################
echo "== (g) model-repository component and Envoy sharding"
############################################################################
COMPONENT="$DEPLOY/components/model-repository"
check "components/model-repository: a Component patching the Deployment; envoy.yaml: RING_HASH on x-model over the headless Service" \
  "$PY" - "$DEPLOY" "$COMPONENT" <<'EOF'
import os, sys, yaml
d, comp = sys.argv[1], sys.argv[2]
load = lambda f: yaml.safe_load(open(f))
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)
k = load(os.path.join(comp, "kustomization.yaml"))
dep = load(os.path.join(d, "deployment.yaml"))
need(k.get("kind") == "Component", "kustomization.yaml of the component is not kind: Component")
need(all(os.path.exists(os.path.join(comp, r)) for r in k.get("resources", [])), "component resources missing")
targets = [p.get("target", {}) for p in k.get("patches", [])]
need({"kind": "Deployment", "name": dep["metadata"]["name"]} in targets, "no patch targets the Deployment")
need("components/model-repository" in open(os.path.join(d, "kustomization.yaml")).read(),
     "deploy/kustomization.yaml does not show how to add the component")
env = load(os.path.join(comp, "envoy.yaml"))
hcm = env["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
routes = [r for vh in hcm["route_config"]["virtual_hosts"] for r in vh["routes"]]
need(routes, "no routes in envoy.yaml")
need(all({"header": {"header_name": "x-model"}} in r["route"].get("hash_policy", []) for r in routes),
     "a route does not hash on the x-model header")
need(all(r["route"].get("timeout") == "0s" for r in routes), "route timeout is not 0s (streams would end at 15 s)")
clusters = {c["name"]: c for c in env["static_resources"]["clusters"]}
headless = load(os.path.join(d, "service-headless.yaml"))
port = {p["name"]: p["port"] for p in headless["spec"]["ports"]}["grpc"]
for r in routes:
    c = clusters.get(r["route"]["cluster"])
    need(c is not None, "route to unknown cluster %s" % r["route"]["cluster"])
    if c is None:
        continue
    need(c.get("lb_policy") == "RING_HASH", "cluster lb_policy is not RING_HASH")
    need(c.get("type") in ("STRICT_DNS", "EDS"), "cluster type is not STRICT_DNS/EDS")
    f = c.get("common_lb_config", {}).get("consistent_hashing_lb_config", {}).get("hash_balance_factor", 0)
    need(f >= 100, "hash_balance_factor %s < 100 (or unset)" % f)
    opts = c.get("typed_extension_protocol_options", {}).get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {})
    need("http2_protocol_options" in opts.get("explicit_http_config", {}), "upstream is not HTTP/2 (gRPC)")
    need(any("grpc_health_check" in h for h in c.get("health_checks", [])), "no gRPC health check")
    for e in c["load_assignment"]["endpoints"][0]["lb_endpoints"]:
        a = e["endpoint"]["address"]["socket_address"]
        need(a["address"].startswith(headless["metadata"]["name"] + "."), "endpoint %s is not the headless Service" % a["address"])
        need(a["port_value"] == port, "endpoint port %s != headless grpc port %s" % (a["port_value"], port))
if errors:
    sys.exit("\n".join(errors))
EOF

COMP_ENV=""
if command -v kubectl >/dev/null; then
  COMP_TMP="$(mktemp -d)"
  trap 'rm -rf "$COMP_TMP"' EXIT
  # What a user does: deploy/ with the component added to its kustomization.
  cp -r "$DEPLOY" "$COMP_TMP/deploy"
  printf '\ncomponents:\n  - components/model-repository\n' >>"$COMP_TMP/deploy/kustomization.yaml"
  kubectl kustomize "$COMP_TMP/deploy" >"$COMP_TMP/built.yaml" 2>"$COMP_TMP/kustomize.err" || true
  check "kubectl kustomize deploy + components/model-repository: PVC mounted at TS_MODEL_REPOSITORY, memory limit covers budget + KV + cache" \
    "$PY" - "$COMP_TMP/built.yaml" "$COMP_TMP/kustomize.err" <<'EOF'
import sys, yaml
docs = [x for x in yaml.safe_load_all(open(sys.argv[1])) if x]
if not docs:
    sys.exit("kustomize built nothing:\n" + open(sys.argv[2]).read())
kinds = sorted(x["kind"] for x in docs)
want = sorted(["Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "PodDisruptionBudget",
               "Service", "Service", "ServiceMonitor"])
errors = []
if kinds != want:
    errors.append("kinds %s, want %s" % (kinds, want))
dep = next(x for x in docs if x["kind"] == "Deployment")
pvcs = {x["metadata"]["name"] for x in docs if x["kind"] == "PersistentVolumeClaim"}
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
env = {e["name"]: e.get("value") for e in c["env"]}
names = [e["name"] for e in c["env"]]
if len(names) != len(set(names)):
    errors.append("duplicate env entries")
repo = env.get("TS_MODEL_REPOSITORY")
mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
vols = {v["name"]: v for v in pod.get("volumes", [])}
m = mounts.get(repo)
if not repo or m is None:
    errors.append("TS_MODEL_REPOSITORY %r is no volumeMount" % repo)
else:
    if not m.get("readOnly"):
        errors.append("the repository mount is not readOnly")
    claim = vols.get(m["name"], {}).get("persistentVolumeClaim", {}).get("claimName")
    if claim not in pvcs:
        errors.append("volume %s: claim %s is not the PVC built (%s)" % (m["name"], claim, sorted(pvcs)))
if not env.get("TS_DEFAULT_MODEL"):
    errors.append("TS_DEFAULT_MODEL not set")
def mib(q):
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(q[:-2]) * units[q[-2:]] if q[-2:] in units else float(q) / 2**20
res = c["resources"]
if res["requests"]["memory"] != res["limits"]["memory"]:
    errors.append("memory requests != limits")
budget = int(env.get("TS_MODEL_MEMORY_MB", 0))
floor = budget + int(env["TS_NUM_WORKERS"]) * int(env["TS_KV_CACHE_MB"]) + int(env["TS_CACHE_MB"]) + 32
if budget <= 0 or mib(res["limits"]["memory"]) < floor:
    errors.append("limits.memory %s < TS_MODEL_MEMORY_MB + workers x TS_KV_CACHE_MB + TS_CACHE_MB + 32 MiB = %d MiB"
                  % (res["limits"]["memory"], floor))
if errors:
    sys.exit("\n".join(errors))
with open(sys.argv[1] + ".env", "w") as out:
    for e in c["env"]:
        if e["name"].startswith("TS_"):
            out.write("%s=%s\n" % (e["name"], e["value"]))
EOF
  COMP_ENV="$(cat "$COMP_TMP/built.yaml.env" 2>/dev/null || true)"
else
  skip "kubectl not installed (no kustomize build of the component)"
fi

if [[ -n "$COMP_ENV" && -x "$SERVER" && -d "$SRC/models" ]]; then
  check "server with the component's env serves models/ as the repository: default model, every model loaded and labelled in /metrics" \
    "$PY" - "$SERVER" "$SRC/models" "$COMP_ENV" "$SRC/tests/deploy" <<'EOF'
import json, os, sys, urllib.request
server, repo, comp_env, helpers = sys.argv[1:5]
sys.dont_write_bytecode = True
sys.path.insert(0, helpers)
from deploy_server import DeployServer
# The component's settings, on loopback ports of our own and the checkout's models/.
srv = DeployServer(server, comp_env, TS_MODEL_REPOSITORY=repo)
port, mport, hport, die = srv.port, srv.mport, srv.hport, srv.die
want_default, budget_mb = srv.env["TS_DEFAULT_MODEL"], int(srv.env["TS_MODEL_MEMORY_MB"])
def http(path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (hport, path), data=body,
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=60).read())
try:
    srv.wait_listening()
    served = sorted(n for n in os.listdir(repo) if os.path.isdir(os.path.join(repo, n)))
    models = {m["name"]: m for m in http("/v1/models")["models"]}
    if sorted(models) != served:
        die("GET /v1/models lists %s, models/ holds %s" % (sorted(models), served))
    defaults = [n for n, m in models.items() if m.get("isDefault")]
    if defaults != [want_default]:
        die("default model %s, TS_DEFAULT_MODEL %s" % (defaults, want_default))
    text = "A man is riding a bicycle."
    plain = http("/v1/translate", json.dumps({"texts": [text]}).encode())
    named = http("/v1/translate", json.dumps({"texts": [text], "model": want_default}).encode())
    if plain["translations"] != named["translations"]:
        die("a request without a model did not go to %s" % want_default)
    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
    loaded, weights = {}, 0.0
    for line in metrics.splitlines():
        for name in served:
            if line.startswith('transformer_model_loaded{model="%s"}' % name):
                loaded[name] = float(line.split()[-1])
            if line.startswith('transformer_model_weight_bytes{model="%s"}' % name):
                weights += float(line.split()[-1])
    # The component's budget is sized for the demo models: all of them fit.
    if loaded != {n: 1.0 for n in served}:
        die("transformer_model_loaded: %s, want every model loaded" % loaded)
    if weights > budget_mb * 2**20:
        die("weights %d B exceed TS_MODEL_MEMORY_MB %d" % (weights, budget_mb))
    if not any(l.startswith("transformer_requests_total{") and 'model="%s"' % want_default in l
               for l in metrics.splitlines()):
        die("no transformer_requests_total series with model=%s" % want_default)
    srv.drain()
    print("models %s, default %s, weights %.1f MiB of %d MiB" % (served, want_default, weights / 2**20, budget_mb))
finally:
    srv.close()
EOF
else
  skip "(g) the server run needs the component built (kubectl), transformer-server and models/"
fi

echo "($skipped skipped)"
echo "$passed passed, $failed failed"
((failed == 0))
