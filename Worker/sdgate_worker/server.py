"""The HTTP+JSON protocol (README.md) on a TCP port or a Unix socket, one thread per connection, a
bounded number of them (connections.py)."""

from __future__ import annotations

import hmac
import io
import json
import logging
import os
import socket
import socketserver
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from . import __version__
from .batching import Batcher
from .connections import EXTRA_CONNECTIONS, IO_SECONDS, BoundedConnectionsMixIn, ConnectionSlots, DeadlineReader
from .engine import Engine
from .errors import WorkerError
from .request import parse_generate_request

log = logging.getLogger("sdgate_worker.http")

LINGER_SECONDS = 2.0


class WorkerContext:
    """What the handlers need; one per process."""

    def __init__(self, engine: Engine, max_body_bytes: int, device: str, dtype: str, memory_budget: int | None,
                 token: str | None = None, batcher: Batcher | None = None):
        self.engine = engine
        # With batching on, generate requests go through the batcher, which takes several at once.
        self.batcher = batcher
        # Every route but GET /health needs `Authorization: Bearer <token>` when a token is set.
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.device = device
        self.dtype = dtype
        self.memory_budget = memory_budget
        self.started = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the gateway can reuse connections
    server_version = f"sdgate-worker/{__version__}"
    # A read of a body, or the write of an answer, that takes longer drops the connection. Heads and
    # the waits between requests have deadlines of their own (connections.py).
    timeout = IO_SECONDS

    @property
    def context(self) -> WorkerContext:
        return self.server.context

    def setup(self):
        super().setup()
        # The standard library's reader is replaced; closed, it does not keep the socket open.
        self.rfile.close()
        self._reader = DeadlineReader(self.connection)
        self._reader.expect_head()
        self.rfile = io.BufferedReader(self._reader)
        self._kept_alive = False

    def handle_one_request(self):
        # Each request but a connection's first comes after an answer, on a kept-alive connection.
        if self._kept_alive:
            self._reader.expect_next_request()
            self.server.connection_slots.waits(self.connection)
        self._kept_alive = True
        super().handle_one_request()

    def parse_request(self) -> bool:
        self._begun = False
        return super().parse_request() and self._begin()

    def handle_expect_100(self) -> bool:
        # The head is whole: the request begins before its client is told to send the body.
        return self._begin() and super().handle_expect_100()

    def _begin(self) -> bool:
        """The request's head has come whole: from here its connection is never closed for a newer
        one, and its body is read under a timeout for each read."""
        if self._begun:
            return True
        if not self.server.connection_slots.begins_request(self.connection):
            # Closed meanwhile for a newer connection: there is no one to answer.
            self.close_connection = True
            return False
        self._begun = True
        self._reader.expect_body()
        return True

    def do_GET(self):
        routes = {"/health": self._health, "/models": self._models}
        self._dispatch(routes, allowed_elsewhere={"/generate", "/cancel", "/faults/release"})

    def do_POST(self):
        routes = {"/generate": self._generate, "/cancel": self._cancel}
        if self.context.engine.faults.enabled:
            routes["/faults/release"] = self._release_fault
        self._dispatch(routes, allowed_elsewhere={"/health", "/models"})

    def _dispatch(self, routes: dict, allowed_elsewhere: set[str]):
        started = time.monotonic()
        self._body_read = False
        path = self.path.split("?", 1)[0]
        try:
            if self.command == "GET" and path == "/health":
                self._keep_open_for_the_gateway_only()
            else:
                self._authorize()
            if path in routes:
                status, body = routes[path]()
            elif path in allowed_elsewhere:
                raise WorkerError("method_not_allowed", f"{self.command} is not allowed on {path}")
            else:
                raise WorkerError("not_found", f"no route {path}")
        except WorkerError as error:
            status, body = error.status, error.to_json()
        except Exception as error:  # a bug: answer without detail, keep serving
            log.exception("unexpected error")
            status, body = 500, WorkerError("failed", f"internal error: {type(error).__name__}").to_json()
        self._send_json(status, body)
        log.info("%s %s %d %.3fs", self.command, path, status, time.monotonic() - started)

    def _authorize(self):
        """Anyone who reaches the port would otherwise generate for free: the gateway proves itself
        with the token it gave this worker (or was configured with), compared in constant time."""
        token = self.context.token
        if not token:
            return
        sent = self.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            self.close_connection = True
            raise WorkerError("unauthorized", "this worker serves its gateway only: send Authorization: Bearer <token>")
        self.server.connection_slots.trust(self.connection)

    def _keep_open_for_the_gateway_only(self):
        """Anyone may ask for health, but only a connection that carries the gateway's token stays
        open after it: one whose client sent health checks down it without reading the answers would
        wait in the middle of writing one, where the connection limit cannot close it, and a few such
        connections would hold every place."""
        token = self.context.token
        sent = self.headers.get("Authorization", "")
        if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            self.server.connection_slots.trust(self.connection)
        else:
            self.close_connection = True

    def _health(self):
        c = self.context
        return 200, {"status": "ok", "busy": c.engine.busy, "version": __version__, "pid": os.getpid(),
                     "device": c.device, "dtype": c.dtype,
                     # How many generate requests the gateway may send at once (1: one at a time).
                     "max_batch": c.batcher.max_batch if c.batcher else 1,
                     # Generate requests taken and not yet answered, waiting for their batch or running.
                     "held": c.batcher.held if c.batcher else int(c.engine.busy),
                     "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                     "uptime": round(time.monotonic() - c.started, 3)}

    def _models(self):
        c = self.context
        return 200, {"models": c.engine.describe_models(), "loaded_weights": c.engine.store.snapshot(),
                     "memory": {"used_bytes": c.engine.store.used_bytes(), "budget_bytes": c.memory_budget}}

    def _generate(self):
        request = parse_generate_request(self._read_json())
        return 200, (self.context.batcher or self.context.engine).generate(request)

    def _cancel(self):
        body = self._read_json()
        request_id = body.get("request_id") if isinstance(body, dict) else None
        if not isinstance(request_id, str) or not 1 <= len(request_id) <= 100:
            raise WorkerError("invalid_request", "request_id: must be a string of 1 to 100 characters")
        self.context.engine.cancellations.request(request_id)
        return 200, {"cancelled": request_id}

    def _release_fault(self):
        self._read_body()
        self.context.engine.faults.release()
        return 200, {"released": True}

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise WorkerError("length_required", "send the body with Content-Length, not chunked")
        length = self.headers.get("Content-Length")
        if length is None:
            self._body_read = True
            return b""
        if not length.isdigit():
            self.close_connection = True
            raise WorkerError("invalid_request", "Content-Length must be a non-negative integer")
        if int(length) > self.context.max_body_bytes:
            # The body is not read: the connection closes after the answer.
            self.close_connection = True
            raise WorkerError("payload_too_large",
                              f"the body is {length} bytes; the limit is {self.context.max_body_bytes}")
        body = self.rfile.read(int(length))
        self._body_read = True
        return body

    def _read_json(self) -> object:
        raw = self._read_body()
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WorkerError("invalid_request", f"the body is not JSON: {error}") from None

    def _send_json(self, status: int, body: dict):
        data = json.dumps(body).encode()
        if not self._body_read and self.headers.get("Content-Length", "0") != "0":
            # An unread body would be parsed as the next request: close instead.
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        if self.close_connection and not self._body_read:
            self._drain_unread_body()

    def _drain_unread_body(self):
        """A lingering close: closing with the client's body still arriving makes the kernel reset the
        connection, and the client may lose the answer. Stop writing, then read and discard what comes,
        for a short while only."""
        # Answered, it no longer holds its place against a newer connection.
        self.server.connection_slots.waits(self.connection, lingering=True)
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            deadline = time.monotonic() + LINGER_SECONDS
            while time.monotonic() < deadline and self.connection.recv(65536):
                pass
        except OSError:
            pass

    def log_message(self, format, *args):
        # The standard library's access log; requests are logged once, in _dispatch.
        pass


class TCPServer(BoundedConnectionsMixIn, HTTPServer):
    allow_reuse_address = True


class TCP6Server(TCPServer):
    address_family = socket.AF_INET6


class UnixServer(BoundedConnectionsMixIn, socketserver.UnixStreamServer):
    def get_request(self):
        # BaseHTTPRequestHandler expects a (host, port)-like client address.
        connection, _ = super().get_request()
        return connection, ("unix", 0)


def default_max_connections(max_batch: int) -> int:
    return max_batch + EXTRA_CONNECTIONS


def make_server(listen: str, context: WorkerContext, max_connections: int | None = None):
    """A bound server for `HOST:PORT` or `unix:PATH`, and the address it actually listens on; it
    serves at most `max_connections` connections at once."""
    if listen.startswith("unix:"):
        path = listen[len("unix:"):]
        if os.path.exists(path):
            os.unlink(path)  # a socket left behind by a previous worker that was killed
        server = UnixServer(path, Handler)
        address = f"unix:{path}"
    else:
        host, _, port = listen.rpartition(":")
        host = host.strip("[]")
        server = (TCP6Server if ":" in host else TCPServer)((host, int(port)), Handler)
        bound_host, bound_port = server.server_address[:2]
        address = f"[{bound_host}]:{bound_port}" if ":" in bound_host else f"{bound_host}:{bound_port}"
    server.context = context
    max_batch = context.batcher.max_batch if context.batcher else 1
    server.connection_slots = ConnectionSlots(max_connections or default_max_connections(max_batch))
    return server, address
