"""SD3's `sampler` + `scheduler` (ComfyUI's KSampler vocabulary) mapped to flow-matching schedulers.

SD3 is a flow-matching model: an epsilon scheduler runs on it without error and returns garbage, so only
flow-matching solvers are offered, and a combination without a faithful flow counterpart is refused with
the reason instead of running something else.

ComfyUI's schedules are sigma sequences over the model's timesteps t in (0, 1], before SD3's shift
(sigma = shift * t / (1 + (shift - 1) * t)); each solver applies the shift from the model's config.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler

from .errors import unsupported
from .flow_schedulers import FlowDPMSolverMultistepScheduler, FlowUniPCMultistepScheduler

TRAIN_TIMESTEPS = 1000
T_MIN = 1 / TRAIN_TIMESTEPS

CUSTOM_SCHEDULES = ("normal", "simple", "sgm_uniform", "ddim_uniform")
# Sigma spacings FlowMatchEuler computes itself, from its shifted sigma range.
FLAG_SCHEDULES = {"karras": "use_karras_sigmas", "exponential": "use_exponential_sigmas",
                  "beta": "use_beta_sigmas"}
ALL_SCHEDULES = CUSTOM_SCHEDULES + tuple(FLAG_SCHEDULES)


@dataclass(frozen=True)
class Solver:
    cls: type
    settings: dict
    schedules: tuple[str, ...]
    # Draws fresh noise at every step (from torch's global generator: SD3 pipelines do not pass theirs on).
    stochastic: bool = False


_EULER = Solver(FlowMatchEulerDiscreteScheduler, {}, ALL_SCHEDULES)
_DPM_FLOW = {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}

SOLVERS = {
    "euler": _EULER,
    # ComfyUI runs its "ddim" sampler as Euler.
    "ddim": _EULER,
    "euler_ancestral": Solver(FlowMatchEulerDiscreteScheduler, {"stochastic_sampling": True}, ALL_SCHEDULES,
                              stochastic=True),
    # FlowMatchHeun has no custom sigmas: only its own schedule, which is ComfyUI's "normal".
    "heun": Solver(FlowMatchHeunDiscreteScheduler, {}, ("normal",)),
    "dpmpp_2m": Solver(FlowDPMSolverMultistepScheduler,
                       {**_DPM_FLOW, "algorithm_type": "dpmsolver++", "solver_order": 2}, CUSTOM_SCHEDULES),
    "dpmpp_2m_sde": Solver(FlowDPMSolverMultistepScheduler,
                           {**_DPM_FLOW, "algorithm_type": "sde-dpmsolver++", "solver_order": 2},
                           CUSTOM_SCHEDULES, stochastic=True),
    "uni_pc_bh2": Solver(FlowUniPCMultistepScheduler, {**_DPM_FLOW, "solver_type": "bh2"}, CUSTOM_SCHEDULES),
}
# ComfyUI's *_gpu variants differ only in where the Brownian noise is drawn.
SOLVERS["dpmpp_2m_sde_gpu"] = SOLVERS["dpmpp_2m_sde"]

REFUSED = {
    "euler_pp": "a CFG++ sampler; diffusers has no CFG++ guidance",
    "euler_ancestral_pp": "a CFG++ sampler; diffusers has no CFG++ guidance",
    "heunpp2": "no flow-matching Heun++ solver in diffusers",
    "dpm_2": "KDPM2 is an epsilon-model solver with no flow-matching form",
    "dpm_2_ancestral": "KDPM2 is an epsilon-model solver with no flow-matching form",
    "lms": "LMS is an epsilon-model solver with no flow-matching form",
    "dpm_fast": "no flow-matching DPM-fast solver in diffusers",
    "dpm_adaptive": "no adaptive-step solver in diffusers",
    "dpmpp_2s_ancestral": "no ancestral single-step flow-matching DPM++ solver in diffusers",
    "dpmpp_sde": "the DPM++ SDE (Brownian tree) solver is epsilon-only",
    "dpmpp_sde_gpu": "the DPM++ SDE (Brownian tree) solver is epsilon-only",
    "dpmpp_3m_sde": "diffusers has no third-order SDE DPM++ solver",
    "dpmpp_3m_sde_gpu": "diffusers has no third-order SDE DPM++ solver",
    "ddpm": "DDPM is an epsilon-model solver with no flow-matching form",
    "lcm": "LCM needs a consistency-distilled model",
    "ipndm": "IPNDM is an epsilon-model solver with no flow-matching form",
    "ipndm_v": "IPNDM is an epsilon-model solver with no flow-matching form",
    # diffusers' bh1 update multiplies an infinite log-SNR step by zero at a flow schedule's final sigma 0.
    "uni_pc": "diffusers' UniPC bh1 variant returns NaN on flow schedules; use uni_pc_bh2",
    "deis": "DEIS with flow sigmas stops with noise left (its last sigma is not 0)",
}

DEFAULT_SAMPLER = "euler"
DEFAULT_SCHEDULE = "normal"


@dataclass(frozen=True)
class FlowPlan:
    """What to run: a fresh scheduler, and the sigmas to pass to the pipeline (None: its own)."""
    scheduler: object
    sigmas: list[float] | None
    stochastic: bool


def unshifted_sigmas(schedule: str, steps: int) -> list[float]:
    """ComfyUI's schedules for a discrete flow model, as timesteps t in (0, 1], without the final 0."""
    if schedule == "normal":
        t = np.linspace(1.0, T_MIN, steps)
    elif schedule == "sgm_uniform":
        t = np.linspace(1.0, T_MIN, steps + 1)[:-1]
    elif schedule == "simple":
        # Every (1000 / steps)-th training timestep, from the top.
        t = np.array([TRAIN_TIMESTEPS - int(x * TRAIN_TIMESTEPS / steps) for x in range(steps)]) / TRAIN_TIMESTEPS
    elif schedule == "ddim_uniform":
        # A fixed stride over the training timesteps from the bottom, as ComfyUI does; it may not start at
        # t = 1 and can give one step more than asked.
        stride = max(TRAIN_TIMESTEPS // steps, 1)
        t = (np.arange(1, TRAIN_TIMESTEPS, stride) + 1)[::-1] / TRAIN_TIMESTEPS
    else:
        raise ValueError(schedule)
    return [float(v) for v in t]


def check_flow_names(sampler: str | None, schedule: str | None) -> tuple[Solver | None, str]:
    """The solver and schedule for these names (None, None: the model's own scheduler), or `unsupported`
    naming the reason for a combination without a faithful flow counterpart."""
    if sampler is None and schedule is None:
        return None, ""
    sampler_name = (sampler or DEFAULT_SAMPLER).strip().lower()
    schedule_name = (schedule or DEFAULT_SCHEDULE).strip().lower()
    if sampler_name in REFUSED:
        raise unsupported(f"sampler {sampler_name!r} is not supported on SD3: {REFUSED[sampler_name]}")
    solver = SOLVERS.get(sampler_name)
    if solver is None:
        raise unsupported(f"sampler {sampler_name!r} is unknown; supported on SD3: {', '.join(sorted(SOLVERS))}")
    if schedule_name not in ALL_SCHEDULES:
        raise unsupported(f"scheduler {schedule_name!r} is unknown; use one of: {', '.join(ALL_SCHEDULES)}")
    if schedule_name not in solver.schedules:
        raise unsupported(f"sampler {sampler_name!r} cannot run scheduler {schedule_name!r} on SD3; "
                          f"it supports: {', '.join(solver.schedules)}")
    return solver, schedule_name


def flow_plan(sampler: str | None, schedule: str | None, steps: int, original_config) -> FlowPlan:
    solver, schedule_name = check_flow_names(sampler, schedule)
    if solver is None:
        # Neither given: the model's own scheduler, as its repo configures it.
        return FlowPlan(FlowMatchEulerDiscreteScheduler.from_config(original_config), None, False)
    # The model's shift: FlowMatch configs call it `shift`, the multistep solvers `flow_shift`.
    shift = original_config.get("shift", 3.0)
    # Sigma-spacing switches off unless asked for, whatever the model's own config says.
    settings = {**{flag: False for flag in FLAG_SCHEDULES.values()}, **solver.settings}
    if solver.cls in (FlowDPMSolverMultistepScheduler, FlowUniPCMultistepScheduler):
        settings["flow_shift"] = shift
    if schedule_name in FLAG_SCHEDULES:
        settings[FLAG_SCHEDULES[schedule_name]] = True
    accepted = inspect.signature(solver.cls.__init__).parameters
    scheduler = solver.cls.from_config(original_config, **{k: v for k, v in settings.items() if k in accepted})
    sigmas = None
    if schedule_name in CUSTOM_SCHEDULES and solver.cls is not FlowMatchHeunDiscreteScheduler:
        sigmas = unshifted_sigmas(schedule_name, steps)
    return FlowPlan(scheduler=scheduler, sigmas=sigmas, stochastic=solver.stochastic)
