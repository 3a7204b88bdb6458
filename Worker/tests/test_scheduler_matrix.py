"""Every scheduler and sampler the contract names either runs, giving a finite image of the asked size,
or is refused with `unsupported` naming it: never a silently wrong image."""

import numpy as np
import pytest

from sdgate_worker.errors import WorkerError
from sdgate_worker.request import parse_generate_request
from sdgate_worker.sd3_samplers import ALL_SCHEDULES, REFUSED, SOLVERS

from conftest import decode_image, request_json
import contract


def generate(engine, model, **fields):
    return engine.generate(parse_generate_request(request_json(model, **fields)))


def assert_finite_image(result, width, height):
    image = decode_image(result["images"][0])
    assert image.size == (width, height) and image.mode == "RGB"
    # Encoding would have refused non-finite pixels; a constant image would mean nothing was computed.
    assert np.asarray(image).std() > 0


@pytest.mark.parametrize("model", ["sd1.5-img2img", "sdxl-img2img", "sdxl1.0-txt2img"])
def test_every_contract_scheduler_runs_on_the_epsilon_models(engine, model):
    for scheduler in contract.values(model, "scheduler"):
        # Names match case-insensitively, as the gateway's catalog does.
        assert_finite_image(generate(engine, model, scheduler=scheduler.upper(), width=64, height=48), 64, 48)


def test_an_unknown_scheduler_is_refused_by_name(engine):
    with pytest.raises(WorkerError) as caught:
        generate(engine, "sd1.5-img2img", scheduler="Karras Magic")
    assert caught.value.code == "unsupported" and "Karras Magic" in caught.value.message


def test_sd3_sampler_and_scheduler_grid(engine):
    samplers, schedules = contract.values("sd3-med-img2img", "sampler"), contract.values("sd3-med-img2img", "scheduler")
    ran = refused = 0
    for sampler in samplers:
        for schedule in schedules:
            try:
                result = generate(engine, "sd3-med-img2img", sampler=sampler, scheduler=schedule, width=64, height=80)
            except WorkerError as error:
                assert error.code == "unsupported", (sampler, schedule, error.message)
                assert sampler in error.message
                assert sampler in REFUSED or schedule not in SOLVERS[sampler].schedules
                refused += 1
            else:
                assert sampler in SOLVERS and schedule in SOLVERS[sampler].schedules
                assert_finite_image(result, 64, 80)
                ran += 1
    assert ran == sum(len(SOLVERS[s].schedules) for s in samplers if s in SOLVERS)
    assert ran + refused == len(samplers) * len(schedules)


def test_every_sd3_sampler_of_the_contract_is_classified():
    samplers = set(contract.values("sd3-med-img2img", "sampler"))
    assert samplers == set(SOLVERS) | set(REFUSED)
    assert set(contract.values("sd3-med-img2img", "scheduler")) == set(ALL_SCHEDULES)


def test_the_catalog_default_sd3_combination_is_offered(engine):
    sampler, schedule = contract.default("sd3-med-img2img", "sampler"), contract.default("sd3-med-img2img", "scheduler")
    assert_finite_image(generate(engine, "sd3-med-img2img", sampler=sampler, scheduler=schedule), 64, 64)


def test_sd3_refuses_a_size_its_patches_cannot_tile(engine):
    with pytest.raises(WorkerError) as caught:
        generate(engine, "sd3-med-img2img", width=72, height=64)
    assert caught.value.code == "invalid_request" and "16" in caught.value.message
