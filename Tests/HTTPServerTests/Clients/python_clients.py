"""Drives a test server with Python's requests and httpx, as applications do.

    python_clients.py PORT [CA_FILE]     with CA_FILE: over HTTPS, trusting that certificate
"""
import os
import sys

import httpx
import requests

ca_file = sys.argv[2] if len(sys.argv) > 2 else None
if ca_file:
    # requests lets these variables override a Session's own `verify`; the test's CA is the one to trust.
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(variable, None)
base = f"{'https' if ca_file else 'http'}://127.0.0.1:{sys.argv[1]}"
body = os.urandom(300_000)

# requests: one Session keeps one connection alive across requests.
with requests.Session() as session:
    session.verify = ca_file or True
    ports = {session.get(base + "/whoami").text for _ in range(5)}
    assert len(ports) == 1, f"requests used {len(ports)} connections for 5 requests"
    answer = session.post(base + "/echo", data=body, headers={"Content-Type": "application/octet-stream"})
    assert answer.status_code == 200 and answer.content == body, "echo of 300 kB"
    chunked = session.post(base + "/echo", data=(part for part in [b"abc", b"def"]))
    assert chunked.content == b"abcdef", "chunked upload from a generator"
    missing = session.get(base + "/missing")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}
    wrong = session.delete(base + "/hello")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET, HEAD"
    streamed = session.get(base + "/stream/100000")
    assert len(streamed.content) == 100_000 and streamed.headers["Transfer-Encoding"] == "chunked"
    too_large = session.post(base + "/small", data=b"x" * 17)
    assert too_large.status_code == 413
print("requests: ok")

# httpx: its own HTTP/1.1 implementation (h11), which is strict about framing. Its default read
# timeout of 5 s is not this test's business (requests has none): with every suite at once on two
# cores, a TLS stream once took longer. A server that never finished would still fail it.
with httpx.Client(base_url=base, verify=ca_file or True, timeout=60) as client:
    ports = {client.get("/whoami").text for _ in range(5)}
    assert len(ports) == 1, f"httpx used {len(ports)} connections for 5 requests"
    assert client.post("/echo", content=body).content == body
    head = client.head("/hello")
    assert head.status_code == 200 and head.headers["content-length"] == "5" and head.content == b""
    assert client.get("/items/a%20b/status").text == "item a b"
    assert len(client.get("/stream/100000").content) == 100_000
print("httpx: ok")
