"""The four generations the worker runs, one function each, on already loaded weights.

Each returns float images of shape (samples, height, width, 3) in [0, 1], unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers import (
    StableDiffusion3Img2ImgPipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionXLImg2ImgPipeline,
)
from PIL import Image

from .cancellation import StepCheck
from .errors import unsupported
from .model_store import LoadedWeights
from .request import GenerateRequest
from .sd3_samplers import flow_plan
from .sd_schedulers import epsilon_scheduler
from .styles import apply_style

# The contract's defaults, for a request that leaves them out.
DEFAULT_HIGH_NOISE_FRACTION = 0.8
DEFAULT_REFINER_STRENGTH = 0.2
DEFAULT_IMG2IMG_STRENGTH = 0.75


@dataclass
class Run:
    """One generation's inputs, resolved by the engine."""
    request: GenerateRequest
    generators: list[torch.Generator]
    image: Image.Image | None = None
    # "np" for images; "latent" lets the sampler-maths test read the final latents.
    output_type: str = "np"
    # Checked by the pipeline after each denoising step (diffusers' callback_on_step_end); it raises to stop.
    step_check: StepCheck | None = None


def epsilon_img2img_steps(steps: int, strength: float) -> int:
    # What diffusers' SD 1.5 / SDXL img2img runs: int(steps * strength).
    return min(int(steps * strength), steps)


def sd3_img2img_steps(steps: int, strength: float) -> int:
    # SD3's img2img rounds the other way: steps - int(steps - steps * strength).
    return steps - int(max(steps - min(steps * strength, steps), 0))


def _common(run: Run, last_call: bool = True) -> dict:
    """The arguments every pipeline call takes; `last_call` False for a base model that a refiner follows."""
    r = run.request
    common = dict(num_images_per_prompt=r.samples, guidance_scale=r.guidance_scale, generator=run.generators)
    if run.step_check is not None:
        common["callback_on_step_end"] = run.step_check.for_call(last_call)
    return common


def _with_scheduler(pipe, scheduler):
    pipe.scheduler = scheduler
    return pipe


def sd15_img2img(base: LoadedWeights, run: Run) -> np.ndarray:
    r = run.request
    pipe = _with_scheduler(base.view(StableDiffusionImg2ImgPipeline),
                           epsilon_scheduler(r.scheduler, base.original_scheduler_config))
    return pipe(prompt=r.prompt, negative_prompt=r.negative_prompt, image=run.image, strength=_strength(r),
                num_inference_steps=r.steps, output_type=run.output_type, **_common(run)).images


def sdxl_img2img(base: LoadedWeights, run: Run) -> np.ndarray:
    r = run.request
    pipe = _with_scheduler(base.view(StableDiffusionXLImg2ImgPipeline),
                           epsilon_scheduler(r.scheduler, base.original_scheduler_config))
    return pipe(prompt=r.prompt, negative_prompt=r.negative_prompt, image=run.image, strength=_strength(r),
                num_inference_steps=r.steps, output_type=run.output_type, **_common(run)).images


def sdxl_txt2img(base: LoadedWeights, refiner: LoadedWeights | None, run: Run) -> np.ndarray:
    """The base model, then (with a refiner) the ensemble-of-experts hand-off: the base denoises the
    first `high_noise_fraction` of the schedule and the refiner the rest, on the latents."""
    r = run.request
    prompt, negative = apply_style(r.style, r.prompt, r.negative_prompt)
    fraction = DEFAULT_HIGH_NOISE_FRACTION if r.high_noise_fraction is None else r.high_noise_fraction
    base_pipe = _with_scheduler(base.pipeline, epsilon_scheduler(r.scheduler, base.original_scheduler_config))
    text = dict(prompt=prompt, negative_prompt=negative, num_inference_steps=r.steps)
    size = dict(width=r.width, height=r.height)
    if refiner is None:
        return base_pipe(**text, **size, output_type=run.output_type, **_common(run)).images
    refiner_pipe = _with_scheduler(refiner.pipeline,
                                   epsilon_scheduler(r.scheduler, refiner.original_scheduler_config))
    if fraction <= 0.0:
        raise unsupported("high_noise_fraction 0 leaves the whole generation to the refiner, which only "
                          "denoises low noise levels; use a fraction above 0, or refiner: false")
    if fraction < 1.0:
        latents = base_pipe(**text, **size, denoising_end=fraction, output_type="latent",
                            **_common(run, last_call=False)).images
        return refiner_pipe(**text, image=latents, denoising_start=fraction, output_type=run.output_type,
                            **_common(run)).images
    # A fraction of 1 leaves no noise to hand over: the refiner then polishes the finished latents as
    # img2img at the request's (refiner) strength, the classic SDXL refine step.
    strength = DEFAULT_REFINER_STRENGTH if r.strength is None else r.strength
    if epsilon_img2img_steps(r.steps, strength) < 1:
        return base_pipe(**text, **size, output_type=run.output_type, **_common(run)).images
    latents = base_pipe(**text, **size, output_type="latent", **_common(run, last_call=False)).images
    return refiner_pipe(**text, image=latents, strength=strength, output_type=run.output_type,
                        **_common(run)).images


def sd3_img2img(base: LoadedWeights, run: Run) -> np.ndarray:
    r = run.request
    plan = flow_plan(r.sampler, r.scheduler, r.steps, base.original_scheduler_config)
    pipe = _with_scheduler(base.view(StableDiffusion3Img2ImgPipeline), plan.scheduler)
    steps = dict(sigmas=plan.sigmas) if plan.sigmas is not None else dict(num_inference_steps=r.steps)
    return pipe(prompt=r.prompt, negative_prompt=r.negative_prompt, image=run.image, strength=_strength(r),
                width=r.width, height=r.height, output_type=run.output_type, **steps, **_common(run)).images


def _strength(r: GenerateRequest) -> float:
    return DEFAULT_IMG2IMG_STRENGTH if r.strength is None else r.strength


def pil_to_array(image: Image.Image, samples: int) -> np.ndarray:
    one = np.asarray(image, dtype=np.float32) / 255.0
    return np.stack([one] * samples)
