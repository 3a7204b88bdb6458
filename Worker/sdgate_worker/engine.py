"""One generation, from a validated request to encoded images, with every failure turned into a typed error."""

from __future__ import annotations

import base64
import logging
import threading
import time

import torch

from . import families, images, seeds
from .cancellation import Cancellations
from .catalog import Catalog, ModelEntry
from .errors import WorkerError, invalid, unsupported
from .faults import FaultInjector
from .model_store import ModelStore, release_memory
from .request import GenerateRequest
from .sd3_samplers import check_flow_names, unshifted_sigmas
from .sd_schedulers import check_scheduler_name

log = logging.getLogger("sdgate_worker.engine")

SUPPORTED = {("sd1.5", "image-to-image"), ("sdxl", "image-to-image"), ("sdxl", "text-to-image"),
             ("sd3", "image-to-image")}
# SD3's latents are patchified in 2x2 patches of the 8x-downscaled image.
SIZE_MULTIPLE = {"sd1.5": 8, "sdxl": 8, "sd3": 16}


class Engine:
    def __init__(self, catalog: Catalog, store: ModelStore, faults: FaultInjector | None = None):
        self.catalog = catalog
        self.store = store
        self.faults = faults or FaultInjector(enabled=False)
        # One generation at a time: the gateway queues, and a second one would only compete for memory.
        self._busy = threading.Lock()
        self.cancellations = Cancellations()

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    def generate(self, request: GenerateRequest) -> dict:
        if not self._busy.acquire(blocking=False):
            raise WorkerError("busy", "a generation is already running on this worker")
        try:
            return self._generate(request)
        finally:
            self.cancellations.forget(request.request_id)
            self._busy.release()

    def _generate(self, r: GenerateRequest) -> dict:
        model = self._check(r)
        weights_names = self._weights_for(model, r)
        image = images.decode_input_image(r.image_base64, r.width, r.height) if r.image_base64 else None
        started = time.monotonic()
        try:
            loaded = self.store.acquire(weights_names)
            pixels = self._run(model, r, loaded, image)
            encoded = [images.encode(p, r.output_format, r.jpeg_quality) for p in images.to_pil(pixels)]
        except WorkerError:
            raise
        except (torch.cuda.OutOfMemoryError, MemoryError) as error:
            self._recover_from_oom(weights_names)
            raise WorkerError("out_of_memory", f"out of memory while generating: {_first_line(error)}; "
                                               "idle models were unloaded") from error
        except Exception as error:
            log.exception("generation failed")
            raise WorkerError("failed", f"generation failed: {type(error).__name__}: {_first_line(error)}") \
                from error
        return {
            "model": r.model,
            "images": [{"data": base64.b64encode(b).decode("ascii"), "format": r.output_format,
                        "width": r.width, "height": r.height} for b in encoded],
            "seed": r.seed,
            "generation_time": round(time.monotonic() - started, 4),
            "weights": weights_names,
        }

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

    def _run(self, model: ModelEntry, r: GenerateRequest, loaded, image):
        if image is not None and self._denoising_steps(model, r, loaded[0]) < 1:
            # Strength this low denoises nothing: the answer is the input itself.
            return families.pil_to_array(image, r.samples)
        seeds.seed_global(r.seed)
        run = families.Run(request=r, image=image, generators=seeds.sample_generators(r.seed, r.samples),
                           on_step_end=self.cancellations.step_check(r.request_id, r.steps))
        denoisers = [_denoiser(w.pipeline) for w in loaded]
        with torch.inference_mode(), self.faults.armed(r.inject_fault, denoisers):
            if model.family == "sd1.5":
                return families.sd15_img2img(loaded[0], run)
            if model.family == "sd3":
                return families.sd3_img2img(loaded[0], run)
            if r.task == "image-to-image":
                return families.sdxl_img2img(loaded[0], run)
            return families.sdxl_txt2img(loaded[0], loaded[1] if len(loaded) > 1 else None, run)

    def _denoising_steps(self, model: ModelEntry, r: GenerateRequest, base) -> int:
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
            })
        return result


def _denoiser(pipeline) -> torch.nn.Module:
    unet = getattr(pipeline, "unet", None)
    return unet if unet is not None else pipeline.transformer


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""
