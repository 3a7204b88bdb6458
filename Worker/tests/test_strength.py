"""Strength decides how many denoising steps an img2img generation runs."""

import io
import base64

import numpy as np
import pytest
from PIL import Image

from sdgate_worker.request import parse_generate_request

from conftest import png_base64, request_json
from denoiser_calls import counting

# diffusers' rules: SD 1.5 / SDXL run int(steps * strength); SD3 runs steps - int(steps - steps * strength).
EPSILON_RULE = lambda steps, strength: int(steps * strength)  # noqa: E731
SD3_RULE = lambda steps, strength: steps - int(steps - steps * strength)  # noqa: E731

CASES = [
    ("sd1.5-img2img", "sd15", {"scheduler": "Euler"}, EPSILON_RULE),
    ("sdxl-img2img", "sdxl-base", {"scheduler": "Euler", "base_model": "sdxl"}, EPSILON_RULE),
    ("sd3-med-img2img", "sd3-no-t5", {"sampler": "euler", "scheduler": "normal"}, SD3_RULE),
]


@pytest.mark.parametrize("model, weights, fields, rule", CASES)
@pytest.mark.parametrize("steps, strength", [(4, 1.0), (4, 0.5), (10, 0.3), (10, 0.55)])
def test_strength_sets_the_number_of_denoising_steps(engine, model, weights, fields, rule, steps, strength):
    with counting(engine, weights) as calls:
        engine.generate(parse_generate_request(request_json(model, steps=steps, strength=strength, **fields)))
    assert len(calls) == rule(steps, strength)


def test_the_rules_differ_where_the_families_round_differently():
    # The case above that tells the two rules apart, so the test really checks which one runs.
    assert EPSILON_RULE(10, 0.55) == 5 and SD3_RULE(10, 0.55) == 6


@pytest.mark.parametrize("model, weights, fields, rule", CASES)
def test_a_strength_that_leaves_no_step_returns_the_input(engine, model, weights, fields, rule):
    # The lowest strength each catalog entry allows: 0.1 for SD 1.5 / SDXL, 0 for SD3.
    strength = 0.0 if rule is SD3_RULE else 0.1
    picture = png_base64(64, 64, seed=3)
    with counting(engine, weights) as calls:
        result = engine.generate(parse_generate_request(
            request_json(model, image=picture, steps=4, strength=strength, **fields)))
    assert rule(4, strength) == 0 and calls == []
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["images"][0]["data"]))))
    assert np.array_equal(out, np.asarray(Image.open(io.BytesIO(base64.b64decode(picture))).convert("RGB")))
