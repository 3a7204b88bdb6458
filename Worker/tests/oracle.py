"""The sampler-maths oracle: the denoiser's output is replaced by the exact prediction for a data set of
one point, `target`. A sampler that integrates correctly must then end on `target`; random weights
cannot tell a right sampler from a wrong one, this can (an epsilon scheduler on a flow model, a wrong
prediction type, a schedule that stops with noise left)."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from diffusers import DDPMScheduler


def _call_inputs(args, kwargs):
    # UNets are called with (sample, timestep, ...); SD3's transformer with keywords only.
    sample = args[0] if args else kwargs["hidden_states"]
    timestep = args[1] if len(args) > 1 else kwargs["timestep"]
    return sample, torch.as_tensor(timestep, dtype=torch.float64).flatten()


def epsilon_prediction(original_scheduler_config, target: torch.Tensor):
    """For epsilon models. The UNet sees x0 + sigma * eps scaled to unit variance, i.e. divided by
    sqrt(1 + sigma^2), at a (possibly fractional) training timestep t, whose sigma is interpolated in
    log-sigma as diffusers' sigma-space schedulers do."""
    alphas_cumprod = DDPMScheduler.from_config(original_scheduler_config).alphas_cumprod.double()
    log_sigmas = (((1 - alphas_cumprod) / alphas_cumprod) ** 0.5).log().numpy()

    def predict(sample, t):
        sigma = torch.from_numpy(np.exp(np.interp(t.numpy(), np.arange(len(log_sigmas)), log_sigmas)))
        sigma = sigma.reshape(-1, 1, 1, 1)
        if sigma.shape[0] == 1:
            sigma = sigma.expand(sample.shape[0], 1, 1, 1)
        x = sample.double() * (1 + sigma**2) ** 0.5
        return ((x - target.double()) / sigma).to(sample.dtype)

    return predict


def flow_prediction(target: torch.Tensor, train_timesteps: int = 1000):
    """For flow models: x = (1 - sigma) x0 + sigma * noise, with sigma = timestep / 1000, and the model
    predicts the velocity noise - x0 = (x - x0) / sigma."""

    def predict(sample, t):
        sigma = (t / train_timesteps).reshape(-1, 1, 1, 1)
        return ((sample.double() - target.double()) / sigma).to(sample.dtype)

    return predict


@contextlib.contextmanager
def replacing_denoiser(modules, predict):
    def hook(module, args, kwargs, output):
        sample, t = _call_inputs(args, kwargs)
        return (predict(sample, t),)

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def relative_error(latents: torch.Tensor, target: torch.Tensor) -> float:
    return float((latents.double() - target.double()).norm() / target.double().norm())
