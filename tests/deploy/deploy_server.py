"""A transformer-server run with a deployment's TS_* environment, for
check_deploy.sh's server checks: loopback ports of its own, a wait for the
gRPC port, and a SIGTERM drain that must exit 0."""
import os
import signal
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DeployServer:
    """Starts `server` with the KEY=VALUE lines of `env_text` (the manifest's
    env) plus `overrides`, on loopback ports chosen here (port, mport,
    hport: gRPC, metrics, HTTP)."""

    def __init__(self, server, env_text, **overrides):
        env = dict(os.environ)
        for line in env_text.splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        self.env = env
        self.port, self.mport, self.hport = free_port(), free_port(), free_port()
        env.update(overrides)
        env.update(TS_HOST="127.0.0.1", TS_PORT=str(self.port),
                   TS_METRICS_PORT=str(self.mport), TS_HTTP_PORT=str(self.hport),
                   TS_HTTP_ADDRESS="127.0.0.1", TS_DRAIN_TIMEOUT_S="10")
        self.proc = subprocess.Popen([server], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

    def die(self, msg):
        """Kills the server and exits with `msg` and its output's tail."""
        if self.proc.poll() is None:
            self.proc.kill()
        out = self.proc.communicate()[0]
        sys.exit("%s\nserver output:\n%s" % (msg, out[-3000:]))

    def wait_listening(self, seconds=180):
        """The gRPC port listens once the models are loaded and warmed up."""
        deadline = time.time() + seconds
        while True:
            if self.proc.poll() is not None:
                self.die("server exited with %s" % self.proc.returncode)
            if time.time() > deadline:
                self.die("gRPC port %d not listening after %d s" % (self.port, seconds))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.5)

    def drain(self):
        """SIGTERM: the server must exit 0 within 40 s."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.die("server still running 40 s after SIGTERM")
        if rc != 0:
            self.die("server exited %d after SIGTERM" % rc)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
