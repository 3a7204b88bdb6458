"""Bad inputs and failures inside a generation answer typed errors, and the worker serves on."""

import base64
import io

import pytest
from PIL import Image

from sdgate_worker.errors import WorkerError
from sdgate_worker.request import parse_generate_request

from conftest import make_engine, request_json


@pytest.fixture(scope="module")
def faulty(models_file):
    return make_engine(models_file, faults=True)


def generate(engine, base="sd1.5-img2img", **fields):
    return engine.generate(parse_generate_request(request_json(base, **fields)))


def error_of(engine, base="sd1.5-img2img", **fields) -> WorkerError:
    with pytest.raises(WorkerError) as caught:
        generate(engine, base, **fields)
    return caught.value


@pytest.mark.parametrize("image", ["not base64!", base64.b64encode(b"plain text, not an image").decode()])
def test_an_undecodable_image_is_an_invalid_request(engine, image):
    error = error_of(engine, image=image)
    assert error.code == "invalid_request" and "image" in error.message


def test_jpeg_is_encoded_at_the_asked_size(engine):
    result = generate(engine, output_format="jpeg", width=64, height=48)
    data = base64.b64decode(result["images"][0]["data"])
    assert data[:3] == b"\xff\xd8\xff"
    assert Image.open(io.BytesIO(data)).size == (64, 48)


@pytest.mark.parametrize("base", ["sd1.5-img2img", "sdxl1.0-txt2img", "sd3-med-img2img"])
def test_out_of_memory_is_typed_and_the_next_request_runs(faulty, base):
    generate(faulty, "sdxl-img2img", base_model="juggernaut")  # an idle model for the recovery to unload
    error = error_of(faulty, base, inject_fault="out_of_memory")
    assert error.code == "out_of_memory" and error.status == 503
    assert "sdxl-other" not in [w["name"] for w in faulty.store.snapshot()]
    assert not faulty.busy
    assert len(generate(faulty, base)["images"]) == 1


def test_an_exception_inside_the_model_is_failed_and_the_next_request_runs(faulty):
    error = error_of(faulty, inject_fault="failed")
    assert error.code == "failed" and "injected failure" in error.message
    assert len(generate(faulty)["images"]) == 1


@pytest.mark.parametrize("base", ["sd1.5-img2img", "sdxl1.0-txt2img", "sd3-med-img2img"])
def test_non_finite_output_is_never_encoded(faulty, base):
    error = error_of(faulty, base, inject_fault="nan")
    assert error.code == "failed" and "non-finite" in error.message


def test_fault_injection_is_refused_unless_enabled(engine):
    error = error_of(engine, inject_fault="out_of_memory")
    assert error.code == "invalid_request" and "disabled" in error.message
