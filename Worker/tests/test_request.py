"""Decoding and checking the generate request, before any model is touched."""

import pytest

from sdgate_worker.errors import WorkerError
from sdgate_worker.request import UINT64_MAX, parse_generate_request

from conftest import request_json


def problems(body) -> str:
    with pytest.raises(WorkerError) as caught:
        parse_generate_request(body)
    assert caught.value.code == "invalid_request"
    return caught.value.message


def test_a_full_request_decodes():
    request = parse_generate_request(request_json("sdxl1.0-txt2img", seed=7))
    assert (request.model, request.width, request.seed, request.refiner) == ("sdxl1.0-txt2img", 64, 7, True)


@pytest.mark.parametrize("seed", [0, 2**53 + 1, UINT64_MAX])
def test_seeds_are_unsigned_64_bit_integers_kept_exactly(seed):
    assert parse_generate_request(request_json("sd1.5-img2img", seed=seed)).seed == seed


def test_a_seed_may_come_as_a_decimal_string():
    assert parse_generate_request(request_json("sd1.5-img2img", seed=str(UINT64_MAX))).seed == UINT64_MAX


@pytest.mark.parametrize("seed", [-1, UINT64_MAX + 1, 1.5, "12a", True])
def test_seeds_outside_uint64_are_refused(seed):
    assert "seed" in problems(request_json("sd1.5-img2img", seed=seed))


def test_every_bad_field_is_reported_at_once():
    body = request_json("sd1.5-img2img", width=65, steps=0, guidance_scale="7", refiner="yes")
    del body["prompt"]
    message = problems(body)
    for field in ("prompt", "width", "steps", "guidance_scale", "refiner"):
        assert field in message


def test_image_to_image_needs_an_image_and_text_to_image_refuses_one():
    body = request_json("sd1.5-img2img")
    del body["image"]
    assert "image" in problems(body)
    assert "image" in problems(request_json("sdxl1.0-txt2img", image="aGVsbG8="))


@pytest.mark.parametrize("body", [[], "text", None])
def test_a_body_that_is_not_an_object_is_refused(body):
    assert "object" in problems(body)


def test_unknown_fields_are_ignored_for_forward_compatibility():
    assert parse_generate_request(request_json("sd1.5-img2img", future_option=3)).model == "sd1.5-img2img"
