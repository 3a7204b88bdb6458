"""One call of the official Segmind Python SDK (segmind==1.3.0) against a gateway, printed as JSON.

Usage: segmind_call.py PORT KEY SLUG PARAMS_JSON. An `image` parameter of the form "PNG WxH" is
replaced by a base64 PNG header of that size (enough for the gateway, which reads only the header),
one of the form "FILE PATH" by that file's bytes in base64. Prints {"status", "headers", "images":
[{format, width, height, bytes, tail}]} (tail: the last 16 bytes in hex) for a success, {"status", "error"} for a SegmindError."""
import base64
import json
import struct
import sys
import zlib

from segmind import SegmindClient
from segmind.exceptions import SegmindError

port, key, slug, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
# Generations on a test machine's CPU can outlast the SDK's default 30 s.
client = SegmindClient(api_key=key, base_url=f"http://127.0.0.1:{port}/v1", timeout=300)


def png(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def describe(image):
    size = {"bytes": len(image), "tail": image[-16:].hex()}
    if image[:8] == b"\x89PNG\r\n\x1a\n":
        width, height = struct.unpack(">II", image[16:24])
        return {"format": "png", "width": width, "height": height, **size}
    return {"format": "jpeg" if image[:2] == b"\xff\xd8" else "unknown", **size}


if isinstance(params.get("image"), str) and params["image"].startswith("PNG "):
    width, height = map(int, params["image"][4:].split("x"))
    params["image"] = base64.b64encode(png(width, height)).decode()
elif isinstance(params.get("image"), str) and params["image"].startswith("FILE "):
    with open(params["image"][5:], "rb") as file:
        params["image"] = base64.b64encode(file.read()).decode()

try:
    response = client.run_sync(slug, **params)
except SegmindError as error:
    print(json.dumps({"status": error.status, "error": error.detail}))
    sys.exit(0)
headers = {name: response.headers.get(name) for name in
           ["content-type", "x-cost", "x-seed-value", "x-remaining-credits", "x-generation-time", "x-request-id"]}
if headers["content-type"] == "application/json":
    body = response.json()
    encoded = body["image"] if isinstance(body["image"], list) else [body["image"]]
    images = [describe(base64.b64decode(image)) for image in encoded]
else:
    images = [describe(response.content)]
print(json.dumps({"status": response.status_code, "headers": headers, "images": images}))
