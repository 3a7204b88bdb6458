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

    def step_check(self, request_ids: list[str | None], steps: int):
        """diffusers' callback_on_step_end for one pipeline call, which may run several requests
        batched together: raises `cancelled` after the step in which the last of them was cancelled,
        so the pipeline stops there and no further step runs. While any request of the call is still
        wanted (or cannot be cancelled: it has no id), every step runs."""
        if not request_ids or None in request_ids:
            return None
        done = 0

        def on_step_end(pipeline, step, timestep, tensors):
            nonlocal done
            done += 1
            if all(self.is_requested(request_id) for request_id in request_ids):
                raise WorkerError("cancelled", f"the generation was cancelled: it stopped after {done} of {steps} steps")
            return tensors

        return on_step_end

    def cancelled_before_run(self, request_id: str | None) -> WorkerError | None:
        """For a request about to run on its own (its batch did not fit in memory): `cancelled` if
        its cancel came meanwhile, so that it does not run."""
        if not self.is_requested(request_id):
            return None
        return WorkerError("cancelled", "the generation was cancelled before it ran")
