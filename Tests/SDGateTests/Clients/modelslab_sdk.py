"""ModelsLab's official Python SDK (PyPI modelslab-py) unmodified but for its base_url, and a
client with typed models written from ModelsLab's documentation (pydantic: integer `id` and
`meta.seed`), against a running sdgate.

Usage: modelslab_sdk.py PORT KEY MODE [ARGS]. Modes:
  sdk TXT2IMG_MODEL SIZE IMG2IMG_MODEL   text_to_image, image_to_image and fetch through the SDK;
                                          each answer validated by the typed models; images downloaded
  bad                                     every bad-input class of v6, each an error in ModelsLab's shape (HTTP 200,
                                          but for the server's own refusal of a body too large, 413)
  typed STATUS                            one v3 and one v6 text2img call, and their fetch, each validated
                                          (STATUS: the status the calls answer, success or processing)
Prints "modelslab: MODE ok"; an assertion or validation error otherwise."""
import base64
import struct
import sys
import urllib.request
import zlib
from typing import List, Literal, Optional

import requests
from modelslab_py.core.apis.community import Community
from modelslab_py.core.client import Client
from modelslab_py.schemas.community import Image2Image, Text2Image
from pydantic import BaseModel

port, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}/api/"


class Meta(BaseModel):
    """ModelsLab's `meta`, as its documentation shows it (`"seed": 2411039070`)."""
    prompt: str
    seed: int
    W: int
    H: int
    steps: int
    n_samples: int


class Success(BaseModel):
    status: Literal["success"]
    id: int
    output: List[str]
    proxy_links: List[str]
    generationTime: float
    meta: Meta


class Processing(BaseModel):
    status: Literal["processing"]
    id: int
    eta: float
    fetch_result: str
    future_links: List[str]
    meta: Meta
    track_id: Optional[str] = None


def png(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes([(x * 5 + y) % 256 for x in range(width * 3)]) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def typed(answer):
    return Success.model_validate(answer) if answer.get("status") == "success" else Processing.model_validate(answer)


def downloaded(url):
    with urllib.request.urlopen(url) as answer:
        data = answer.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" or data[:2] == b"\xff\xd8", url
    return data


if mode == "sdk":
    txt2img_model, size, img2img_model = sys.argv[4], int(sys.argv[5]), sys.argv[6]
    client = Client(api_key=key, fetch_retry=60, fetch_timeout=1)
    client.base_url = base
    api = Community(client)
    made = typed(api.text_to_image(Text2Image(prompt="a lighthouse at dusk", model_id=txt2img_model, width=size,
                                              height=size, samples=1, num_inference_steps=20, seed=12345)))
    assert made.meta.seed == 12345, made.meta
    fetched = Success.model_validate(api.fetch(str(made.id)))
    assert fetched.id == made.id and fetched.output, fetched
    downloaded(fetched.output[0])
    init = "data:image/png;base64," + base64.b64encode(png(64, 48)).decode()
    edited = typed(api.image_to_image(Image2Image(prompt="the same at night", model_id=img2img_model, init_image=init,
                                                  num_inference_steps=20, strength=0.5)))
    fetched = Success.model_validate(api.fetch(str(edited.id)))
    downloaded(fetched.output[0])
elif mode == "typed":
    expected = sys.argv[4]
    for api, path, body in [("v3", "v3/text2img", {"width": 512, "height": 512}), ("v6", "v6/images/text2img", {"model_id": "sdxl"})]:
        answer = requests.post(base + path, json={"key": key, "prompt": "a fox", "seed": 3_000_000_000, **body}, timeout=60).json()
        assert answer["status"] == expected, answer
        first = typed(answer)
        assert first.meta.seed == 3_000_000_000, first.meta
        if isinstance(first, Processing):
            assert first.fetch_result == f"{base}{'v3/fetch' if api == 'v3' else 'v6/images/fetch'}/{first.id}", first.fetch_result
        # Both ways of naming the job: in the path, and as request_id in the body (an integer).
        fetch = base + ("v3/fetch" if api == "v3" else "v6/images/fetch")
        by_path = typed(requests.post(f"{fetch}/{first.id}", json={"key": key}, timeout=60).json())
        by_body = typed(requests.post(fetch, json={"key": key, "request_id": first.id}, timeout=60).json())
        assert by_path.id == first.id and by_body.id == first.id, (by_path, by_body)
elif mode == "bad":
    import http.client
    import json

    def refused(path, body, words, field=None, raw=None, length=None, status=200, at_most=None):
        connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        data = raw if raw is not None else json.dumps({"key": key, **body}).encode()
        connection.putrequest("POST", f"/api/{path}")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(data) if length is None else length))
        connection.endheaders()
        if length is None:
            connection.send(data)
        response = connection.getresponse()
        answer_bytes = response.read()
        assert at_most is None or len(answer_bytes) <= at_most, f"{path}: {len(answer_bytes)} bytes: {answer_bytes[:300]}"
        answer = json.loads(answer_bytes)
        assert response.status == status and answer["status"] == "error", f"{path} {body}: {response.status} {answer}"
        message = answer["message"]
        if field:
            assert isinstance(message, dict) and any(words in text for text in message.get(field, [])), f"{field}: {answer}"
        else:
            assert words in (message if isinstance(message, str) else json.dumps(message)), f"{words!r}: {answer}"
        assert answer["messege"] == message, answer

    txt, img = "v6/images/text2img", "v6/images/img2img"
    init = "data:image/png;base64," + base64.b64encode(png(64, 48)).decode()
    refused(txt, {"prompt": "a fox", "model_id": "midjourney-v9"}, "Model 'midjourney-v9' does not exist")
    # Quoted cut (whole, a 6 MB name was a 12 MB answer: `message` and `messege`), and long ASCII is
    # an unknown name, not "not text".
    for name in ["x" * 100_000, "é" * 100_000]:
        refused(txt, {"prompt": "a fox", "model_id": name}, f"Model '{name[:40]}…' does not exist", at_most=1024)
    refused(txt, {"prompt": "a fox", "model_id": 42}, "must be text", field="model_id")
    refused(txt, {"prompt": "a fox", "model_id": "sd-1.5"}, "no text2img model", field="model_id")
    refused(txt, {"prompt": "a fox", "width": "wide"}, "whole number", field="width")
    refused(txt, {"prompt": "a fox", "width": 333, "height": 333}, "333x333 is not one of the sizes")
    refused(txt, {"prompt": "a fox", "samples": 50}, "between", field="samples")
    refused(txt, {"prompt": "a fox", "scheduler": "KarrasVeScheduler"}, "cannot run", field="scheduler")
    refused(txt, {"prompt": "a fox", "safety_checker": "yes"}, "safety_checker")
    refused(txt, {"model_id": "sdxl"}, "is required", field="prompt")
    refused(img, {"prompt": "a fox"}, "is required", field="init_image")
    refused(img, {"prompt": "a fox", "init_image": "bm90IGFuIGltYWdl"}, "init_image")
    refused(img, {"prompt": "a fox", "init_image": init, "strength": 7}, "between", field="strength")
    refused(txt, {}, "JSON object", raw=b'{"key": "' + key.encode() + b'", "prompt": ')
    refused(txt, {}, "too large", length=64 << 20, status=413)  # the server's own refusal keeps its status
    refused("v6/images/fetch/999999", {}, "not found")
    refused("v6/images/fetch", {"request_id": "../../etc"}, "not found")
    refused("v6/images/fetch", {}, "request_id")
    with_no_key = requests.post(base + txt, json={"prompt": "a fox"}, timeout=30).json()
    assert with_no_key["status"] == "error" and with_no_key["message"] == "Invalid Api Key", with_no_key
else:
    raise SystemExit(f"unknown mode {mode}")
print(f"modelslab: {mode} ok")
