"""An AUTOMATIC1111 API client written the way the popular tools call it (Open WebUI, SillyTavern,
chat bots): `requests` with HTTP Basic auth (`--api-auth user:password`, the sdgate key as the
password), model list and options first, then txt2img and img2img with a base64 init image.

Usage: a1111_client.py PORT KEY MODE [SIGNAL_FILE]. Modes:
  flow       list models, samplers, schedulers; pick a checkpoint; img2img; txt2img; the errors
  progress   a txt2img in a thread while /progress is polled; once progress shows it, SIGNAL_FILE is
             written (the test then lets the upstream answer) and the call must succeed
Prints "a1111: MODE ok" on success; an assertion error otherwise."""
import base64
import json
import os
import struct
import sys
import threading
import time
import zlib

import requests

port, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
url = f"http://127.0.0.1:{port}/sdapi/v1"
session = requests.Session()
session.auth = ("webui", key)


def png(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes([(x + y) % 256 for x in range(width * 3)]) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def ok(response):
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    return response.json()


def refused(response, status, words):
    assert response.status_code == status, f"{response.status_code}, expected {status}: {response.text}"
    assert words in response.json()["detail"], response.json()
    assert response.headers.get("x-request-id")


def is_image(text):
    data = base64.b64decode(text)
    return data[:8] == b"\x89PNG\r\n\x1a\n" or data[:2] == b"\xff\xd8"


if mode == "flow":
    titles = [model["title"] for model in ok(session.get(f"{url}/sd-models"))]
    assert "sdxl" in titles and "sd1.5" in titles, titles
    assert "Euler a" in [sampler["name"] for sampler in ok(session.get(f"{url}/samplers"))]
    assert "karras" in [scheduler["name"] for scheduler in ok(session.get(f"{url}/schedulers"))]
    for menu in ["sd-vae", "upscalers", "latent-upscale-modes", "loras"]:
        assert ok(session.get(f"{url}/{menu}")) == [], menu
    assert ok(session.get(f"{url}/options"))["sd_model_checkpoint"] == "sdxl"
    ok(session.post(f"{url}/options", json={"sd_model_checkpoint": "sd1.5", "CLIP_stop_at_last_layers": 1}))
    assert ok(session.get(f"{url}/options"))["sd_model_checkpoint"] == "sd1.5"

    init = base64.b64encode(png(640, 480)).decode()
    answer = ok(session.post(f"{url}/img2img", json={
        "init_images": [init], "prompt": "a lighthouse at night", "negative_prompt": "blurry", "steps": 25,
        "cfg_scale": 7, "denoising_strength": 0.6, "seed": 1234, "sampler_name": "Euler a", "width": 512, "height": 512,
        "batch_size": 1, "n_iter": 1, "restore_faces": False, "alwayson_scripts": {}}))
    assert len(answer["images"]) == 1 and is_image(answer["images"][0])
    info = json.loads(answer["info"])
    assert info["seed"] == 1234 and info["all_seeds"] == ["1234"] and info["sd_model_name"] == "sd1.5", info
    assert answer["parameters"]["init_images"] is None and answer["parameters"]["prompt"] == "a lighthouse at night"

    answer = ok(session.post(f"{url}/txt2img", json={
        "prompt": "a fox", "steps": 25, "cfg_scale": 7, "width": 1024, "height": 1024, "seed": 7, "sampler_name": "DPM++ 2M",
        "batch_size": 2, "n_iter": 1, "override_settings": {"sd_model_checkpoint": "sdxl"}}))
    assert len(answer["images"]) == 2 and all(is_image(image) for image in answer["images"])
    assert json.loads(answer["info"])["all_seeds"] == ["7", "8"]

    refused(requests.get(f"{url}/options", auth=("webui", "wrong")), 401, "Incorrect username or password")
    refused(session.post(f"{url}/txt2img", json={"prompt": "a fox", "sampler_name": "DPM adaptive",
                                                  "override_settings": {"sd_model_checkpoint": "sdxl"}}), 422, "DPM adaptive")
    refused(session.post(f"{url}/txt2img", json={"prompt": "a fox", "override_settings": {"sd_model_checkpoint": "nope"}}),
            404, "nope")
    refused(session.post(f"{url}/img2img", json={"prompt": "a fox"}), 422, "init_images")
    refused(session.post(f"{url}/img2img", json={"prompt": "a fox", "init_images": [init], "mask": init}), 422, "mask")
    refused(session.post(f"{url}/img2img", json={"prompt": "a fox", "init_images": [init, init]}), 422, "one input image")
    refused(session.post(f"{url}/img2img", json={"prompt": "a fox", "init_images": [init], "steps": "many"}), 422, "steps")
    refused(session.post(f"{url}/txt2img", json={"prompt": "a fox"}), 422, "txt2img")  # sd1.5 has no txt2img model
    refused(session.post(f"{url}/options", json={"sd_model_checkpoint": "nope"}), 404, "nope")
elif mode == "progress":
    signal = sys.argv[4]
    result = {}
    call = threading.Thread(target=lambda: result.update(answer=session.post(f"{url}/txt2img", json={
        "prompt": "a fox", "steps": 30, "width": 1024, "height": 1024})))
    call.start()
    deadline = time.monotonic() + 60
    while True:
        progress = ok(session.get(f"{url}/progress"))
        if progress["state"]["job_count"] == 1:
            break
        assert time.monotonic() < deadline, progress
        time.sleep(0.05)
    assert 0 <= progress["progress"] < 1 and progress["eta_relative"] >= 0, progress
    with open(signal, "w") as file:
        file.write("seen")
    call.join(60)
    assert is_image(ok(result["answer"])["images"][0])
    assert ok(session.get(f"{url}/progress"))["state"]["job_count"] == 0
else:
    raise SystemExit(f"unknown mode {mode}")
print(f"a1111: {mode} ok")
