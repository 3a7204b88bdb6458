"""A stand-in for the worker that speaks its protocol without diffusers, driven by files, so that tests
can make a worker misbehave in ways the real one does not on purpose.

Started as the gateway starts the real one (`python3 -m sdgate_worker --models FILE --listen
127.0.0.1:0 ...`), it reads the folder FILE is in:
  pids           each start appends its process id (a line)
  hang           while this file exists, GET /health never answers (alive but unhealthy)
  stuck          while this file exists, POST /generate never answers and GET /health says busy
  generate.json  {"status": N, "body": {...}}: the answer to every POST /generate
and writes there:
  generating     a line for each POST /generate it received, when it received it
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

folder = Path(sys.argv[sys.argv.index("--models") + 1]).parent
with open(folder / "pids", "a") as pids:
    pids.write(f"{os.getpid()}\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path != "/health":
            return self.answer(404, {"error": {"code": "not_found", "message": "no route"}})
        while (folder / "hang").exists():
            time.sleep(0.05)
        self.answer(200, {"status": "ok", "busy": (folder / "stuck").exists(), "pid": os.getpid()})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(folder / "generating", "a") as received:
            received.write("generate\n")
        while (folder / "stuck").exists():
            time.sleep(0.05)
        reply = json.loads((folder / "generate.json").read_text())
        self.answer(reply["status"], reply["body"])

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"sdgate-worker listening on 127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
