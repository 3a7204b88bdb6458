"""One generation, from a validated request to encoded images, with every failure turned into a typed error."""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass

import torch

from PIL import Image

from . import batching, families, images, seeds
from .cancellation import Cancellations
from .catalog import Catalog, ModelEntry
from .errors import WorkerError, invalid, unsupported
from .faults import FaultInjector
from .model_store import ModelStore, release_memory
from .request import GenerateRequest
from .sd3_samplers import check_flow_names, unshifted_sigmas
from .sd_schedulers import check_scheduler_name
from .tuning import PeakMemory, Tuning, set_vae_tiling

log = logging.getLogger("sdgate_worker.engine")

SUPPORTED = {("sd1.5", "image-to-image"), ("sdxl", "image-to-image"), ("sdxl", "text-to-image"),
             ("sd3", "image-to-image")}
# SD3's latents are patchified in 2x2 patches of the 8x-downscaled image.
SIZE_MULTIPLE = {"sd1.5": 8, "sdxl": 8, "sd3": 16}


@dataclass(frozen=True)
class Prepared:
    """A request checked and decoded, before any weight is loaded: what a batch is made of."""
    request: GenerateRequest
    model: ModelEntry
    weights: list[str]
    image: Image.Image | None


class Engine:
    def __init__(self, catalog: Catalog, store: ModelStore, faults: FaultInjector | None = None,
                 tuning: Tuning | None = None):
        self.catalog = catalog
        self.store = store
        self.tuning = tuning or Tuning()
        self.peak_memory = PeakMemory(store.device)
        self.faults = faults or FaultInjector(enabled=False)
        # One generation at a time: the gateway queues, and a second one would only compete for memory.
        self._busy = threading.Lock()
        self.cancellations = Cancellations()

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    def generate(self, request: GenerateRequest) -> dict:
        """One request, alone; `busy` while another generation runs. The input image is decoded before
        the device is taken, so a slow decode never holds it (nor shows the worker busy to the gateway,
        which restarts a worker busy too long); a request that finds the device taken is refused before
        decoding, and one that finds it taken only after is refused then."""
        if self.busy:
            raise _busy_error()
        prepared = self.prepare(request)
        if not self._busy.acquire(blocking=False):
            raise _busy_error()
        try:
            result = self._run_group([prepared])[0]
        finally:
            self._busy.release()
        if isinstance(result, WorkerError):
            raise result
        return result

    def prepare(self, r: GenerateRequest) -> Prepared:
        """Everything that can be refused or done before the device is needed, for one request."""
        model = self._check(r)
        weights_names = self._weights_for(model, r)
        image = images.decode_input_image(r.image_base64, r.width, r.height) if r.image_base64 else None
        return Prepared(r, model, weights_names, image)

    def run_group(self, group: list[Prepared]) -> list[dict | WorkerError]:
        """Requests of one batch key (batching.batch_key) in one pipeline call, waiting for the device."""
        with self._busy:
            return self._run_group(group)

    def _run_group(self, group: list[Prepared]) -> list[dict | WorkerError]:
        """Each request's answer. A batch stops early only when every request in it is cancelled;
        one cancelled while its batch ran on for the others gets its images all the same: they were
        made, on the team's GPU, and the gateway charges for them without delivering them."""
        request_ids = [p.request.request_id for p in group]
        try:
            try:
                answers = self._run_group_once(group, request_ids)
            except WorkerError as error:
                if error.code != "out_of_memory" or len(group) == 1:
                    raise
                # The batch did not fit in the device's memory, each request alone may: a batch must
                # never fail a request that would have run on its own.
                log.warning("a batch of %d requests ran out of memory; running them one at a time", len(group))
                answers = [self._run_alone(p) for p in group]
            return answers
        finally:
            for request_id in request_ids:
                self.cancellations.forget(request_id)

    def _run_alone(self, p: Prepared) -> dict | WorkerError:
        """One request of a batch that ran out of memory, on its own (unless cancelled meanwhile)."""
        cancelled = self.cancellations.cancelled_before_run(p.request.request_id)
        if cancelled is not None:
            return cancelled
        try:
            return self._run_group_once([p], [p.request.request_id])[0]
        except WorkerError as error:
            return error

    def _run_group_once(self, group: list[Prepared], request_ids: list[str | None]) -> list[dict]:
        first = group[0]
        # SD3's img2img encodes image i with generator i, and has only one image for several samples of one
        # request: it gets one copy per sample, as a batch has.
        several_sd3_samples = first.model.family == "sd3" and first.image is not None and first.request.samples > 1
        if len(group) == 1 and not several_sd3_samples:
            r, image, generators = first.request, first.image, None
        else:
            r, image, generators = batching.merge(group)
        started = time.monotonic()
        try:
            loaded = self.store.acquire(first.weights)
            set_vae_tiling([w.pipeline for w in loaded], r.width, r.height, self.tuning)
            self.peak_memory.start()
            pixels = self._run(first.model, r, loaded, image, generators, request_ids)
            self.peak_memory.record(first.model.name)
            answers = []
            for p, own in zip(group, batching.split(pixels, [p.request.samples for p in group])):
                req = p.request
                answers.append([images.encode(i, req.output_format, req.jpeg_quality) for i in images.to_pil(own)])
        except WorkerError:
            raise
        except (torch.cuda.OutOfMemoryError, MemoryError) as error:
            self._recover_from_oom(first.weights)
            raise WorkerError("out_of_memory", f"out of memory while generating: {_first_line(error)}; "
                                               "idle models were unloaded") from error
        except Exception as error:
            log.exception("generation failed")
            raise WorkerError("failed", f"generation failed: {type(error).__name__}: {_first_line(error)}") \
                from error
        elapsed = round(time.monotonic() - started, 4)
        return [{
            "model": p.request.model,
            "images": [{"data": base64.b64encode(b).decode("ascii"), "format": p.request.output_format,
                        "width": p.request.width, "height": p.request.height} for b in encoded],
            "seed": p.request.seed,
            "generation_time": elapsed,
            "weights": first.weights,
            "batch_size": len(group),
        } for p, encoded in zip(group, answers)]

    def _check(self, r: GenerateRequest) -> ModelEntry:
        """Everything that can be refused before any weight is loaded."""
        model = self.catalog.models.get(r.model)
        if model is None:
            raise WorkerError("unknown_model", f"model {r.model!r} is not configured on this worker")
        if r.family is not None and r.family != model.family:
            raise invalid(f"family: {r.model!r} is an {model.family} model here, not {r.family}")
        if (model.family, r.task) not in SUPPORTED:
            raise unsupported(f"{r.task} is not supported for {model.family} models")
        multiple = SIZE_MULTIPLE[model.family]
        if r.width % multiple or r.height % multiple:
            raise invalid(f"width and height must be multiples of {multiple} for {model.family}")
        if model.family == "sd3":
            check_flow_names(r.sampler, r.scheduler)
        else:
            if r.sampler is not None:
                raise invalid(f"sampler: {model.family} models take a scheduler only")
            if r.scheduler is not None:
                check_scheduler_name(r.scheduler)
        self.faults.check(r.inject_fault)
        return model

    def _weights_for(self, model: ModelEntry, r: GenerateRequest) -> list[str]:
        if None in model.base_models:
            if r.base_model is not None:
                raise invalid(f"base_model: {model.name!r} has no base model choice")
            names = [model.base_models[None]]
        else:
            choice = (r.base_model or model.default_base_model).strip().lower()
            if choice not in model.base_models:
                raise unsupported(f"base_model {r.base_model!r} is not configured; use one of: "
                                  + ", ".join(model.base_models))
            names = [model.base_models[choice]]
        if r.task == "text-to-image" and model.family == "sdxl" and r.refiner is not False:
            if model.refiner is None:
                if r.refiner:
                    raise unsupported(f"no refiner is configured for {model.name!r}")
            else:
                names.append(model.refiner)
        return names

    def _run(self, model: ModelEntry, r: GenerateRequest, loaded, image, generators=None, request_ids=None):
        """`generators`, a list `image` and the members' `request_ids` come with a merged batch
        (batching.merge)."""
        if image is not None and generators is None and self.denoising_steps(model, r) < 1:
            # Strength this low denoises nothing: the answer is the input itself.
            return families.pil_to_array(image, r.samples)
        seeds.seed_global(r.seed)
        run = families.Run(request=r, image=image,
                           generators=generators or seeds.sample_generators(r.seed, r.samples),
                           step_check=self.cancellations.step_check(request_ids or [r.request_id], r.steps))
        denoisers = [_denoiser(w.pipeline) for w in loaded]
        with torch.inference_mode(), self.faults.armed(r.inject_fault, denoisers):
            if model.family == "sd1.5":
                return families.sd15_img2img(loaded[0], run)
            if model.family == "sd3":
                return families.sd3_img2img(loaded[0], run)
            if r.task == "image-to-image":
                return families.sdxl_img2img(loaded[0], run)
            return families.sdxl_txt2img(loaded[0], loaded[1] if len(loaded) > 1 else None, run)

    def denoising_steps(self, model: ModelEntry, r: GenerateRequest) -> int:
        strength = families.DEFAULT_IMG2IMG_STRENGTH if r.strength is None else r.strength
        if model.family != "sd3":
            return families.epsilon_img2img_steps(r.steps, strength)
        solver, schedule = check_flow_names(r.sampler, r.scheduler)
        steps = r.steps
        if solver is not None and schedule == "ddim_uniform":
            steps = len(unshifted_sigmas(schedule, r.steps))
        return families.sd3_img2img_steps(steps, strength)

    def _recover_from_oom(self, in_use: list[str]) -> None:
        # Free what the failed generation left in the allocator's cache, and every model the next request
        # may not need; the ones just used stay, since a retry most likely needs them again.
        self.store.unload_all_except(set(in_use))
        release_memory()

    def describe_models(self) -> list[dict]:
        loaded = {w["name"] for w in self.store.snapshot()}
        result = []
        for model in self.catalog.models.values():
            weights = model.all_weights()
            result.append({
                "name": model.name, "family": model.family,
                "base_models": sorted(k for k in model.base_models if k is not None),
                "default_base_model": model.default_base_model,
                "refiner": model.refiner is not None,
                "weights": weights,
                "loaded": all(w in loaded for w in weights),
                # Weights: in memory when loaded, else from their files; peak: the most device memory one
                # generation of this model took so far (CUDA only), weights included.
                "memory": {"weights_bytes": _total([self.store.weights_bytes(w) for w in weights]),
                           "peak_bytes": self.peak_memory.of(model.name)},
            })
        return result


def _busy_error() -> WorkerError:
    return WorkerError("busy", "a generation is already running on this worker")


def _total(sizes: list[int | None]) -> int | None:
    return None if None in sizes else sum(sizes)


def _denoiser(pipeline) -> torch.nn.Module:
    unet = getattr(pipeline, "unet", None)
    return unet if unet is not None else pipeline.transformer


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""
