"""Python `requests` against the compression test routes: it asks for gzip by default, gets it for
JSON worth compressing, decodes it, and gets the plain bytes when it asks for identity.

    python_gzip.py PORT      prints "requests gzip: ok" or fails with the reason
"""
import sys

import requests

base = f"http://127.0.0.1:{sys.argv[1]}"

answer = requests.get(base + "/json", timeout=10)
assert "gzip" in answer.request.headers["Accept-Encoding"], answer.request.headers
assert answer.headers.get("Content-Encoding") == "gzip", answer.headers
assert answer.headers.get("Vary") == "Accept-Encoding", answer.headers
items = answer.json()
assert len(items) == 400 and items[7] == {"id": "k7", "name": "member 7", "balance": "10.5"}, items[:8]

raw = requests.get(base + "/json", stream=True, timeout=10).raw.read(decode_content=False)
assert raw[:2] == b"\x1f\x8b", "the wire carries a gzip stream"
assert int(requests.head(base + "/json", timeout=10).headers["Content-Length"]) == len(raw), "HEAD says the size GET sends"

identity = requests.get(base + "/json", headers={"Accept-Encoding": "identity"}, timeout=10)
assert "Content-Encoding" not in identity.headers and identity.json() == items

image = requests.get(base + "/image", timeout=10)
assert "Content-Encoding" not in image.headers and image.content[:3] == b"\xff\xd8\xff"
print("requests gzip: ok")
