"""The official OpenAI Python SDK (PyPI openai) unmodified against a running sdgate, base_url changed.

Usage: openai_sdk.py PORT KEY MODE [ARGS]. Modes:
  images SIZE       generate with b64_json (n=2) and with url (the link is fetched), edit a PNG file,
                    make a variation, list the models
  local SIZE        on real workers: a generation with b64_json and one with url, an edit of a PNG
                    file, and a refusal each as AuthenticationError and BadRequestError
  errors            each refusal raised as the SDK's own exception class, with OpenAI's fields
  poor              the key cannot pay: RateLimitError with code insufficient_quota, not retried
  limited           the key's second call within its rate: RateLimitError with code rate_limit_exceeded
Prints "openai sdk: MODE ok" on success; an assertion error otherwise."""
import base64
import io
import struct
import sys
import urllib.request
import zlib

import openai
from openai import OpenAI

port, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
base_url = f"http://127.0.0.1:{port}/v1"
# No retries: each refusal must reach the test as it was answered.
client = OpenAI(api_key=key, base_url=base_url, max_retries=0)


def png(width, height):
    """A small, real PNG (decodable by any image library) of width x height."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes([(x * 7 + y * 3) % 256 for x in range(width * 3)]) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def is_image(data):
    return data[:8] == b"\x89PNG\r\n\x1a\n" or data[:2] == b"\xff\xd8"


def expect(exception, call, code=None, param=None, status=None):
    try:
        call()
    except exception as error:
        body = error.body if isinstance(error.body, dict) else {}
        assert code is None or error.code == code, f"code {error.code!r}, expected {code!r}: {body}"
        assert param is None or error.param == param, f"param {error.param!r}, expected {param!r}: {body}"
        assert status is None or error.status_code == status, f"status {error.status_code}, expected {status}"
        assert error.response.headers.get("x-request-id"), "every answer names its request"
        return error
    raise AssertionError(f"no {exception.__name__}")


if mode == "images":
    size = sys.argv[4]
    generated = client.images.generate(model="dall-e-3", prompt="a lighthouse at dusk", n=2, size=size,
                                       response_format="b64_json")
    assert len(generated.data) == 2, generated
    assert all(is_image(base64.b64decode(item.b64_json)) for item in generated.data)
    raw = client.images.with_raw_response.generate(prompt="a fox", size=size, response_format="url")
    assert float(raw.headers["x-remaining-credits"]) >= 0 and raw.headers["x-request-id"]
    linked = raw.parse()
    assert linked.data[0].url.startswith(f"http://127.0.0.1:{port}/generations/"), linked.data[0].url
    with urllib.request.urlopen(linked.data[0].url) as answer:
        assert is_image(answer.read())
    edited = client.images.edit(model="gpt-image-1", image=("photo.png", io.BytesIO(png(640, 480)), "image/png"),
                                prompt="the same photo at night", response_format="b64_json")
    assert len(edited.data) == 1 and is_image(base64.b64decode(edited.data[0].b64_json))
    varied = client.images.create_variation(image=("photo.png", io.BytesIO(png(640, 480)), "image/png"),
                                            response_format="b64_json")
    assert is_image(base64.b64decode(varied.data[0].b64_json))
    names = [model.id for model in client.models.list()]
    assert "dall-e-3" in names and "sdxl1.0-txt2img" in names, names
    assert client.models.retrieve("dall-e-3").id == "dall-e-3"
elif mode == "local":
    generated = client.images.generate(prompt="a lighthouse", size=sys.argv[4], response_format="b64_json")
    assert is_image(base64.b64decode(generated.data[0].b64_json)) and generated.size == sys.argv[4], generated.size
    linked = client.images.generate(prompt="a lighthouse", size=sys.argv[4], response_format="url")
    with urllib.request.urlopen(linked.data[0].url) as answer:
        assert is_image(answer.read())
    expect(openai.AuthenticationError, lambda: OpenAI(api_key="sk-wrong", base_url=base_url, max_retries=0)
           .images.generate(prompt="a fox"), code="invalid_api_key", status=401)
    expect(openai.BadRequestError, lambda: client.images.generate(prompt="a fox", size="300x300"), param="size", status=400)
    edited = client.images.edit(image=("photo.png", io.BytesIO(png(64, 48)), "image/png"), prompt="the same at night",
                                response_format="b64_json")
    assert is_image(base64.b64decode(edited.data[0].b64_json)) and edited.size == "64x48", edited.size
elif mode == "errors":
    error = expect(openai.AuthenticationError, lambda: OpenAI(api_key="sk-wrong", base_url=base_url, max_retries=0)
                   .images.generate(prompt="a fox"), code="invalid_api_key", status=401)
    assert error.type == "invalid_request_error"
    expect(openai.BadRequestError, lambda: client.images.generate(prompt="a fox", size="640x480"), param="size", status=400)
    expect(openai.BadRequestError, lambda: client.images.generate(prompt="a fox", size="huge"), param="size", status=400)
    expect(openai.BadRequestError, lambda: client.images.generate(prompt="a fox", n=9), param="n", status=400)
    expect(openai.BadRequestError, lambda: client.images.generate(prompt="", n=1), param="prompt", status=400)
    expect(openai.BadRequestError, lambda: client.images.generate(prompt="a fox", extra_body={"n": "two"}), param="n")
    expect(openai.BadRequestError, lambda: client.images.generate(prompt="a fox", response_format="gif"),
           param="response_format")
    expect(openai.NotFoundError, lambda: client.images.generate(model="dall-e-9", prompt="a fox"),
           code="model_not_found", param="model", status=404)
    expect(openai.NotFoundError, lambda: client.models.retrieve("dall-e-9"), code="model_not_found", status=404)
    expect(openai.BadRequestError, lambda: client.images.edit(model="dall-e-3", prompt="x",
                                                              image=("a.png", io.BytesIO(png(64, 64)), "image/png")),
           param="model")
    expect(openai.BadRequestError, lambda: client.images.edit(
        prompt="x", image=("a.png", io.BytesIO(png(64, 64)), "image/png"),
        mask=("m.png", io.BytesIO(png(64, 64)), "image/png")), param="mask", status=400)
    expect(openai.BadRequestError, lambda: client.images.edit(
        prompt="x", image=[("a.png", io.BytesIO(png(64, 64)), "image/png"), ("b.png", io.BytesIO(png(64, 64)), "image/png")]),
           param="image")
    expect(openai.BadRequestError, lambda: client.images.edit(
        prompt="x", image=("a.png", io.BytesIO(b"not an image at all"), "image/png")), param="image")
elif mode == "poor":
    expect(openai.RateLimitError, lambda: OpenAI(api_key=key, base_url=base_url)  # default retries: not retried
           .images.generate(prompt="a fox", response_format="b64_json"), code="insufficient_quota", status=429)
elif mode == "limited":
    client.images.generate(prompt="a fox", response_format="b64_json")
    error = expect(openai.RateLimitError, lambda: client.images.generate(prompt="a fox", response_format="b64_json"),
                   code="rate_limit_exceeded", status=429)
    assert int(error.response.headers["retry-after"]) > 0
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
else:
    raise SystemExit(f"unknown mode {mode}")
print(f"openai sdk: {mode} ok")
