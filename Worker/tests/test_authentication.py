"""A worker given a token serves only whoever sends it; one that other hosts could reach needs one."""

import subprocess
import sys

import pytest

from worker_process import WORKER_ROOT, WorkerProcess

TOKEN = "per-spawn-secret-0123456789"


@pytest.fixture(scope="module")
def guarded_worker(models_file):
    worker = WorkerProcess(models_file, "127.0.0.1:0", token=TOKEN)
    yield worker
    worker.stop()


GENERATE = {"model": "sd15-img2img", "prompt": "a cat", "steps": 1}


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong", f"Bearer {TOKEN}x", f"bearer {TOKEN}", TOKEN])
def test_every_route_but_health_refuses_a_missing_or_wrong_token(guarded_worker, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path, body in [("POST", "/generate", GENERATE), ("GET", "/models", None), ("GET", "/nowhere", None)]:
        status, answer = guarded_worker.request(method, path, body, headers=headers)
        assert (status, answer["error"]["code"]) == (401, "unauthorized"), (method, path)


def test_health_stays_open_and_the_token_is_accepted(guarded_worker):
    assert guarded_worker.request("GET", "/health")[0] == 200
    status, answer = guarded_worker.request("GET", "/models", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "models" in answer


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0"])
def test_listening_beyond_loopback_without_a_token_is_refused(models_file, listen):
    done = subprocess.run([sys.executable, "-m", "sdgate_worker", "--models", str(models_file), "--listen", listen],
                          cwd=WORKER_ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(WORKER_ROOT)})
    assert done.returncode == 2 and done.stdout == "" and "SDGATE_WORKER_TOKEN" in done.stderr
