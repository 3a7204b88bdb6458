"""GPU settings, decided once at start-up (flags in cli.py, defaults in runtime.py): applied to every
pipeline when its weights load, and to every generation. All of them leave the images' content alone
except VAE tiling, which decodes large images in overlapping tiles (seams are blended) so that the
decode of a large image fits in memory. Generations always run under torch.inference_mode (engine.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger("sdgate_worker.tuning")


@dataclass(frozen=True)
class Tuning:
    # UNet and VAE convolutions in NHWC, the layout tensor cores read fastest.
    channels_last: bool = False
    # Decode (and encode) images above this many pixels in tiles; None: never.
    vae_tiling_pixels: int | None = None
    # torch.compile the denoiser (UNet or SD3 transformer) with this backend; None: eager.
    compile_backend: str | None = None
    compile_mode: str | None = None


def tune_pipeline(pipeline, tuning: Tuning) -> None:
    """In place, right after loading: memory layout and compilation of the modules that run every step."""
    if tuning.channels_last:
        for name in ("unet", "vae"):
            module = getattr(pipeline, name, None)
            if module is not None:
                module.to(memory_format=torch.channels_last)
    if tuning.compile_backend is not None:
        denoiser = getattr(pipeline, "unet", None) or pipeline.transformer
        # nn.Module.compile keeps the module's class, so pipelines built over it (from_pipe) still take it.
        denoiser.compile(backend=tuning.compile_backend, mode=tuning.compile_mode)
        log.info("compiling %s with %s; the first generation of each shape compiles", type(denoiser).__name__,
                 tuning.compile_backend)


def set_vae_tiling(pipelines, width: int, height: int, tuning: Tuning) -> None:
    """Tiles the VAE for this generation when the image is large, and only then (tiling a small image
    would change it for nothing)."""
    tile = tuning.vae_tiling_pixels is not None and width * height > tuning.vae_tiling_pixels
    for pipeline in pipelines:
        vae = getattr(pipeline, "vae", None)
        if vae is None or not hasattr(vae, "enable_tiling"):
            continue
        if tile:
            vae.enable_tiling()
        else:
            vae.disable_tiling()


class PeakMemory:
    """The most device memory one generation took, per model (CUDA only; None elsewhere)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.by_model: dict[str, int] = {}

    def start(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def record(self, model: str) -> None:
        if self.cuda:
            self.by_model[model] = max(self.by_model.get(model, 0), int(torch.cuda.max_memory_allocated()))

    def of(self, model: str) -> int | None:
        return self.by_model.get(model) if self.cuda else None
