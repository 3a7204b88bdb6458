"""Multistep solvers adapted to SD3's flow-matching img2img path.

SD3's img2img pipeline noises the input with `scheduler.scale_noise`, which only the FlowMatch schedulers
have, and passes custom sigma schedules through `set_timesteps(sigmas=...)`, which DPM-Solver lacks. These
subclasses add exactly that; the solver maths stays diffusers' own (checked by the oracle test).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler

# At sigma = 1 the flow signal coefficient (1 - sigma) is 0 and the solvers' log-SNR is -inf; diffusers'
# UniPC nudges the first sigma by this much for the same reason.
FIRST_SIGMA_EPS = 1e-6


class _ScaleNoise:
    def scale_noise(self, sample: torch.Tensor, timestep, noise: torch.Tensor) -> torch.Tensor:
        """The flow-matching forward process at the img2img start: x = sigma * noise + (1 - sigma) * x0."""
        if self.begin_index is not None:
            index = self.begin_index
        else:
            index = self.index_for_timestep(timestep.flatten()[0])
        sigma = self.sigmas[index].to(device=sample.device, dtype=sample.dtype)
        return sigma * noise + (1.0 - sigma) * sample


class FlowDPMSolverMultistepScheduler(_ScaleNoise, DPMSolverMultistepScheduler):
    """DPM-Solver(++) with flow sigmas, custom sigma schedules and `scale_noise`."""

    def set_timesteps(self, num_inference_steps=None, device=None, mu=None, timesteps=None, sigmas=None):
        if sigmas is None:
            return super().set_timesteps(num_inference_steps, device=device, mu=mu, timesteps=timesteps)
        # Let the base class reset the solver state for this many steps, then replace its schedule with
        # the requested one, built the way its own flow branch builds its default: shift, then a final 0.
        super().set_timesteps(len(sigmas), device=device)
        shift = self.config.flow_shift
        unshifted = np.asarray(sigmas, dtype=np.float64)
        shifted = np.minimum(shift * unshifted / (1 + (shift - 1) * unshifted), 1 - FIRST_SIGMA_EPS)
        self.timesteps = torch.from_numpy(shifted * self.config.num_train_timesteps).to(device=device,
                                                                                       dtype=torch.int64)
        self.sigmas = torch.from_numpy(np.append(shifted, 0.0).astype(np.float32))
        self.num_inference_steps = len(shifted)


class FlowUniPCMultistepScheduler(_ScaleNoise, UniPCMultistepScheduler):
    """UniPC with flow sigmas and `scale_noise` (it takes custom sigmas itself, as an array only)."""

    def set_timesteps(self, num_inference_steps=None, device=None, sigmas=None, mu=None):
        if sigmas is not None:
            sigmas = np.asarray(sigmas, dtype=np.float64)
        return super().set_timesteps(num_inference_steps, device=device, sigmas=sigmas, mu=mu)
