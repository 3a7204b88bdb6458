"""Counts the denoiser's forward calls during a generation (one per step for first-order schedulers,
as classifier-free guidance runs both halves in one batch)."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def counting(engine, weights_name: str):
    calls = []
    loaded = engine.store.acquire([weights_name])[0]
    module = getattr(loaded.pipeline, "unet", None) or loaded.pipeline.transformer
    handle = module.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        yield calls
    finally:
        handle.remove()
