"""Cross-request batching: compatible requests run as one pipeline call and each gets the images it gets
alone; requests that cannot share a call are kept apart.

"The same images" is up to floating-point rounding, whatever the scheduler: the noise of every sample is
drawn from its own generator either way, but torch's kernels (CPU and GPU alike) may add up a convolution
or a matrix product in another order for another batch size, so after 8-bit rounding a few pixels can come
out one level apart. The tests allow at most 2 levels on at most 1% of the pixels; another seed changes
nearly every pixel by far more."""

import numpy as np
import pytest
import torch

from sdgate_worker.batching import batch_key
from sdgate_worker.request import parse_generate_request

from conftest import decode_image, png_base64, request_json

MAX_LEVELS = 2
MAX_DIFFERING = 0.01

# Every family and task, and schedulers whose noise comes from the samples' own generators at each step.
BATCHABLE = [
    ("sd1.5-img2img", {}),
    ("sd1.5-img2img", {"scheduler": "Euler a"}),
    ("sdxl-img2img", {"scheduler": "DPM2 a Karras"}),
    ("sdxl1.0-txt2img", {"scheduler": "DDPM", "style": "anime"}),
    ("sd3-med-img2img", {"sampler": "dpmpp_2m", "scheduler": "sgm_uniform"}),
]


def members(model, fields):
    """Three requests of one batch key from different members: own prompts, negatives, seeds, sample
    counts and (img2img) input pictures."""
    bodies = [
        request_json(model, prompt="a lighthouse at dusk", negative_prompt="blurry", seed=7, **fields),
        request_json(model, prompt="a red fox in snow", negative_prompt="text, watermark", seed=2**40 + 3,
                     samples=2, **fields),
        request_json(model, prompt="an orchard", negative_prompt="", seed=0, **fields),
    ]
    for number, body in enumerate(bodies):
        if "image" in body:
            body["image"] = png_base64(64, 64, seed=number)
    return [parse_generate_request(b) for b in bodies]


def pictures(answer):
    return [np.asarray(decode_image(entry), dtype=np.int16) for entry in answer["images"]]


def assert_same_images(together, alone):
    assert len(together) == len(alone)
    for a, b in zip(together, alone):
        difference = np.abs(a - b)
        assert difference.max() <= MAX_LEVELS and (difference > 0).mean() <= MAX_DIFFERING


def assert_other_images(one, other):
    assert (np.abs(one - other) > MAX_LEVELS).mean() > 0.5


@pytest.mark.parametrize("model, fields", BATCHABLE)
def test_a_batch_gives_each_request_the_images_it_gets_alone(engine, model, fields):
    requests = members(model, fields)
    prepared = [engine.prepare(r) for r in requests]
    assert len({batch_key(p, engine) for p in prepared}) == 1
    batched = engine.run_group(prepared)
    alone = [engine.generate(r) for r in requests]
    assert [a["batch_size"] for a in batched] == [3, 3, 3]
    assert [len(a["images"]) for a in batched] == [1, 2, 1]
    for together, single in zip(batched, alone):
        assert_same_images(pictures(together), pictures(single))
    first, second = pictures(batched[0]) + pictures(batched[1])[:1]
    assert_other_images(first, second)


@pytest.mark.parametrize("model, fields", [
    ("sdxl-img2img", {"scheduler": "dpmpp_sde_ancestral"}),
    ("sd3-med-img2img", {"sampler": "euler_ancestral", "scheduler": "normal"}),
    ("sd3-med-img2img", {"sampler": "dpmpp_2m_sde", "scheduler": "simple"}),
    ("sd1.5-img2img", {"strength": 0.1}),
    ("sdxl1.0-txt2img", {"style": "no-such-style"}),
])
def test_requests_whose_image_would_depend_on_their_neighbours_run_alone(engine, model, fields):
    assert batch_key(engine.prepare(parse_generate_request(request_json(model, **fields))), engine) is None


@pytest.mark.parametrize("difference", [
    {"guidance_scale": 7.0}, {"steps": 5}, {"width": 72}, {"strength": 0.5}, {"scheduler": "DDIM"},
    {"negative_prompt": None}, {"model": "sdxl-img2img", "family": "sdxl", "base_model": "sdxl"},
])
def test_requests_that_differ_in_more_than_prompt_and_seed_are_not_batched(engine, difference):
    one = engine.prepare(parse_generate_request(request_json("sd1.5-img2img")))
    other = engine.prepare(parse_generate_request(request_json("sd1.5-img2img", prompt="x", seed=5, samples=3,
                                                               output_format="jpeg", **difference)))
    same = engine.prepare(parse_generate_request(request_json("sd1.5-img2img", prompt="x", seed=5, samples=3,
                                                              output_format="jpeg")))
    assert batch_key(one, engine) == batch_key(same, engine)
    assert batch_key(one, engine) != batch_key(other, engine)


def test_sd3_img2img_gives_several_samples_of_one_request(engine):
    # SD3's pipeline encodes the input image once per sample generator and had one image for all of them.
    answer = engine.generate(parse_generate_request(request_json("sd3-med-img2img", seed=300, samples=2)))
    second_alone = engine.generate(parse_generate_request(request_json("sd3-med-img2img", seed=301)))
    first, second = pictures(answer)
    assert_same_images([second], pictures(second_alone))
    assert_other_images(first, second)


def test_a_batch_that_runs_out_of_memory_runs_each_request_alone(engine, monkeypatch):
    # A device with room for two images at a time: the batch of four fails, each request alone fits.
    run = engine._run
    calls = []

    def two_images_at_most(model, r, loaded, image, generators=None, request_ids=None):
        images = len(generators) if generators is not None else r.samples
        calls.append(images)
        if images > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (a test's device of two images)")
        return run(model, r, loaded, image, generators, request_ids)

    monkeypatch.setattr(engine, "_run", two_images_at_most)
    requests = members("sd1.5-img2img", {})
    answers = engine.run_group([engine.prepare(r) for r in requests])
    assert calls == [4, 1, 2, 1]
    assert [a["batch_size"] for a in answers] == [1, 1, 1]
    monkeypatch.undo()
    for answer, request in zip(answers, requests):
        assert_same_images(pictures(answer), pictures(engine.generate(request)))
