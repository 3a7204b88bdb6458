"""Fault injection for tests of the protocol (enabled only by --enable-fault-injection).

A generate request carrying `"inject_fault": KIND` fails from inside the denoiser's forward pass, so the
worker's real error handling and clean-up run, not a shortcut:

  out_of_memory  raises torch.cuda.OutOfMemoryError (what a full GPU raises)
  failed         raises RuntimeError
  nan            makes the denoiser return NaN (caught by the finite check before encoding)
  stall          blocks until POST /faults/release, to observe the worker while a generation runs
"""

from __future__ import annotations

import contextlib
import threading

import torch

from .errors import invalid

KINDS = ("out_of_memory", "failed", "nan", "stall")
STALL_LIMIT_SECONDS = 120


class FaultInjector:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._release = threading.Event()

    def check(self, kind: str | None) -> None:
        if kind is None:
            return
        if not self.enabled:
            raise invalid("inject_fault: fault injection is disabled (start with --enable-fault-injection)")
        if kind not in KINDS:
            raise invalid(f"inject_fault: must be one of {', '.join(KINDS)}")

    def release(self) -> None:
        self._release.set()

    @contextlib.contextmanager
    def armed(self, kind: str | None, denoisers: list[torch.nn.Module]):
        """Hooks `kind` into the denoisers for the duration of one generation."""
        if kind is None:
            yield
            return
        handles = []
        for module in denoisers:
            if kind == "nan":
                handles.append(module.register_forward_hook(_nan_output))
            else:
                handles.append(module.register_forward_pre_hook(self._pre_hook(kind)))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            # Cleared after, not before: a release that arrives while the weights are still loading counts.
            self._release.clear()

    def _pre_hook(self, kind: str):
        def hook(module, args):
            if kind == "out_of_memory":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
            if kind == "failed":
                raise RuntimeError("injected failure")
            if kind == "stall" and not self._release.wait(STALL_LIMIT_SECONDS):
                raise RuntimeError("injected stall was never released")
        return hook


def _nan_output(module, args, output):
    first = output[0] if isinstance(output, tuple) else output.sample
    first.fill_(float("nan"))
    return output
