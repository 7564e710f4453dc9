"""Probes a transformer-server from outside its container image, for
image_test.sh. Run with /usr/bin/python3 (Debian's python3-grpcio).

  image_probe.py config IMAGE_INSPECT_JSON
      ENTRYPOINT, CMD, ENV, USER and WORKDIR of `podman image inspect` as
      bash assignments (shell-quoted), for `source`.
  image_probe.py golden GOLDEN_JSONL FIRST COUNT SOURCES_OUT EXPECTED_OUT
      One source per line and its greedy_text per line.
  image_probe.py health TARGET STUBS_DIR WANT TIMEOUT_S
      Polls grpc.health.v1 Check (service "") until it says WANT (SERVING,
      NOT_SERVING); exit 1 with the last answer if it does not in time.
  image_probe.py metric URL NAME [LABEL=VALUE ...]
      Prints the sum of the samples of NAME whose labels include the given
      ones (0 if none); exit 1 if /metrics cannot be read.
"""

import json
import os
import re
import shlex
import sys
import time
import urllib.request

REPO_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def config(inspect_path):
    with open(inspect_path, encoding="utf-8") as f:
        image = json.load(f)
    if isinstance(image, list):
        image = image[0]
    cfg = image.get("Config") or {}

    def array(name, values):
        quoted = " ".join(shlex.quote(v) for v in (values or []))
        print(f"{name}=({quoted})")

    array("image_entrypoint", cfg.get("Entrypoint"))
    array("image_cmd", cfg.get("Cmd"))
    array("image_env", cfg.get("Env"))
    print(f"image_user={shlex.quote(cfg.get('User') or '')}")
    print(f"image_workdir={shlex.quote(cfg.get('WorkingDir') or '/')}")
    print(f"image_stopsignal={shlex.quote(cfg.get('StopSignal') or '')}")


def golden(path, first, count, sources_out, expected_out):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = rows[int(first):int(first) + int(count)]
    if len(rows) != int(count):
        sys.exit(f"{path}: only {len(rows)} rows from line {first}")
    with open(sources_out, "w", encoding="utf-8") as f:
        f.writelines(r["source"] + "\n" for r in rows)
    with open(expected_out, "w", encoding="utf-8") as f:
        f.writelines(r["greedy_text"] + "\n" for r in rows)


def health(target, stubs_dir, want, timeout_s):
    import grpc
    sys.path.insert(0, os.path.join(REPO_DIR, "client", "python"))
    import ts_stubs
    if not os.path.exists(os.path.join(stubs_dir, "ts_health", "health_pb2_grpc.py")):
        ts_stubs.generate(stubs_dir,
                          proto_dir=os.path.join(REPO_DIR, "tests", "python", "proto"),
                          proto_file="ts_health/health.proto")
    sys.path.insert(0, stubs_dir)
    from ts_health import health_pb2, health_pb2_grpc
    wanted = health_pb2.HealthCheckResponse.ServingStatus.Value(want)
    last = "no answer"
    give_up = time.monotonic() + float(timeout_s)
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < give_up:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=""),
                                    timeout=5).status
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
                if status == wanted:
                    print(f"grpc.health.v1 Check: {last}")
                    return
            except grpc.RpcError as e:
                last = f"{e.code().name}: {e.details()}"
            time.sleep(0.2)
    sys.exit(f"grpc.health.v1 Check at {target}: not {want} after {timeout_s} s "
             f"(last: {last})")


def metric(url, name, *labels):
    want = dict(label.split("=", 1) for label in labels)
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    total = 0.0
    sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
    for line in body.splitlines():
        m = sample.match(line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in want.items()):
            total += float(m.group(3))
    print(f"{total:g}")


def main():
    commands = {"config": config, "golden": golden, "health": health, "metric": metric}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
