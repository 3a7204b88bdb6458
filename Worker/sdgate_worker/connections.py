"""How many connections the worker serves at once, and how long one may wait or dawdle.

Every connection has its own thread, taken before any token is checked, so anyone who can reach the
port could otherwise hold a thread and a file descriptor per idle connection, thousands of them,
until the worker could accept nothing: the gateway's health checks then fail and its requests wait.
So:

  - a request's head must arrive whole within HEAD_SECONDS of the connection's start, or of its
    first byte on a kept-alive connection; a per-read timeout would let a client that sends a byte
    now and then hold its connection for ever;
  - a kept-alive connection may wait IDLE_SECONDS for its next request;
  - at most `limit` connections are open at once. At the limit, a new connection closes the oldest
    one that waits for a request and has sent nothing of it (or was answered and only lingers
    before its close), so connections that only wait never keep the gateway out: its new
    connection sends its request at once, and is the newest. Connections that have carried the
    gateway's token are closed last: closed just as the gateway sends on one, its request would
    fail. When every connection is in the middle of a request, the new one is answered 503 `busy`
    at once, the answer the gateway already takes as "try again shortly", rather than closed,
    which it would take for a worker that died.
"""

from __future__ import annotations

import io
import json
import logging
import select
import socket
import sys
import threading
import time

from .errors import WorkerError

log = logging.getLogger("sdgate_worker.http")

HEAD_SECONDS = 5.0
# Longer than the gateway's HTTP client keeps an idle connection in its pool (60 s, set where the
# gateway makes it): the gateway closes first, so it never sends a request down a connection the
# worker is closing at that moment.
IDLE_SECONDS = 75.0
# Each read of a body, and the whole write of an answer.
IO_SECONDS = 60.0
# Connections beyond --max-batch by default: health checks, cancels and /models beside a full batch.
EXTRA_CONNECTIONS = 32
# Connections the kernel holds until they are accepted: a burst must not make the gateway's
# connection wait for its handshake to be sent again (a second or more).
LISTEN_BACKLOG = 128
# The most a new connection waits for the one it closed to give back its place.
EVICTION_WAIT_SECONDS = 1.0
WARNING_INTERVAL_SECONDS = 60.0


class DeadlineReader(io.RawIOBase):
    """A connection's reads: under one deadline for a whole head (or for the wait before the next
    request), then under a timeout for each read of the body."""

    def __init__(self, connection: socket.socket):
        self._connection = connection
        self._deadline: float | None = None
        self._head_starts_with_first_byte = False

    def readable(self) -> bool:
        return True

    def expect_head(self) -> None:
        self._deadline = time.monotonic() + HEAD_SECONDS
        self._head_starts_with_first_byte = False

    def expect_next_request(self) -> None:
        self._deadline = time.monotonic() + IDLE_SECONDS
        self._head_starts_with_first_byte = True

    def expect_body(self) -> None:
        self._deadline = None
        self._connection.settimeout(IO_SECONDS)

    def readinto(self, buffer) -> int:
        if self._deadline is None:
            return self._connection.recv_into(buffer)
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no whole request head in time")
        self._connection.settimeout(remaining)
        count = self._connection.recv_into(buffer)
        if count and self._head_starts_with_first_byte:
            self.expect_head()
        return count


class _Connection:
    __slots__ = ("waiting_since", "lingering", "trusted", "closed_by_us")

    def __init__(self):
        # When it began to wait for a request; None while one is read and answered.
        self.waiting_since: float | None = time.monotonic()
        # Answered, and reading what its client still sends only to close without a reset.
        self.lingering = False
        # A request on it carried the worker's token: it is the gateway's.
        self.trusted = False
        self.closed_by_us = False


class ConnectionSlots:
    """The open connections, each waiting for a request or in the middle of one."""

    def __init__(self, limit: int):
        self.limit = limit
        self._changed = threading.Condition()
        self._open: dict[socket.socket, _Connection] = {}
        self._warned = -WARNING_INTERVAL_SECONDS

    def admit(self, connection: socket.socket) -> bool:
        """Takes a new connection, at the limit in the place of the oldest that only waits; False
        when every place is in the middle of a request."""
        with self._changed:
            if len(self._open) >= self.limit:
                if not self._close_oldest_waiting():
                    return False
                self._changed.wait_for(lambda: len(self._open) < self.limit, EVICTION_WAIT_SECONDS)
                if len(self._open) >= self.limit:
                    return False
            self._open[connection] = _Connection()
            return True

    def begins_request(self, connection: socket.socket) -> bool:
        """Its request's head has come; False if it was closed for a newer connection meanwhile."""
        with self._changed:
            state = self._open.get(connection)
            if state is None or state.closed_by_us:
                return False
            state.waiting_since = None
            return True

    def waits(self, connection: socket.socket, lingering: bool = False) -> None:
        """It waits for its next request, or (`lingering`) it was answered and only lingers before
        its close: either way it may be closed for a newer connection."""
        with self._changed:
            state = self._open.get(connection)
            if state is not None:
                state.waiting_since = time.monotonic()
                state.lingering = lingering

    def trust(self, connection: socket.socket) -> None:
        with self._changed:
            state = self._open.get(connection)
            if state is not None:
                state.trusted = True

    def release(self, connection: socket.socket) -> None:
        with self._changed:
            self._open.pop(connection, None)
            self._changed.notify_all()

    def _close_oldest_waiting(self) -> bool:
        # (A connection whose thread has just closed it, fd -1, is leaving by itself.)
        waiting = sorted((((state.trusted, state.waiting_since), connection.fileno(), connection, state.lingering)
                          for connection, state in self._open.items()
                          if state.waiting_since is not None and not state.closed_by_us),
                         key=lambda entry: entry[0])
        waiting = [(fd, connection, lingering) for _, fd, connection, lingering in waiting if fd >= 0]
        # One with bytes to read is a request arriving (the gateway's, sent as it connects): kept,
        # unless it was answered already and what comes is only read to be thrown away.
        arriving = _readable([fd for fd, _, lingering in waiting if not lingering])
        for fd, connection, _ in waiting:
            if fd not in arriving:
                self._open[connection].closed_by_us = True
                try:
                    # Its thread, waiting in a read, sees the end at once and gives its place back.
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._warn("closed the connection that waited longest for a request")
                return True
        self._warn("answered 503 busy: every connection is in the middle of a request")
        return False

    def _warn(self, what: str) -> None:
        now = time.monotonic()
        if now - self._warned >= WARNING_INTERVAL_SECONDS:
            self._warned = now
            log.warning("%d connections open, the most this worker serves at once (--max-connections): %s",
                        self.limit, what)


def _readable(fds: list[int]) -> set[int]:
    """The descriptors with bytes to read (or an end), without waiting."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return {fd for fd, _ in poller.poll(0)}


class BoundedConnectionsMixIn:
    """A socketserver server that serves each connection on its own thread, at most
    `connection_slots.limit` at once (in place of socketserver's ThreadingMixIn, which has no bound)."""

    request_queue_size = LISTEN_BACKLOG
    connection_slots: ConnectionSlots

    def process_request(self, request, client_address):
        if not self.connection_slots.admit(request):
            refuse_busy(request)
            self.shutdown_request(request)
            return
        try:
            threading.Thread(target=self._serve_connection, args=(request, client_address),
                             name="connection", daemon=True).start()
        except BaseException:
            # No thread: the caller closes the connection.
            self.connection_slots.release(request)
            raise

    def _serve_connection(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self.connection_slots.release(request)

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            # A client gone in the middle of its answer, or a connection closed for a newer one.
            log.debug("connection ended: %s", error)
            return
        log.error("unexpected error serving a connection", exc_info=error)


def refuse_busy(connection: socket.socket) -> None:
    """503 `busy`, written without waiting: the answer fits in an empty socket buffer."""
    error = WorkerError("busy", "this worker serves as many connections as it may (--max-connections); try again")
    body = json.dumps(error.to_json()).encode()
    head = (f"HTTP/1.1 {error.status} Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    try:
        connection.setblocking(False)
        connection.send(head + body)
        connection.shutdown(socket.SHUT_WR)
        # What already came is read (a little: this is the accepting thread), so that the close
        # ends the connection with a FIN, not a reset that may reach the client before it has read
        # the answer.
        for _ in range(16):
            if not connection.recv(65536):
                break
    except OSError:
        pass
