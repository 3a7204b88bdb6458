"""Stopping a generation between denoising steps, at the gateway's request (POST /cancel).

A cancel names the generation by the `request_id` its generate request carried. It may arrive before
that request does (both travel on their own connections), so the names asked for are remembered, a
bounded number of them, until the generation they name ends.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .errors import WorkerError

# More cancels than this waiting for their generations means most are for generations that never come.
REMEMBERED = 256


class Cancellations:
    def __init__(self):
        self._lock = threading.Lock()
        self._requested: OrderedDict[str, None] = OrderedDict()

    def request(self, request_id: str) -> None:
        with self._lock:
            self._requested[request_id] = None
            self._requested.move_to_end(request_id)
            while len(self._requested) > REMEMBERED:
                self._requested.popitem(last=False)

    def is_requested(self, request_id: str | None) -> bool:
        with self._lock:
            return request_id is not None and request_id in self._requested

    def forget(self, request_id: str | None) -> None:
        with self._lock:
            if request_id is not None:
                self._requested.pop(request_id, None)

    def step_check(self, request_ids: list[str | None], steps: int) -> StepCheck | None:
        """The check after each denoising step of one generation, which may run several requests
        batched together; None when a request of it cannot be cancelled (it has no id)."""
        if not request_ids or None in request_ids:
            return None
        return StepCheck(self, request_ids, steps)

    def cancelled_before_run(self, request_id: str | None) -> WorkerError | None:
        """For a request about to run on its own (its batch did not fit in memory): `cancelled` if
        its cancel came meanwhile, so that it does not run."""
        if not self.is_requested(request_id):
            return None
        return WorkerError("cancelled", "the generation was cancelled before it ran")


class StepCheck:
    """diffusers' callback_on_step_end for the pipeline calls of one generation (a base model's, then
    its refiner's): raises `cancelled` after the step in which the last of its requests was cancelled,
    so the pipeline stops there and no further step runs. While any request is still wanted, every
    step runs.

    A cancel that comes once the last step of the generation's last call has begun stops nothing:
    only the decode would be saved, and the GPU time was spent, so the images are made and answered
    (the gateway charges them and does not deliver them). The last step is the pipeline's own count
    of its calls to the denoiser, which is neither the request's steps for img2img (fewer) nor for a
    second-order scheduler (more). A base model's last step is not the generation's when a refiner
    follows: stopped there, the refiner's steps are saved."""

    def __init__(self, cancellations: Cancellations, request_ids: list[str], steps: int):
        self._cancellations = cancellations
        self._request_ids = request_ids
        self._steps = steps
        self._done = 0

    def for_call(self, last_call: bool):
        """The callback for one pipeline call; `last_call`: no other call of the generation follows."""

        def on_step_end(pipeline, step, timestep, tensors):
            self._done += 1
            if last_call and _is_last_step(pipeline, step):
                return tensors
            if all(self._cancellations.is_requested(request_id) for request_id in self._request_ids):
                raise WorkerError("cancelled",
                                  f"the generation was cancelled: it stopped after {self._done} of {self._steps} steps")
            return tensors

        return on_step_end


def _is_last_step(pipeline, step) -> bool:
    # diffusers pipelines set num_timesteps to the length of the timesteps their loop runs, after
    # strength, denoising_start or denoising_end cut them; a pipeline without it is stopped as any step.
    total = getattr(pipeline, "num_timesteps", None)
    if not isinstance(total, int) or isinstance(total, bool) or not isinstance(step, int):
        return False
    return step >= total - 1
