"""Cross-request batching: requests that would run the same pipeline call except for their prompts,
negative prompts and seeds, waiting at the same moment, run as one call, and each gets its own images.

A batch key holds everything that must be equal for one call to serve several requests: model, weights,
task, size, steps, strength, scheduler or sampler, refiner settings and guidance (diffusers pipelines take
one guidance scale per call, so requests are grouped by it). Each sample keeps its own CPU generator
(seed + i), so its noise is the noise it gets alone. Requests that cannot be batched run alone (key None):
  - samplers that draw noise from torch's global generator rather than the sample's own (SD3's
    euler_ancestral and dpmpp_2m_sde, DPM++ SDE's Brownian tree): in a batch one draw would cover every
    sample, and a request's image would depend on its neighbours;
  - img2img whose strength denoises nothing (the answer is the input itself);
  - fault injection, and an unknown style (refused alone, never failing a batch).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

import numpy as np

from . import seeds
from .errors import WorkerError
from .sd3_samplers import SOLVERS
from .styles import STYLES, apply_style

log = logging.getLogger("sdgate_worker.batching")

# Schedulers of SD 1.5 / SDXL whose noise comes from torch's global generator.
GLOBAL_NOISE_SCHEDULERS = {"dpmpp_sde_ancestral"}


def draws_global_noise(family: str, request) -> bool:
    if family == "sd3":
        solver = SOLVERS.get((request.sampler or "euler").strip().lower())
        return solver is None or solver.stochastic
    return (request.scheduler or "").strip().lower() in GLOBAL_NOISE_SCHEDULERS


def styled(request) -> tuple[str, str | None]:
    """The prompt and negative prompt the pipeline sees (SDXL text-to-image applies a style)."""
    if request.task == "text-to-image":
        return apply_style(request.style, request.prompt, request.negative_prompt)
    return request.prompt, request.negative_prompt


def batch_key(prepared, engine) -> tuple | None:
    """What must be equal for requests to share one pipeline call; None: this request runs alone."""
    r = prepared.request
    family = prepared.model.family
    if r.inject_fault is not None or draws_global_noise(family, r):
        return None
    if (r.style or "base").strip().lower() not in ("base", *STYLES):
        return None
    if prepared.image is not None and engine.denoising_steps(prepared.model, r) < 1:
        return None
    negative = styled(r)[1]
    return (r.model, tuple(prepared.weights), r.task, r.width, r.height, r.steps, r.strength, r.guidance_scale,
            (r.scheduler or "").strip().lower(), (r.sampler or "").strip().lower(), r.refiner,
            r.high_noise_fraction, (r.base_model or "").strip().lower(),
            # SDXL zeroes the negative embedding when there is no negative prompt, instead of encoding "".
            negative is None)


def merge(group) -> tuple:
    """One request for the whole group (prompts as per-sample lists, one image per sample), the input
    images, and each sample's generator in order."""
    prompts, negatives, images, generators = [], [], [], []
    for p in group:
        r = p.request
        prompt, negative = styled(r)
        prompts += [prompt] * r.samples
        negatives += [negative] * r.samples
        if p.image is not None:
            images += [p.image] * r.samples
        generators += seeds.sample_generators(r.seed, r.samples)
    first = group[0].request
    # The lists are passed straight to the diffusers pipeline, which takes a list of prompts.
    merged = dataclasses.replace(first, prompt=prompts, negative_prompt=None if negatives[0] is None else negatives,
                                 samples=1, style=None)
    return merged, (images or None), generators


def split(pixels: np.ndarray, samples: list[int]) -> list[np.ndarray]:
    """The batch's images back per request, in the group's order."""
    bounds = np.cumsum(samples)[:-1]
    return np.split(pixels, bounds)


class _Slot:
    def __init__(self, prepared, key):
        self.prepared = prepared
        self.key = key
        self.member = prepared.request.member or ""
        self.arrived = time.monotonic()
        self.done = threading.Event()
        self.result: dict | None = None
        self.error: WorkerError | None = None


class Batcher:
    """Takes up to `max_batch` requests at once (beyond: `busy`), and runs them in turns across members:
    next is the oldest waiting request of the member served least recently (never served: first), with
    the waiting requests of its batch key that fit, whoever sent them, up to `max_batch` images in all,
    after waiting at most `window` seconds from its arrival for more to come. So a member whose many
    requests cannot share one call does not hold the device while another member's request waits
    behind all of them: that one runs in the next call."""

    def __init__(self, engine, max_batch: int, window: float):
        self.engine = engine
        self.max_batch = max_batch
        self.window = window
        self._cond = threading.Condition()
        self._pending: list[_Slot] = []
        self._in_flight = 0
        # Pipeline calls started so far, and the call in which each member was last served.
        self._calls = 0
        self._last_served: dict[str, int] = {}
        threading.Thread(target=self._serve, name="batcher", daemon=True).start()

    @property
    def held(self) -> int:
        with self._cond:
            return self._in_flight

    def generate(self, request) -> dict:
        prepared = self.engine.prepare(request)
        slot = _Slot(prepared, batch_key(prepared, self.engine))
        with self._cond:
            if self._in_flight >= self.max_batch:
                raise WorkerError("busy", f"this worker already holds {self.max_batch} requests")
            self._in_flight += 1
            self._pending.append(slot)
            self._cond.notify_all()
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _serve(self) -> None:
        while True:
            group = self._next_group()
            try:
                answers = self.engine.run_group([s.prepared for s in group])
                # A request run alone after its batch ran out of memory, cancelled meanwhile, is
                # answered `cancelled`.
                errors = [a if isinstance(a, WorkerError) else None for a in answers]
                results = [None if isinstance(a, WorkerError) else a for a in answers]
                for result in results:
                    if result is not None:
                        result["batch_number"] = self._calls
            except WorkerError as error:
                results, errors = [None] * len(group), [error] * len(group)
            except Exception as error:  # a bug: every request of the batch is answered, the worker serves on
                log.exception("batch failed")
                failed = WorkerError("failed", f"internal error: {type(error).__name__}")
                results, errors = [None] * len(group), [failed] * len(group)
            if len(group) > 1:
                log.info("ran %d requests (%d images) as one batch", len(group),
                         sum(s.prepared.request.samples for s in group))
            with self._cond:
                # Before the answers go out, so the gateway's next request finds room.
                self._in_flight -= len(group)
            for slot, result, error in zip(group, results, errors):
                slot.result, slot.error = result, error
                slot.done.set()

    def _next_group(self) -> list[_Slot]:
        with self._cond:
            while not self._pending:
                self._cond.wait()
            # min keeps the first of equals: the oldest request of the member served least recently.
            first = min(self._pending, key=lambda slot: self._last_served.get(slot.member, 0))
            if first.key is not None:
                deadline = first.arrived + self.window
                # No more can come once every place is taken by a waiting request.
                while len(self._pending) < self.max_batch and self._images(self._compatible(first)) < self.max_batch:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            group = self._compatible(first)
            self._calls += 1
            for slot in group:
                self._pending.remove(slot)
                self._last_served[slot.member] = self._calls
            if len(self._last_served) > 10_000:  # members come and go: keep those waiting now
                self._last_served = {s.member: self._last_served.get(s.member, 0) for s in self._pending}
            return group

    def _compatible(self, first: _Slot) -> list[_Slot]:
        group, images = [first], first.prepared.request.samples
        if first.key is None:
            return group
        for slot in self._pending:
            samples = slot.prepared.request.samples
            if slot is not first and slot.key == first.key and images + samples <= self.max_batch:
                group.append(slot)
                images += samples
        return group

    @staticmethod
    def _images(group: list[_Slot]) -> int:
        return sum(s.prepared.request.samples for s in group)
