"""Connections that only wait cannot keep the gateway out: through real worker processes, with
connections opened and left silent as any local process could, the gateway's health checks and
requests are still answered, a head sent a byte at a time is cut off at its deadline, and the
worker's threads stay bounded."""

import errno
import http.client
import os
import socket
import subprocess
import sys
import time

import pytest

from test_http_protocol import wait_until
from worker_process import WORKER_ROOT, WorkerProcess

TOKEN = "per-spawn-secret-0123456789"
GATEWAY = {"Authorization": f"Bearer {TOKEN}"}
# The worker's deadline for a request's head (README), and the connections it serves at once by
# default: --max-batch (1) + 32.
HEAD_SECONDS = 5.0
LIMIT = 33
# Far more file descriptors than the limit needs, far fewer than the connections opened below.
OPEN_FILES = 128
ANSWER_SECONDS = 20
# Past the kernel's queue of connections to accept, a handshake is sent again after a second, then 3 s.
CONNECT_SECONDS = 5


@pytest.fixture(scope="module")
def tcp_worker(models_file):
    worker = WorkerProcess(models_file, "127.0.0.1:0", token=TOKEN, open_files=OPEN_FILES)
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def unix_worker(models_file, tmp_path_factory):
    path = tmp_path_factory.mktemp("sock") / "w.sock"
    worker = WorkerProcess(models_file, f"unix:{path}", token=TOKEN, open_files=OPEN_FILES)
    yield worker
    worker.stop()


def healthy(worker) -> bool:
    """The worker answers a health check (once the connections of an earlier test are gone)."""
    try:
        return worker.request("GET", "/health", timeout=ANSWER_SECONDS)[0] == 200
    except OSError:
        return False


def idle_connections(worker, count: int, kept_alive: bool = False) -> list[socket.socket]:
    """Up to `count` connections that send nothing (`kept_alive`: nothing more after a health check
    answered), each opened once the one before is established; fewer when one is not within
    CONNECT_SECONDS (the worker accepts no more)."""
    family, address = worker.socket_address()
    opened = []
    for _ in range(count):
        connection = socket.socket(family, socket.SOCK_STREAM)
        connection.settimeout(CONNECT_SECONDS)
        # A Unix socket whose queue of connections to accept is full refuses at once: again.
        deadline = time.monotonic() + CONNECT_SECONDS
        result = connection.connect_ex(address)
        while result == errno.EAGAIN and family == socket.AF_UNIX and time.monotonic() < deadline:
            time.sleep(0.01)
            result = connection.connect_ex(address)
        if result != 0:
            connection.close()
            break
        opened.append(connection)
        if kept_alive and not answered_health(connection):
            break
    return opened


def answered_health(connection: socket.socket) -> bool:
    """A health check on `connection`, answered within CONNECT_SECONDS; the connection stays open."""
    connection.sendall(b"GET /health HTTP/1.1\r\nHost: worker\r\n\r\n")
    answer = b""
    try:
        while not answer.endswith(b"}"):
            chunk = connection.recv(4096)
            if not chunk:
                return False
            answer += chunk
    except socket.timeout:
        return False
    return answer.startswith(b"HTTP/1.1 200")


def close_all(connections):
    for connection in connections:
        connection.close()


@pytest.mark.parametrize("kept_alive", [False, True])
def test_connections_past_the_workers_file_descriptors_leave_the_gateways_requests_answered(tcp_worker, kept_alive):
    wait_until(lambda: healthy(tcp_worker), "the worker to serve")
    # Each connection held is a descriptor: past its limit the worker could accept nothing more.
    held = idle_connections(tcp_worker, 3 * OPEN_FILES, kept_alive)
    try:
        assert tcp_worker.request("GET", "/health", timeout=ANSWER_SECONDS)[0] == 200
        status, answer = tcp_worker.request("GET", "/models", headers=GATEWAY, timeout=ANSWER_SECONDS)
        assert status == 200 and "models" in answer
    finally:
        close_all(held)


@pytest.mark.parametrize("worker_name", ["tcp_worker", "unix_worker"])
def test_idle_connections_hold_at_most_the_limits_threads(request, worker_name):
    worker = request.getfixturevalue(worker_name)
    wait_until(lambda: healthy(worker), "the worker to serve")
    before = worker.threads()
    # Fewer than its file descriptors: a worker without a bound holds them all.
    held = idle_connections(worker, 3 * LIMIT)
    try:
        assert len(held) == 3 * LIMIT
        # Connections are accepted in turn: once this one is answered, every one above was taken.
        assert worker.request("GET", "/health", timeout=ANSWER_SECONDS)[0] == 200
        assert worker.threads() - before <= LIMIT
    finally:
        close_all(held)


def closed_by_worker(connection: socket.socket, trickle: bytes | None) -> float | None:
    """Seconds until the worker closes `connection`, sending a byte of `trickle` every half second
    meanwhile, as a slow client would; None if it is still open after twice the head deadline."""
    started = time.monotonic()
    connection.settimeout(0.5)
    sent = 0
    while time.monotonic() - started < 2 * HEAD_SECONDS:
        try:
            if trickle is not None:
                connection.sendall(trickle[sent % len(trickle):][:1])
                sent += 1
            if connection.recv(4096) == b"":
                return time.monotonic() - started
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
    return None


def test_a_connection_that_sends_nothing_is_closed_at_the_head_deadline(tcp_worker):
    with socket.create_connection(tcp_worker.socket_address()[1]) as connection:
        took = closed_by_worker(connection, trickle=None)
    assert took is not None and took < HEAD_SECONDS + 2, took


def test_a_head_sent_a_byte_at_a_time_is_cut_off_at_its_deadline(tcp_worker):
    with socket.create_connection(tcp_worker.socket_address()[1]) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\n")
        # Header lines that never end: a read timeout alone would never pass.
        took = closed_by_worker(connection, trickle=b"X-Slow: " + b"a" * 1000)
    assert took is not None and took < HEAD_SECONDS + 2, took


def test_a_kept_alive_connection_outlives_the_head_deadline_between_requests(tcp_worker):
    """The gateway's client keeps a connection in its pool for up to a minute between requests."""
    connection = tcp_worker.connection(ANSWER_SECONDS)
    try:
        connection.request("GET", "/health", headers=GATEWAY)
        assert connection.getresponse().read() and connection.sock is not None
        first = connection.sock
        time.sleep(HEAD_SECONDS + 1)  # the pause between two of the gateway's requests
        connection.request("GET", "/models", headers=GATEWAY)
        response = connection.getresponse()
        assert response.status == 200 and response.read() and connection.sock is first
    finally:
        connection.close()


def test_past_the_limit_with_every_connection_in_a_request_a_new_one_is_answered_busy_at_once(tcp_worker):
    wait_until(lambda: healthy(tcp_worker), "the worker to serve")
    stuck = []
    try:
        # Requests whose bodies never come: each holds its connection until the body's read times out.
        for _ in range(LIMIT):
            connection = http.client.HTTPConnection(*tcp_worker.socket_address()[1], timeout=ANSWER_SECONDS)
            connection.putrequest("POST", "/cancel")
            for name, value in {**GATEWAY, "Content-Length": "100", "Expect": "100-continue"}.items():
                connection.putheader(name, value)
            connection.endheaders()
            # Told to send its body: its head was read whole.
            assert connection.sock.recv(64).startswith(b"HTTP/1.1 100")
            stuck.append(connection)
        started = time.monotonic()
        status, answer = tcp_worker.request("GET", "/health", timeout=ANSWER_SECONDS)
        assert status == 503 and answer["error"]["code"] == "busy", answer
        assert time.monotonic() - started < HEAD_SECONDS
    finally:
        close_all(stuck)
    wait_until(lambda: healthy(tcp_worker), "the places to come back")


def test_the_gateways_kept_alive_connection_is_closed_last(tcp_worker):
    """Closed just as the gateway sends on it, its request would fail: the connections that have
    carried its token go after every other that waits."""
    wait_until(lambda: healthy(tcp_worker), "the worker to serve")
    gateway = tcp_worker.connection(ANSWER_SECONDS)
    try:
        gateway.request("GET", "/models", headers=GATEWAY)
        assert gateway.getresponse().read() and gateway.sock is not None
        first = gateway.sock
        # Newer than the gateway's, and more than the limit: each closes the oldest of the others.
        held = idle_connections(tcp_worker, 2 * LIMIT)
        try:
            assert len(held) == 2 * LIMIT
            # Connections are accepted in turn: once this one is answered, every one above was taken.
            assert tcp_worker.request("GET", "/health", timeout=ANSWER_SECONDS)[0] == 200
            gateway.request("GET", "/models", headers=GATEWAY)
            response = gateway.getresponse()
            assert response.status == 200 and response.read() and gateway.sock is first
        finally:
            close_all(held)
    finally:
        gateway.close()


def test_health_checks_sent_without_reading_the_answers_do_not_hold_the_places(tcp_worker):
    """Health needs no token: a client that sent thousands down each of its connections and read
    none of the answers held each connection in the middle of writing one, beyond the reach of the
    limit, and the gateway's requests were answered busy. Such a connection is closed after its first
    answer, as every connection is after a health check without the gateway's token."""
    wait_until(lambda: healthy(tcp_worker), "the worker to serve")
    family, address = tcp_worker.socket_address()
    flooding = []
    try:
        for _ in range(LIMIT + 7):
            connection = socket.socket(family, socket.SOCK_STREAM)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            connection.settimeout(CONNECT_SECONDS)
            connection.connect(address)
            connection.setblocking(False)
            try:
                connection.send(b"GET /health HTTP/1.1\r\nHost: worker\r\n\r\n" * 4000)
            except (BlockingIOError, ConnectionError):
                pass
            flooding.append(connection)
        status, answer = tcp_worker.request("GET", "/models", headers=GATEWAY, timeout=ANSWER_SECONDS)
        assert status == 200 and "models" in answer, answer
    finally:
        close_all(flooding)


def test_connections_answered_401_and_held_open_do_not_hold_their_places(tcp_worker):
    """A refused request's connection lingers before its close, reading what its client still sends
    (so the close sends no reset): it is answered, and gives its place to a newer connection."""
    wait_until(lambda: healthy(tcp_worker), "the worker to serve")
    address = tcp_worker.socket_address()[1]
    refused = []
    try:
        for _ in range(LIMIT):
            connection = socket.create_connection(address, timeout=ANSWER_SECONDS)
            refused.append(connection)
            connection.sendall(b"GET /models HTTP/1.1\r\nHost: worker\r\n\r\n")
            assert connection.recv(64).startswith(b"HTTP/1.1 401")
        assert tcp_worker.request("GET", "/health", timeout=ANSWER_SECONDS)[0] == 200
    finally:
        close_all(refused)


@pytest.mark.parametrize("flags, reason", [
    (["--max-connections", "2"], "between 3 and 1024"),
    (["--max-batch", "8", "--max-connections", "9"], "at least --max-batch + 2 (10)"),
])
def test_a_limit_that_leaves_no_room_beside_a_full_batch_is_refused(flags, reason):
    done = subprocess.run([sys.executable, "-m", "sdgate_worker", "--models", "unread.yaml", *flags],
                          cwd=WORKER_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "" and reason in done.stderr, done.stderr
