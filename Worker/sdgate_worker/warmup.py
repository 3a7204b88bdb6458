"""A short generation per preloaded model before the worker listens, so that torch.compile's compilation
(minutes on a large model) happens at start-up, not in a member's first request."""

from __future__ import annotations

import base64
import io
import logging
import time

from PIL import Image

from .request import parse_generate_request

log = logging.getLogger("sdgate_worker.warmup")

# The size each family is most asked for; --warmup-size overrides it.
DEFAULT_SIDE = {"sd1.5": 512, "sdxl": 1024, "sd3": 1024}
STEPS = 2


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    size = (int(width), int(height))
    if not all(16 <= side <= 4096 and side % 16 == 0 for side in size):
        raise ValueError("sides must be multiples of 16 between 16 and 4096")
    return size


def warm_up(engine, model_name: str, size: tuple[int, int] | None, max_batch: int) -> None:
    """One generation alone and, with batching on, one batch of `max_batch`: each batch size is a new
    shape for the compiled denoiser."""
    model = engine.catalog.models[model_name]
    width, height = size or (DEFAULT_SIDE[model.family],) * 2
    body = dict(model=model_name, prompt="warm-up", width=width, height=height, steps=STEPS, guidance_scale=5.0,
                seed=0, output_format="png")
    if model.family == "sdxl":
        body.update(task="text-to-image")
    else:
        body.update(task="image-to-image", strength=1.0, image=_gray_png(width, height))
    started = time.monotonic()
    request = parse_generate_request(body)
    engine.generate(request)
    if max_batch > 1:
        engine.run_group([engine.prepare(request)] * max_batch)
    log.info("warmed up %s at %dx%d in %.1f s", model_name, width, height, time.monotonic() - started)


def _gray_png(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
