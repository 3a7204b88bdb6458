"""Input images that would hold a worker for long are refused before they are decoded, through a real
worker process: a JPEG of more scans than any encoder writes, a format the gateway never sends; and
the decode that remains, bounded, never holds the device."""

import base64
import io
import struct
import threading

import numpy as np
import pytest
from PIL import Image

from sdgate_worker import images
from sdgate_worker.images import MAX_JPEG_SCANS
from sdgate_worker.request import parse_generate_request

from conftest import png_base64, request_json
from test_http_protocol import POLL_LIMIT_SECONDS
from worker_process import WorkerProcess

# One extra AC scan of the first component: a Huffman table whose one code stands for an end-of-band
# run of 2^14 + the next 14 bits, then a scan whose data is three such runs (98,301 empty blocks, every
# luma block of a 2048x2048 image), padded with 1 bits.
_EMPTY_RUN_TABLE = b"\xff\xc4" + struct.pack(">H", 20) + bytes([0x13, 1] + [0] * 15 + [0xE0])
_EMPTY_RUN_BITS = ("0" + "1" * 14) * 3 + "111"
_EMPTY_SCAN = (b"\xff\xda" + struct.pack(">H", 8) + bytes([1, 1, 0x03, 1, 63, 0x00])
               + int(_EMPTY_RUN_BITS, 2).to_bytes(len(_EMPTY_RUN_BITS) // 8, "big").replace(b"\xff", b"\xff\x00"))


@pytest.fixture(scope="module")
def worker(models_file):
    worker = WorkerProcess(models_file, "127.0.0.1:0")
    yield worker
    worker.stop()


def progressive_jpeg(side: int, scans: int | None = None) -> bytes:
    """A smooth picture saved by Pillow as a progressive JPEG; with `scans`, empty scans are added
    before its end until it has that many, as a crafted file would."""
    rng = np.random.default_rng(side)
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(coarse).resize((side, side), Image.Resampling.BILINEAR).save(
        buffer, format="JPEG", progressive=True, quality=80)
    data = buffer.getvalue()
    own_scans = data.count(b"\xff\xda")
    if scans is None:
        return data
    assert data.endswith(b"\xff\xd9") and scans >= own_scans
    return data[:-2] + _EMPTY_RUN_TABLE + _EMPTY_SCAN * (scans - own_scans) + b"\xff\xd9"


def generate(worker, jpeg: bytes):
    body = request_json("sd1.5-img2img", image=base64.b64encode(jpeg).decode())
    return worker.request("POST", "/generate", body, timeout=300)


@pytest.mark.parametrize("side, scans", [(64, MAX_JPEG_SCANS + 1), (1024, 20_000)])
def test_a_jpeg_of_more_scans_than_any_encoder_writes_is_refused_undecoded_and_the_next_request_runs(
        worker, side, scans):
    status, body = generate(worker, progressive_jpeg(side, scans))
    assert status == 422 and body["error"]["code"] == "unsupported"
    assert f"more than {MAX_JPEG_SCANS} scans" in body["error"]["message"]
    status, body = generate(worker, progressive_jpeg(64))
    assert status == 200 and len(body["images"]) == 1


@pytest.mark.parametrize("scans", [None, MAX_JPEG_SCANS])
def test_a_progressive_jpeg_up_to_the_scan_limit_is_decoded(worker, scans):
    jpeg = progressive_jpeg(64, scans)
    assert 1 < jpeg.count(b"\xff\xda") <= MAX_JPEG_SCANS
    status, body = generate(worker, jpeg)
    assert status == 200 and len(body["images"]) == 1


@pytest.mark.parametrize("format_name, options", [("TIFF", {"compression": "jpeg"}), ("BMP", {})])
def test_an_image_in_a_format_the_gateway_never_sends_is_not_decoded(worker, format_name, options):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 90, 160)).save(buffer, format=format_name, **options)
    status, body = generate(worker, buffer.getvalue())
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert "not a decodable image" in body["error"]["message"]


def test_a_request_whose_image_is_being_decoded_holds_neither_the_device_nor_the_next_request(engine, monkeypatch):
    slow_image = png_base64(seed=7)
    decoding, decoded_may_go_on = threading.Event(), threading.Event()
    real_decode = images.decode_input_image

    # The real decoder, held at its start for the first request only: the one way to look at the
    # worker while a decode is under way, whatever the machine's speed.
    def held_decode(data, width, height):
        if data == slow_image:
            decoding.set()
            decoded_may_go_on.wait(POLL_LIMIT_SECONDS)
        return real_decode(data, width, height)

    monkeypatch.setattr(images, "decode_input_image", held_decode)
    outcome = {}
    slow = threading.Thread(target=lambda: outcome.update(slow=engine.generate(
        parse_generate_request(request_json("sd1.5-img2img", image=slow_image)))))
    slow.start()
    try:
        assert decoding.wait(POLL_LIMIT_SECONDS)
        assert not engine.busy
        assert len(engine.generate(parse_generate_request(request_json("sd1.5-img2img")))["images"]) == 1
    finally:
        decoded_may_go_on.set()
        slow.join(POLL_LIMIT_SECONDS)
    assert len(outcome["slow"]["images"]) == 1
