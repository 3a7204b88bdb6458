"""The protocol end to end, through real worker processes on 127.0.0.1:0 and on a Unix socket."""

import base64
import threading
import time

import pytest

from conftest import request_json
from worker_process import WorkerProcess

POLL_LIMIT_SECONDS = 60


@pytest.fixture(scope="module")
def tcp_worker(models_file):
    worker = WorkerProcess(models_file, "127.0.0.1:0", "--enable-fault-injection", "--max-body-mb", "1")
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def unix_worker(models_file, tmp_path_factory):
    # Unix socket paths are limited to about 100 bytes; keep it short.
    path = tmp_path_factory.mktemp("sock") / "w.sock"
    worker = WorkerProcess(models_file, f"unix:{path}")
    yield worker
    worker.stop()


def test_the_listening_line_names_the_port_actually_bound(tcp_worker):
    host, _, port = tcp_worker.address.rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0


@pytest.mark.parametrize("worker_name", ["tcp_worker", "unix_worker"])
def test_health_models_and_generate(request, worker_name):
    worker = request.getfixturevalue(worker_name)
    status, health = worker.request("GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["busy"] is False and health["device"] == "cpu"
    status, models = worker.request("GET", "/models")
    assert status == 200
    assert {m["name"] for m in models["models"]} >= {"sd1.5-img2img", "sdxl-img2img", "sdxl1.0-txt2img",
                                                     "sd3-med-img2img"}
    status, result = worker.request("POST", "/generate", request_json("sd1.5-img2img", seed=2**64 - 1, samples=2))
    assert status == 200
    assert result["seed"] == 2**64 - 1 and len(result["images"]) == 2 and result["generation_time"] > 0
    assert base64.b64decode(result["images"][0]["data"])[:4] == b"\x89PNG"
    status, models = worker.request("GET", "/models")
    assert [w["name"] for w in models["loaded_weights"]] == ["sd15"]


def test_a_bad_request_is_typed_and_the_worker_serves_on(tcp_worker):
    status, body = tcp_worker.request("POST", "/generate", raw=b"{not json")
    assert status == 400 and body["error"]["code"] == "invalid_request"
    status, body = tcp_worker.request("POST", "/generate", request_json("sd1.5-img2img", steps=0, width=13))
    assert status == 400 and "steps" in body["error"]["message"] and "width" in body["error"]["message"]
    status, body = tcp_worker.request("POST", "/generate", request_json("sd1.5-img2img", model="nope"))
    assert status == 404 and body["error"]["code"] == "unknown_model"
    status, body = tcp_worker.request("POST", "/generate", request_json("sd3-med-img2img", sampler="lcm"))
    assert status == 422 and body["error"]["code"] == "unsupported"
    assert tcp_worker.request("POST", "/generate", request_json("sd1.5-img2img"))[0] == 200


def test_routes_and_methods(tcp_worker):
    assert tcp_worker.request("GET", "/nowhere")[1]["error"]["code"] == "not_found"
    status, body = tcp_worker.request("GET", "/generate")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


def test_a_body_over_the_limit_is_refused_unread(tcp_worker):
    big = request_json("sd1.5-img2img", prompt="x" * 10, image="A" * (2 * 2**20))
    status, body = tcp_worker.request("POST", "/generate", big)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert tcp_worker.request("GET", "/health")[0] == 200


def test_injected_out_of_memory_is_typed_and_the_worker_serves_on(tcp_worker):
    status, body = tcp_worker.request("POST", "/generate", request_json("sdxl1.0-txt2img", inject_fault="out_of_memory"))
    assert status == 503 and body["error"]["code"] == "out_of_memory"
    status, result = tcp_worker.request("POST", "/generate", request_json("sdxl1.0-txt2img"))
    assert status == 200 and len(result["images"]) == 1


def wait_until(condition, what: str):
    deadline = time.monotonic() + POLL_LIMIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_health_answers_while_a_generation_runs_and_a_second_one_is_busy(tcp_worker):
    outcome = {}
    stalled = threading.Thread(target=lambda: outcome.update(
        result=tcp_worker.request("POST", "/generate", request_json("sd1.5-img2img", inject_fault="stall"))))
    stalled.start()
    try:
        wait_until(lambda: tcp_worker.request("GET", "/health")[1]["busy"], "the generation to start")
        status, body = tcp_worker.request("POST", "/generate", request_json("sd1.5-img2img"))
        assert status == 503 and body["error"]["code"] == "busy"
    finally:
        tcp_worker.request("POST", "/faults/release", {})
        stalled.join(POLL_LIMIT_SECONDS)
    assert outcome["result"][0] == 200
    assert tcp_worker.request("GET", "/health")[1]["busy"] is False


def test_a_broken_models_file_exits_with_status_2_and_says_why(tmp_path):
    import subprocess
    import sys
    from worker_process import WORKER_ROOT
    broken = tmp_path / "models.yaml"
    broken.write_text("weights: { a: { kind: sd2, source: org/a } }\nmodels: { m: { weights: a } }\n")
    done = subprocess.run([sys.executable, "-m", "sdgate_worker", "--models", str(broken)], cwd=WORKER_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "" and "weights.a.kind" in done.stderr


def cancelled_in_its_first_step(worker, steps, request_id):
    """The answer to a generation of `steps` steps cancelled while its first step is held in the
    denoiser (a fault), as `(status, body)`."""
    outcome = {}
    body = request_json("sd1.5-img2img", inject_fault="stall", steps=steps, strength=1.0, request_id=request_id)
    stalled = threading.Thread(target=lambda: outcome.update(result=worker.request("POST", "/generate", body)))
    stalled.start()
    try:
        wait_until(lambda: worker.request("GET", "/health")[1]["busy"], "the generation to start")
        assert worker.request("POST", "/cancel", {"request_id": request_id}) == (200, {"cancelled": request_id})
    finally:
        worker.request("POST", "/faults/release", {})
        stalled.join(POLL_LIMIT_SECONDS)
    return outcome["result"]


def test_a_cancel_that_arrives_in_the_last_step_is_too_late_and_the_images_are_made(tcp_worker):
    """Only the decode is left to save once the last step has begun: the images are made and
    answered, and the gateway charges them without delivering them."""
    status, answer = cancelled_in_its_first_step(tcp_worker, steps=1, request_id="job-last")
    assert status == 200 and len(answer["images"]) == 1, answer


def test_a_cancel_stops_the_generation_after_the_step_it_arrives_in_and_the_worker_serves_on(tcp_worker):
    status, answer = cancelled_in_its_first_step(tcp_worker, steps=40, request_id="job-1")
    assert status == 409 and answer["error"]["code"] == "cancelled"
    assert "stopped after 1 of 40 steps" in answer["error"]["message"]
    assert tcp_worker.request("GET", "/health")[1]["busy"] is False

    # Bad cancels are typed; the worker serves on, and a cancel for another id stops nothing.
    for bad in ({}, {"request_id": 5}, {"request_id": ""}, {"request_id": "x" * 101}):
        status, error = tcp_worker.request("POST", "/cancel", bad)
        assert status == 400 and error["error"]["code"] == "invalid_request"
    assert tcp_worker.request("GET", "/cancel")[0] == 405
    assert tcp_worker.request("POST", "/cancel", {"request_id": "someone-else"})[0] == 200
    status, result = tcp_worker.request("POST", "/generate", request_json("sd1.5-img2img", request_id="job-2"))
    assert status == 200 and len(result["images"]) == 1
