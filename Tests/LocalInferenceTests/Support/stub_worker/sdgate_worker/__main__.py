"""A stand-in for the worker that speaks its protocol without diffusers, driven by files, so that tests
can make a worker misbehave in ways the real one does not on purpose.

Started as the gateway starts the real one (`python3 -m sdgate_worker --models FILE --listen
127.0.0.1:0 ...`), it reads the folder FILE is in:
  pids           each start appends its process id (a line)
  hang           while this file exists, GET /health never answers (alive but unhealthy)
  stuck          while this file exists, POST /generate never answers and GET /health says busy
  max_batch      its number, if it exists, is the max_batch GET /health answers
  slow_start     while this file exists, a starting worker does not listen (its weights loading)
  generate.json  {"status": N, "body": {...}, "headers": {...}}: the answer to every POST /generate
                 (headers optional); without it, the worker's own answer: `samples` PNG headers of
                 the requested size, the request's seed
and writes there:
  generating     a line for each POST /generate it received, when it received it
  request_ids    the request_id of each POST /generate, a line each
  cancels        the request_id of each POST /cancel, a line each; a generation held by `stuck`
                 ends when its id is cancelled, answered 409 `cancelled` as the worker answers
"""
import base64
import json
import os
import struct
import zlib
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

folder = Path(sys.argv[sys.argv.index("--models") + 1]).parent
with open(folder / "pids", "a") as pids:
    pids.write(f"{os.getpid()}\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle, the second waits for a delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path != "/health":
            return self.answer(404, {"error": {"code": "not_found", "message": "no route"}})
        while (folder / "hang").exists():
            time.sleep(0.05)
        health = {"status": "ok", "busy": (folder / "stuck").exists(), "pid": os.getpid()}
        if (folder / "max_batch").exists():
            health["max_batch"] = int((folder / "max_batch").read_text())
        self.answer(200, health)

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/cancel":
            with open(folder / "cancels", "a") as cancels:
                cancels.write(f"{request.get('request_id')}\n")
            return self.answer(200, {"cancelled": request.get("request_id")})
        with open(folder / "generating", "a") as received:
            received.write("generate\n")
        with open(folder / "request_ids", "a") as ids:
            ids.write(f"{request.get('request_id')}\n")
        while (folder / "stuck").exists():
            if f"{request.get('request_id')}\n" in lines(folder / "cancels"):
                return self.answer(409, {"error": {"code": "cancelled", "message": "cancelled after 1 of 2 steps"}})
            time.sleep(0.05)
        if not (folder / "generate.json").exists():
            return self.answer(200, generated(request))
        reply = json.loads((folder / "generate.json").read_text())
        self.answer(reply["status"], reply["body"], reply.get("headers", {}))

    def answer(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def lines(path):
    return [line + "\n" for line in path.read_text().splitlines()] if path.exists() else []


def png(width, height):
    """A PNG signature, an IHDR chunk for width x height and IEND: what the gateway's inspector reads."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def generated(request):
    image = {"format": "png", "data": base64.b64encode(png(int(request["width"]), int(request["height"]))).decode()}
    return {"images": [image] * int(request["samples"]), "seed": int(request["seed"]), "generation_time": 0.01}


while (folder / "slow_start").exists():
    time.sleep(0.05)
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"sdgate-worker listening on 127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
