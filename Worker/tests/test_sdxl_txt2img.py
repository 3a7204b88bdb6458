"""SDXL text-to-image: the refiner hand-off at high_noise_fraction, refiner: false, and style presets."""

import pytest

from sdgate_worker.errors import WorkerError
from sdgate_worker.request import parse_generate_request
from sdgate_worker.styles import STYLES, apply_style

from conftest import request_json
import contract
from denoiser_calls import counting


def run(engine, **fields):
    return engine.generate(parse_generate_request(request_json("sdxl1.0-txt2img", scheduler="Euler", **fields)))


@pytest.mark.parametrize("steps, fraction", [(10, 0.8), (10, 0.5), (20, 0.75)])
def test_the_base_denoises_the_high_noise_fraction_and_the_refiner_the_rest(engine, steps, fraction):
    with counting(engine, "sdxl-base") as base, counting(engine, "sdxl-refiner") as refiner:
        run(engine, steps=steps, high_noise_fraction=fraction)
    # Euler takes one denoiser call per step; the hand-off splits the schedule, it does not add steps.
    assert len(base) == round(steps * fraction)
    assert len(refiner) == steps - len(base)


def test_refiner_false_runs_the_base_alone(engine):
    with counting(engine, "sdxl-base") as base, counting(engine, "sdxl-refiner") as refiner:
        result = run(engine, steps=6, refiner=False)
    assert len(base) == 6 and refiner == []
    assert result["weights"] == ["sdxl-base"]


def test_the_refiner_changes_the_image(engine):
    assert run(engine, refiner=False)["images"] != run(engine, refiner=True)["images"]


def test_a_fraction_of_one_refines_the_finished_image_at_the_refiner_strength(engine):
    with counting(engine, "sdxl-base") as base, counting(engine, "sdxl-refiner") as refiner:
        run(engine, steps=10, high_noise_fraction=1.0, strength=0.3)
    assert (len(base), len(refiner)) == (10, 3)


def test_a_fraction_of_zero_is_refused(engine):
    with pytest.raises(WorkerError) as caught:
        run(engine, high_noise_fraction=0.0)
    assert caught.value.code == "unsupported" and "high_noise_fraction" in caught.value.message


def test_asking_for_a_refiner_that_is_not_configured_is_refused(engine):
    body = request_json("sdxl1.0-txt2img", model="sdxl-no-refiner", refiner=True)
    with pytest.raises(WorkerError) as caught:
        engine.generate(parse_generate_request(body))
    assert caught.value.code == "unsupported" and "refiner" in caught.value.message


def test_every_contract_style_has_a_preset():
    assert set(contract.values("sdxl1.0-txt2img", "style")) == {"base"} | set(STYLES)


def test_a_style_wraps_the_prompt_and_prepends_its_negative():
    prompt, negative = apply_style("Origami", "a crane", "blurry")
    assert prompt.startswith("origami style a crane")
    assert negative.endswith(", blurry") and negative != "blurry"
    assert apply_style("base", "a crane", None) == ("a crane", None)


def test_a_style_changes_the_image_and_an_unknown_one_is_refused(engine):
    assert run(engine, style="anime")["images"] != run(engine, style="base")["images"]
    with pytest.raises(WorkerError) as caught:
        run(engine, style="vaporwave-deluxe")
    assert caught.value.code == "unsupported"
