"""Device, precision and library set-up, decided once at start-up."""

from __future__ import annotations

import logging
import os

import torch


def quiet_libraries() -> None:
    """No progress bars or advice on stderr: the gateway keeps worker logs, and they should be ours."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging
    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    logging.getLogger("httpx").setLevel(logging.WARNING)


def choose_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is visible")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def choose_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def default_budget(device: torch.device) -> int | None:
    """85% of the GPU for weights; the rest is left for activations (the VAE decode of a 1024² image
    alone takes several GB)."""
    if device.type != "cuda":
        return None
    return int(torch.cuda.get_device_properties(device).total_memory * 0.85)
