"""Shared fixtures: tiny pipelines built once per session, a models file over them, a worker engine."""

from __future__ import annotations

import os

# One thread: on small shared machines a second OpenMP thread stalls generations by seconds, and the
# thread count changes floating-point results. Set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import base64
import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

WORKER_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(WORKER_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sdgate_worker.catalog import load_catalog  # noqa: E402
from sdgate_worker.engine import Engine  # noqa: E402
from sdgate_worker.faults import FaultInjector  # noqa: E402
from sdgate_worker.model_store import ModelStore  # noqa: E402
from sdgate_worker.runtime import quiet_libraries  # noqa: E402

import tiny_pipelines  # noqa: E402

torch.set_num_threads(1)
quiet_libraries()

MODELS_YAML = tiny_pipelines.MODELS_YAML


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny-pipelines")
    tiny_pipelines.build_all(root)
    return root


@pytest.fixture(scope="session")
def models_file(tiny_root) -> Path:
    path = tiny_root / "models.yaml"
    path.write_text(MODELS_YAML)
    return path


def make_engine(models_file: Path, budget: int | None = None, faults: bool = False,
                hf_cache: str | None = None) -> Engine:
    catalog = load_catalog(models_file)
    store = ModelStore(catalog, torch.device("cpu"), torch.float32, budget, cache_dir=hf_cache)
    return Engine(catalog, store, FaultInjector(faults))


@pytest.fixture(scope="session")
def engine(models_file) -> Engine:
    """One engine for the whole session, so each tiny model is loaded once."""
    return make_engine(models_file)


def png_base64(width: int = 64, height: int = 64, seed: int = 0) -> str:
    """A smooth random test picture, as the gateway would send an input image."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# The four generations of the issue, as the gateway would send them (small and few steps).
BASE_REQUESTS = {
    "sd1.5-img2img": dict(model="sd1.5-img2img", family="sd1.5", task="image-to-image", strength=0.75),
    "sdxl-img2img": dict(model="sdxl-img2img", family="sdxl", task="image-to-image", strength=0.75,
                         base_model="sdxl"),
    "sdxl1.0-txt2img": dict(model="sdxl1.0-txt2img", family="sdxl", task="text-to-image", refiner=True,
                            high_noise_fraction=0.8, style="base"),
    "sd3-med-img2img": dict(model="sd3-med-img2img", family="sd3", task="image-to-image", strength=0.75),
}


def request_json(base: str, **overrides) -> dict:
    """A generate request body like one of BASE_REQUESTS, with `overrides` (None removes a field)."""
    body = dict(prompt="a lighthouse at dusk", negative_prompt="blurry", width=64, height=64, samples=1,
                steps=4, guidance_scale=5.0, seed=42, output_format="png", **BASE_REQUESTS[base])
    if body["task"] == "image-to-image":
        body["image"] = png_base64(body["width"], body["height"])
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def decode_image(entry: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(entry["data"])))
