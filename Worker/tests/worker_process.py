"""Starts a real worker process and talks to it over TCP or a Unix socket, as the gateway will."""

from __future__ import annotations

import errno
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

WORKER_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 120


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        # A Unix socket whose queue of connections to accept is full refuses at once, where TCP
        # would send its handshake again: try again meanwhile, as the gateway's client does.
        deadline = time.monotonic() + self.timeout
        while (result := self.sock.connect_ex(self.unix_path)) == errno.EAGAIN and time.monotonic() < deadline:
            time.sleep(0.01)
        if result:
            raise OSError(result, os.strerror(result))


class WorkerProcess:
    def __init__(self, models_file: Path, listen: str, *extra: str, token: str | None = None,
                 open_files: int | None = None):
        """`open_files`: the most file descriptors the worker may hold (its RLIMIT_NOFILE)."""
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(WORKER_ROOT))
        env.pop("SDGATE_WORKER_TOKEN", None)
        if token is not None:
            env["SDGATE_WORKER_TOKEN"] = token
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sdgate_worker", "--models", str(models_file), "--listen", listen,
             "--device", "cpu", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=WORKER_ROOT,
            preexec_fn=None if open_files is None else lambda: _limit_open_files(open_files))
        # The one line on stdout says where it listens; reading it is the wait for start-up.
        line = self.process.stdout.readline()
        prefix = "sdgate-worker listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"worker did not start: {line!r} {self.process.stderr.read()[-2000:]}")
        self.address = line[len(prefix):].strip()

    def socket_address(self):
        """(family, address) to connect a raw socket to."""
        if self.address.startswith("unix:"):
            return socket.AF_UNIX, self.address[len("unix:"):]
        host, _, port = self.address.rpartition(":")
        return socket.AF_INET, (host, int(port))

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/task"))

    def connection(self, timeout: float = 60) -> http.client.HTTPConnection:
        if self.address.startswith("unix:"):
            return UnixHTTPConnection(self.address[len("unix:"):], timeout)
        host, _, port = self.address.rpartition(":")
        return http.client.HTTPConnection(host, int(port), timeout=timeout)

    def request(self, method: str, path: str, body=None, raw: bytes | None = None, headers=None,
                timeout: float = 60):
        """(status, decoded JSON) of one request on a fresh connection."""
        connection = self.connection(timeout)
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            connection.request(method, path, body=data,
                               headers={"Content-Type": "application/json", **(headers or {})})
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()


def _limit_open_files(count: int) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))
