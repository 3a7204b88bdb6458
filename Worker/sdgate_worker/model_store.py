"""Weights loaded on demand and unloaded under a memory budget, least recently used first.

Every weights entry, a folder or a Hugging Face repo id, is loaded with the pipeline class's own
`from_pretrained`: the same path for real weights and for the tests' tiny ones.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import (
    DiffusionPipeline,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLPipeline,
)

from .catalog import Catalog, WeightsEntry
from .errors import WorkerError

log = logging.getLogger("sdgate_worker.models")

PIPELINE_BY_KIND = {
    "sd1.5": StableDiffusionPipeline,
    "sdxl": StableDiffusionXLPipeline,
    "sdxl-refiner": StableDiffusionXLImg2ImgPipeline,
    "sd3": StableDiffusion3Pipeline,
}
WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass
class LoadedWeights:
    entry: WeightsEntry
    pipeline: DiffusionPipeline
    # The scheduler config the weights ship with; every request's scheduler is derived from it.
    original_scheduler_config: dict
    size_bytes: int
    last_used: float = field(default_factory=time.monotonic)
    # Task pipelines (img2img, ...) built over the same modules, by class.
    views: dict = field(default_factory=dict)

    def view(self, cls):
        """`cls` over this pipeline's modules (no copy of any weight)."""
        if cls is type(self.pipeline):
            return self.pipeline
        if cls not in self.views:
            self.views[cls] = cls.from_pipe(self.pipeline)
            self.views[cls].set_progress_bar_config(disable=True)
        return self.views[cls]


def module_bytes(pipeline: DiffusionPipeline) -> int:
    total = 0
    for component in pipeline.components.values():
        if isinstance(component, torch.nn.Module):
            for tensor in list(component.parameters()) + list(component.buffers()):
                total += tensor.numel() * tensor.element_size()
    return total


def estimate_bytes(folder: Path, entry: WeightsEntry) -> int:
    """The weight files `from_pretrained` would read: the chosen variant's, safetensors before .bin."""
    skipped = {"safety_checker"} | ({"text_encoder_3"} if not entry.text_encoder_3 else set())
    total = 0
    for sub in (p for p in folder.iterdir() if p.is_dir() and p.name not in skipped):
        for suffix in WEIGHT_SUFFIXES:
            files = [f for f in sub.iterdir() if f.name.endswith(suffix) and _is_variant(f.name, entry.variant)]
            if files:
                total += sum(f.stat().st_size for f in files)
                break
    return total


def _is_variant(name: str, variant: str | None) -> bool:
    # "model.safetensors", "model-00001-of-00002.safetensors" vs "model.fp16.safetensors".
    return f".{variant}" in name if variant else name.count(".") == 1


class ModelStore:
    def __init__(self, catalog: Catalog, device: torch.device, dtype: torch.dtype,
                 memory_budget_bytes: int | None, allow_downloads: bool = False, cache_dir: str | None = None,
                 on_load=None):
        self.catalog = catalog
        # Called with each pipeline right after it loads (the GPU settings of tuning.py).
        self.on_load = on_load
        self.device = device
        self.dtype = dtype
        self.memory_budget_bytes = memory_budget_bytes
        self.allow_downloads = allow_downloads
        self.cache_dir = cache_dir
        self._loaded: dict[str, LoadedWeights] = {}
        self._lock = threading.Lock()

    def acquire(self, names: list[str]) -> list[LoadedWeights]:
        """The named weights, loading what is missing; others are unloaded first when over budget."""
        result = []
        for name in names:
            with self._lock:
                loaded = self._loaded.get(name)
            if loaded is None:
                loaded = self._load(self.catalog.weights[name], keep=set(names))
            loaded.last_used = time.monotonic()
            result.append(loaded)
        return result

    def _load(self, entry: WeightsEntry, keep: set[str]) -> LoadedWeights:
        folder = self._local_folder(entry)
        estimate = estimate_bytes(folder, entry) if folder else 0
        self._make_room(estimate, keep)
        started = time.monotonic()
        pipeline = self._from_pretrained(entry)
        pipeline.set_progress_bar_config(disable=True)
        if self.on_load is not None:
            self.on_load(pipeline)
        loaded = LoadedWeights(entry=entry, pipeline=pipeline,
                               original_scheduler_config=dict(pipeline.scheduler.config),
                               size_bytes=module_bytes(pipeline))
        with self._lock:
            self._loaded[entry.name] = loaded
        log.info("loaded weights %s (%.1f MB) in %.2f s", entry.name, loaded.size_bytes / 1e6,
                 time.monotonic() - started)
        self._make_room(0, keep)
        return loaded

    def _from_pretrained(self, entry: WeightsEntry) -> DiffusionPipeline:
        kwargs = dict(dtype=self.dtype, variant=entry.variant, revision=entry.revision,
                      local_files_only=not self.allow_downloads, cache_dir=self.cache_dir)
        if entry.kind == "sd1.5":
            # sdgate runs its NSFW check (where configured) in the gateway, not in every worker.
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        if entry.kind == "sd3" and not entry.text_encoder_3:
            # A folder saved without T5 only loads with these two passed explicitly.
            kwargs.update(text_encoder_3=None, tokenizer_3=None)
        try:
            pipeline = PIPELINE_BY_KIND[entry.kind].from_pretrained(entry.source, **kwargs)
        except (OSError, ValueError) as error:
            raise WorkerError("failed", f"cannot load weights {entry.name!r} from {entry.source!r}: "
                                        f"{str(error).splitlines()[0][:300]}") from error
        return pipeline.to(self.device)

    def _local_folder(self, entry: WeightsEntry) -> Path | None:
        if entry.is_folder:
            return Path(entry.source)
        try:
            from huggingface_hub import snapshot_download
            return Path(snapshot_download(entry.source, revision=entry.revision, cache_dir=self.cache_dir,
                                          local_files_only=True))
        except Exception:  # not in the cache (yet): no estimate, the budget is enforced after loading
            return None

    def _make_room(self, incoming_bytes: int, keep: set[str]) -> None:
        if self.memory_budget_bytes is None:
            return
        with self._lock:
            used = sum(w.size_bytes for w in self._loaded.values())
            # Names and sizes only: a reference held here would keep the victim's tensors alive.
            candidates = [(n, w.size_bytes) for n, w in sorted(self._loaded.items(), key=lambda i: i[1].last_used)
                          if n not in keep]
        for name, size in candidates:
            if used + incoming_bytes <= self.memory_budget_bytes:
                break
            self.unload(name)
            used -= size
        if used + incoming_bytes > self.memory_budget_bytes:
            # A request's own weights are never unloaded under it; it runs over budget rather than not at all.
            log.warning("weights in use (%.1f MB) exceed the memory budget (%.1f MB)",
                        (used + incoming_bytes) / 1e6, self.memory_budget_bytes / 1e6)

    def unload(self, name: str) -> None:
        with self._lock:
            loaded = self._loaded.pop(name, None)
        if loaded is None:
            return
        loaded.views.clear()
        del loaded
        release_memory()
        log.info("unloaded weights %s", name)

    def unload_all_except(self, keep: set[str]) -> None:
        with self._lock:
            names = [n for n in self._loaded if n not in keep]
        for name in names:
            self.unload(name)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [{"name": w.entry.name, "kind": w.entry.kind, "size_bytes": w.size_bytes}
                    for w in sorted(self._loaded.values(), key=lambda w: w.entry.name)]

    def weights_bytes(self, name: str) -> int | None:
        """The weights' size in memory when loaded, else what their files on disk say (None: unknown)."""
        with self._lock:
            loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded.size_bytes
        entry = self.catalog.weights[name]
        folder = self._local_folder(entry)
        try:
            return estimate_bytes(folder, entry) if folder else None
        except OSError:
            return None

    def used_bytes(self) -> int:
        with self._lock:
            return sum(w.size_bytes for w in self._loaded.values())


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
