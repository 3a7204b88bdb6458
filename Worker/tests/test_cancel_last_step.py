"""A cancel stops a generation between denoising steps, except once its last step has begun: then only
the decode would be saved, the GPU time was spent, and the images are made (the gateway charges them
and does not deliver them). The last step is the pipeline's own, whatever the request's `steps` say."""

import contextlib

import pytest

from sdgate_worker.errors import WorkerError
from sdgate_worker.request import parse_generate_request

from conftest import request_json
from denoiser_calls import counting


@contextlib.contextmanager
def cancelled_in_call(engine, weights_name: str, call: int, request_id: str):
    """Asks for the cancel of `request_id` as the denoiser of `weights_name` starts its `call`-th
    call (counted from 1), as a cancel arriving while that step runs would."""
    calls = []
    loaded = engine.store.acquire([weights_name])[0]
    module = getattr(loaded.pipeline, "unet", None) or loaded.pipeline.transformer

    def hook(*_):
        calls.append(1)
        if len(calls) == call:
            engine.cancellations.request(request_id)

    handle = module.register_forward_pre_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def generate(engine, model: str, **fields):
    return engine.generate(parse_generate_request(request_json(model, request_id="job-last", **fields)))


# Generations whose pipeline runs another number of denoiser calls than the request's steps: img2img
# (fewer), a second-order scheduler (more: two calls a step but the first), and each family.
ONE_PIPELINE = [
    ("sd1.5-img2img", "sd15", dict(steps=6, strength=0.5, scheduler="Euler")),
    ("sd1.5-img2img", "sd15", dict(steps=3, strength=1.0, scheduler="Heun")),
    ("sdxl-img2img", "sdxl-base", dict(steps=5, strength=0.6, scheduler="Euler", base_model="sdxl")),
    ("sdxl1.0-txt2img", "sdxl-base", dict(steps=2, scheduler="Heun", refiner=False)),
    ("sd3-med-img2img", "sd3-no-t5", dict(steps=4, strength=0.75, sampler="euler", scheduler="normal")),
]


def calls_of(engine, model, weights, fields) -> int:
    with counting(engine, weights) as calls:
        generate(engine, model, **fields)
    return len(calls)


@pytest.mark.parametrize("model, weights, fields", ONE_PIPELINE)
def test_a_cancel_in_the_last_step_is_too_late_and_the_images_are_made(engine, model, weights, fields):
    last = calls_of(engine, model, weights, fields)
    assert last != fields["steps"]  # the case tells the pipeline's count from the request's
    with cancelled_in_call(engine, weights, last, "job-last"):
        result = generate(engine, model, **fields)
    assert len(result["images"]) == 1


@pytest.mark.parametrize("model, weights, fields", ONE_PIPELINE)
def test_a_cancel_in_the_step_before_the_last_stops_the_generation(engine, model, weights, fields):
    last = calls_of(engine, model, weights, fields)
    with cancelled_in_call(engine, weights, last - 1, "job-last") as calls, pytest.raises(WorkerError) as caught:
        generate(engine, model, **fields)
    assert caught.value.code == "cancelled" and len(calls) == last - 1


REFINED = [
    # The base denoises half of the schedule and the refiner the rest.
    dict(steps=4, high_noise_fraction=0.5, scheduler="Euler"),
    # The base finishes the schedule, then the refiner polishes the latents as img2img.
    dict(steps=4, high_noise_fraction=1.0, strength=0.5, scheduler="Euler"),
]


@pytest.mark.parametrize("fields", REFINED)
def test_a_cancel_in_the_base_models_last_step_still_saves_the_refiners_steps(engine, fields):
    base_calls = calls_of(engine, "sdxl1.0-txt2img", "sdxl-base", fields)
    with counting(engine, "sdxl-refiner") as refiner, cancelled_in_call(engine, "sdxl-base", base_calls, "job-last"):
        with pytest.raises(WorkerError) as caught:
            generate(engine, "sdxl1.0-txt2img", **fields)
    assert caught.value.code == "cancelled" and refiner == []


@pytest.mark.parametrize("fields", REFINED)
def test_a_cancel_in_the_refiners_last_step_is_too_late(engine, fields):
    refiner_calls = calls_of(engine, "sdxl1.0-txt2img", "sdxl-refiner", fields)
    with cancelled_in_call(engine, "sdxl-refiner", refiner_calls, "job-last"):
        result = generate(engine, "sdxl1.0-txt2img", **fields)
    assert len(result["images"]) == 1


def test_a_batch_whose_every_request_is_cancelled_in_its_last_step_is_made(engine):
    bodies = [request_json("sd1.5-img2img", steps=4, strength=0.5, seed=seed, request_id=f"job-{seed}")
              for seed in (1, 2)]
    group = [engine.prepare(parse_generate_request(b)) for b in bodies]
    last = calls_of(engine, "sd1.5-img2img", "sd15", dict(steps=4, strength=0.5))
    with cancelled_in_call(engine, "sd15", last, "job-1"), cancelled_in_call(engine, "sd15", last, "job-2"):
        answers = engine.run_group(group)
    assert [len(a["images"]) for a in answers] == [1, 1]
