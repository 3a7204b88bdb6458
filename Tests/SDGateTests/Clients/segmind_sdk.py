"""The official Segmind Python SDK (PyPI segmind==1.3.0) against a running sdgate.

Usage: segmind_sdk.py PORT KEY MODE, where MODE is `images` (every model answers with an image),
`errors` (each error reaches the SDK as SegmindError with the gateway's message) or `backend-down`
(the gateway's backend is failing)."""
import base64
import struct
import sys
import zlib

from segmind import SegmindClient
from segmind.exceptions import SegmindError

port, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
client = SegmindClient(api_key=key, base_url=f"http://127.0.0.1:{port}/v1")


def png(width, height):
    """A PNG header for width x height, as the gateway inspects it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


image = base64.b64encode(png(640, 480)).decode()


def expect_error(status, detail, call):
    try:
        call()
    except SegmindError as error:
        assert error.status == status, f"status {error.status}, expected {status}: {error.detail}"
        assert error.detail == detail, f"detail {error.detail!r}, expected {detail!r}"
        return
    raise AssertionError(f"no SegmindError, expected {status}")


if mode == "images":
    # As Segmind's 2023 SDK did: numbers as strings, base64 false for raw JPEG bytes.
    response = client.run_sync("sd1.5-img2img", image=image, prompt="a lighthouse at dusk", samples="1",
                               num_inference_steps="25", guidance_scale="7.5", strength="0.75", seed="98877465625",
                               scheduler="DDIM", base64=False)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg", response.headers
    assert response.content[:2] == b"\xff\xd8", "a JPEG"
    assert response.headers["x-seed-value"] == "98877465625"
    assert float(response.headers["x-cost"]) > 0
    for slug, params in [
        ("sdxl-img2img", {"image": image, "prompt": "a fox", "base_model": "juggernaut", "base64": True}),
        ("sdxl1.0-txt2img", {"prompt": "a fox", "style": "cinematic", "img_width": 896, "img_height": 1152, "refiner": "yes"}),
        ("sd3-med-img2img", {"image": image, "prompt": "a fox", "sampler": "euler", "scheduler": "karras"}),
    ]:
        body = client.run_sync(slug, **params).json()
        assert body["status"] == "Success" and body["image_format"] == "jpeg", body
        assert base64.b64decode(body["image"])[:2] == b"\xff\xd8", slug
    print("segmind sdk: images ok")
elif mode == "errors":
    expect_error(401, "API key is invalid or may have expired",
                 lambda: SegmindClient(api_key="SG_wrong", base_url=client.base_url).run_sync("sd1.5-img2img", prompt="x"))
    expect_error(401, "Missing Authorization or x-api-key",
                 lambda: SegmindClient(api_key="", base_url=client.base_url).run_sync("sd1.5-img2img", prompt="x"))
    expect_error(404, "Model 'sd9-img2img' does not exist", lambda: client.run_sync("sd9-img2img", prompt="x"))
    expect_error(422, "image: is required; samples: must be between 1 and 4, got 9",
                 lambda: client.run_sync("sd1.5-img2img", prompt="x", samples=9))
    expect_error(400, "image: Invalid image URL or path: not a JPEG, PNG, WebP or GIF image",
                 lambda: client.run_sync("sd1.5-img2img", prompt="x", image=base64.b64encode(b"plain text").decode()))
    print("segmind sdk: errors ok")
elif mode == "backend-down":
    expect_error(502, "out of memory on the GPU", lambda: client.run_sync("sdxl1.0-txt2img", prompt="x"))
    print("segmind sdk: backend-down ok")
