"""Batching through a real worker process: it takes up to --max-batch requests at once, runs the waiting
compatible ones as one call, answers each with its own images, and says `busy` beyond."""

import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import decode_image, request_json
from test_batching import assert_same_images
from test_http_protocol import POLL_LIMIT_SECONDS, wait_until
from worker_process import WORKER_ROOT, WorkerProcess


@pytest.fixture(scope="module")
def batching_worker(models_file):
    worker = WorkerProcess(models_file, "127.0.0.1:0", "--enable-fault-injection", "--max-batch", "3",
                           "--batch-window-ms", "300")
    yield worker
    worker.stop()


def in_background(worker, body, outcome, name):
    thread = threading.Thread(target=lambda: outcome.update({name: worker.request("POST", "/generate", body)}))
    thread.start()
    return thread


def pixels(answer):
    return [np.asarray(decode_image(entry), dtype=np.int16) for entry in answer["images"]]


def test_waiting_requests_run_as_one_batch_and_a_request_beyond_max_batch_is_busy(batching_worker):
    worker = batching_worker
    assert worker.request("GET", "/health")[1]["max_batch"] == 3
    first = request_json("sd1.5-img2img", prompt="a fox", seed=11)
    second = request_json("sd1.5-img2img", prompt="a boat", negative_prompt="fog", seed=12, samples=2)
    outcome = {}
    # A stalled request (run alone: fault injection is never batched) holds the device while two others wait.
    threads = [in_background(worker, request_json("sd1.5-img2img", inject_fault="stall"), outcome, "stalled")]
    try:
        wait_until(lambda: worker.request("GET", "/health")[1]["busy"], "the stalled generation to start")
        threads.append(in_background(worker, first, outcome, "first"))
        threads.append(in_background(worker, second, outcome, "second"))
        wait_until(lambda: worker.request("GET", "/health")[1]["held"] == 3, "three requests held")
        status, body = worker.request("POST", "/generate", request_json("sd1.5-img2img"))
        assert status == 503 and body["error"]["code"] == "busy"
    finally:
        worker.request("POST", "/faults/release", {})
        for thread in threads:
            thread.join(POLL_LIMIT_SECONDS)
    assert outcome["stalled"][0] == 200 and outcome["stalled"][1]["batch_size"] == 1
    (status_1, together_1), (status_2, together_2) = outcome["first"], outcome["second"]
    assert status_1 == status_2 == 200
    assert together_1["batch_size"] == together_2["batch_size"] == 2
    assert [together_1["seed"], len(together_1["images"]), together_2["seed"], len(together_2["images"])] == [11, 1, 12, 2]
    # Sent one at a time, each runs alone, and gets the same pictures.
    for body, together in ((first, together_1), (second, together_2)):
        status, alone = worker.request("POST", "/generate", body)
        assert status == 200 and alone["batch_size"] == 1
        assert_same_images(pixels(together), pixels(alone))
    assert worker.request("GET", "/health")[1]["held"] == 0


@pytest.mark.parametrize("flag, value", [("--max-batch", "0"), ("--max-batch", "65"), ("--max-batch", "two"),
                                         ("--batch-window-ms", "-1"), ("--batch-window-ms", "nan")])
def test_out_of_range_batching_flags_exit_with_status_2(models_file, flag, value):
    done = subprocess.run([sys.executable, "-m", "sdgate_worker", "--models", str(models_file), flag, value],
                          cwd=WORKER_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "" and flag in done.stderr


def test_a_member_whose_requests_cannot_share_a_call_does_not_hold_the_worker_while_another_waits(batching_worker):
    worker = batching_worker
    outcome = {}
    threads = [in_background(worker, request_json("sd1.5-img2img", inject_fault="stall", member="a"), outcome, "a1")]
    try:
        wait_until(lambda: worker.request("GET", "/health")[1]["busy"], "the stalled generation to start")
        # a's second request cannot join b's (another size); b's came last, and a was just served.
        threads.append(in_background(worker, request_json("sd1.5-img2img", width=72, member="a"), outcome, "a2"))
        wait_until(lambda: worker.request("GET", "/health")[1]["held"] == 2, "a's second request held")
        threads.append(in_background(worker, request_json("sd1.5-img2img", width=80, member="b"), outcome, "b1"))
        wait_until(lambda: worker.request("GET", "/health")[1]["held"] == 3, "b's request held")
    finally:
        worker.request("POST", "/faults/release", {})
        for thread in threads:
            thread.join(POLL_LIMIT_SECONDS)
    calls = {name: answer["batch_number"] for name, (status, answer) in outcome.items() if status == 200}
    assert len(calls) == 3 and calls["a1"] < calls["b1"] < calls["a2"], calls


def test_a_cancelled_request_of_a_batch_gets_its_images_as_the_batch_runs_on_and_a_batch_all_cancelled_stops(
        batching_worker):
    worker = batching_worker

    def batch_of_two_with_cancels(cancelled):
        """Two batchable requests wait behind a stalled one; `cancelled` of them are cancelled while they wait."""
        bodies = {name: request_json("sd1.5-img2img", prompt=name, seed=seed, steps=6, request_id=f"batch-{name}")
                  for name, seed in (("fox", 21), ("owl", 22))}
        outcome = {}
        threads = [in_background(worker, request_json("sd1.5-img2img", inject_fault="stall"), outcome, "stalled")]
        try:
            wait_until(lambda: worker.request("GET", "/health")[1]["busy"], "the stalled generation to start")
            threads += [in_background(worker, body, outcome, name) for name, body in bodies.items()]
            wait_until(lambda: worker.request("GET", "/health")[1]["held"] == 3, "both requests held")
            for name in cancelled:
                assert worker.request("POST", "/cancel", {"request_id": f"batch-{name}"})[0] == 200
        finally:
            worker.request("POST", "/faults/release", {})
            for thread in threads:
                thread.join(POLL_LIMIT_SECONDS)
        return outcome

    # One of the two cancelled: the batch runs on for the other, and both get their images (the
    # cancelled one's were made all the same: the gateway charges them, and does not deliver them).
    outcome = batch_of_two_with_cancels(["fox"])
    for name in ("fox", "owl"):
        status, answer = outcome[name]
        assert status == 200 and answer["batch_size"] == 2 and len(answer["images"]) == 1, answer

    # Both cancelled: the call stops after its first step.
    outcome = batch_of_two_with_cancels(["fox", "owl"])
    for name in ("fox", "owl"):
        status, answer = outcome[name]
        assert status == 409 and "stopped after 1 of 6 steps" in answer["error"]["message"], answer
    assert worker.request("GET", "/health")[1]["held"] == 0
