"""The GPU settings on the CPU path: channels-last, VAE tiling and torch.compile (with the eager backend,
which runs the compile machinery without a C++ toolchain) load and generate, the warm-up runs before the
worker listens, and /models reports memory per model."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from sdgate_worker.catalog import load_catalog
from sdgate_worker.engine import Engine
from sdgate_worker.model_store import ModelStore
from sdgate_worker.request import parse_generate_request
from sdgate_worker.tuning import Tuning, tune_pipeline

from conftest import decode_image, request_json
from test_batching import assert_same_images
from worker_process import WORKER_ROOT, WorkerProcess


def tuned_engine(models_file, tuning: Tuning) -> Engine:
    catalog = load_catalog(models_file)
    store = ModelStore(catalog, torch.device("cpu"), torch.float32, None,
                       on_load=lambda pipeline: tune_pipeline(pipeline, tuning))
    return Engine(catalog, store, tuning=tuning)


def pixels(engine, model, **fields):
    answer = engine.generate(parse_generate_request(request_json(model, **fields)))
    return [np.asarray(decode_image(entry), dtype=np.int16) for entry in answer["images"]]


@pytest.mark.parametrize("model", ["sd1.5-img2img", "sdxl1.0-txt2img"])
def test_channels_last_and_compile_keep_the_images(engine, models_file, model):
    tuned = tuned_engine(models_file, Tuning(channels_last=True, compile_backend="eager"))
    unet = tuned.store.acquire(tuned.prepare(parse_generate_request(request_json(model))).weights)[0].pipeline.unet
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert unet._compiled_call_impl is not None
    assert_same_images(pixels(tuned, model), pixels(engine, model))


def test_vae_tiling_applies_above_its_size_only(models_file):
    tuned = tuned_engine(models_file, Tuning(vae_tiling_pixels=64 * 64))
    small = pixels(tuned, "sd1.5-img2img")
    vae = tuned.store.acquire(["sd15"])[0].pipeline.vae
    assert not vae.use_tiling
    large = pixels(tuned, "sd1.5-img2img", width=128, height=72)
    assert vae.use_tiling
    assert small[0].shape == (64, 64, 3) and large[0].shape == (72, 128, 3)


def test_a_compiled_worker_warms_up_before_it_listens_and_reports_memory(models_file):
    worker = WorkerProcess(models_file, "127.0.0.1:0", "--compile", "default", "--compile-backend", "eager",
                           "--preload", "sd1.5-img2img", "--warmup-size", "64x64", "--max-batch", "2",
                           "--batch-window-ms", "5")
    try:
        status, models = worker.request("GET", "/models")
        memory = {m["name"]: m["memory"] for m in models["models"]}
        assert status == 200 and memory["sd1.5-img2img"]["weights_bytes"] > 0
        # Peak memory is measured on CUDA only.
        assert memory["sd1.5-img2img"]["peak_bytes"] is None
        status, answer = worker.request("POST", "/generate", request_json("sd1.5-img2img"))
        assert status == 200 and len(answer["images"]) == 1
    finally:
        worker.process.terminate()
        log = worker.process.stderr.read()
        worker.stop()
    assert "warmed up sd1.5-img2img at 64x64" in log


@pytest.mark.parametrize("flag, value", [("--warmup-size", "10x10"), ("--warmup-size", "big"),
                                         ("--vae-tiling-above-mp", "-1"), ("--compile", "fast")])
def test_out_of_range_tuning_flags_exit_with_status_2(models_file, flag, value):
    done = subprocess.run([sys.executable, "-m", "sdgate_worker", "--models", str(models_file), flag, value],
                          cwd=WORKER_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "" and flag in done.stderr
