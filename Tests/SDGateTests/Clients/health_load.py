"""Asks GET /health over keep-alive connections from THREADS threads, as fast as the gateway answers,
until it stops answering, SECONDS pass, or (if given) COUNT requests in all are answered; writes the
x-request-id of every answer, one a line, to OUT. Usage: health_load.py PORT THREADS SECONDS OUT [COUNT]"""
import http.client
import sys
import threading
import time

port, threads, seconds, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
each = int(sys.argv[5]) // threads if len(sys.argv) > 5 else None
deadline = time.monotonic() + seconds
answered = []
lock = threading.Lock()


def load():
    mine = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        while time.monotonic() < deadline and (each is None or len(mine) < each):
            connection.request("GET", "/health")
            response = connection.getresponse()
            response.read()
            mine.append(response.getheader("x-request-id"))
            if response.getheader("connection", "").lower() == "close":
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    except (OSError, http.client.HTTPException):
        pass  # the gateway stopped
    with lock:
        answered.extend(mine)


workers = [threading.Thread(target=load) for _ in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
with open(out, "w") as file:
    file.write("".join(f"{request_id}\n" for request_id in answered))
