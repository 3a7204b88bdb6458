"""Weights load lazily through from_pretrained, from a folder or from the Hugging Face cache by repo id,
and are unloaded least recently used first under a memory budget."""

import shutil

import pytest

from sdgate_worker.errors import WorkerError
from sdgate_worker.request import parse_generate_request

from conftest import make_engine, request_json


def generate(engine, base, **fields):
    return engine.generate(parse_generate_request(request_json(base, **fields)))


def loaded_names(engine):
    return [w["name"] for w in engine.store.snapshot()]


def test_nothing_loads_before_a_request_needs_it(models_file):
    engine = make_engine(models_file)
    assert loaded_names(engine) == [] and not any(m["loaded"] for m in engine.describe_models())
    generate(engine, "sd1.5-img2img")
    assert loaded_names(engine) == ["sd15"]
    assert [m["name"] for m in engine.describe_models() if m["loaded"]] == ["sd1.5-img2img"]


def fake_hub_cache(root, repo_id, folder):
    """The Hugging Face cache layout: models--OWNER--NAME/{refs/main, snapshots/COMMIT/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_a_repo_id_loads_from_the_hugging_face_cache(tmp_path, tiny_root, engine):
    cache = tmp_path / "hub"
    fake_hub_cache(cache, "tiny-org/sd15", tiny_root / "sd15")
    models = tmp_path / "models.yaml"
    models.write_text("weights: { sd15: { kind: sd1.5, source: tiny-org/sd15 } }\n"
                      "models: { sd1.5-img2img: { weights: sd15 } }\n")
    from_cache = make_engine(models, hf_cache=str(cache))
    # The same weights from the cache and from their folder give the same bytes.
    assert generate(from_cache, "sd1.5-img2img")["images"] == generate(engine, "sd1.5-img2img")["images"]


def test_a_repo_missing_from_the_cache_is_a_typed_failure(tmp_path):
    models = tmp_path / "models.yaml"
    models.write_text("weights: { sd15: { kind: sd1.5, source: tiny-org/absent } }\n"
                      "models: { sd1.5-img2img: { weights: sd15 } }\n")
    with pytest.raises(WorkerError) as caught:
        generate(make_engine(models, hf_cache=str(tmp_path / "empty")), "sd1.5-img2img")
    assert caught.value.code == "failed" and "tiny-org/absent" in caught.value.message


def test_the_least_recently_used_weights_make_room_under_the_budget(models_file, engine):
    generate(engine, "sd1.5-img2img")
    generate(engine, "sdxl-img2img", base_model="sdxl")
    sizes = {w["name"]: w["size_bytes"] for w in engine.store.snapshot()}
    # Room for the larger of the two, not for both.
    small = make_engine(models_file, budget=max(sizes["sd15"], sizes["sdxl-base"]) + 1)
    generate(small, "sd1.5-img2img")
    generate(small, "sdxl-img2img", base_model="sdxl")
    assert loaded_names(small) == ["sdxl-base"]
    generate(small, "sd1.5-img2img")
    assert loaded_names(small) == ["sd15"]


def test_a_request_keeps_all_its_weights_even_over_budget(models_file):
    tiny_budget = make_engine(models_file, budget=1)
    generate(tiny_budget, "sdxl1.0-txt2img")
    assert loaded_names(tiny_budget) == ["sdxl-base", "sdxl-refiner"]


def test_base_model_chooses_the_weights(engine):
    jugg = generate(engine, "sdxl-img2img", base_model="juggernaut")
    sdxl = generate(engine, "sdxl-img2img", base_model="SDXL")
    default = generate(engine, "sdxl-img2img", base_model=None)
    assert (jugg["weights"], sdxl["weights"]) == (["sdxl-other"], ["sdxl-base"])
    assert jugg["images"] != sdxl["images"] and default["images"] == jugg["images"]
    with pytest.raises(WorkerError) as caught:
        generate(engine, "sdxl-img2img", base_model="dreamshaper")
    assert caught.value.code == "unsupported" and "dreamshaper" in caught.value.message


def test_sd3_runs_with_and_without_t5(engine):
    with_t5 = generate(engine, "sd3-med-img2img", model="sd3-with-t5")
    without = generate(engine, "sd3-med-img2img")
    assert with_t5["images"] != without["images"]


@pytest.mark.parametrize("fields, code", [
    ({"model": "sd9-img2img"}, "unknown_model"),
    ({"family": "sdxl"}, "invalid_request"),
    ({"task": "text-to-image", "image": None}, "unsupported"),
    ({"sampler": "euler"}, "invalid_request"),
])
def test_requests_the_worker_cannot_serve_are_refused_before_loading(models_file, fields, code):
    fresh = make_engine(models_file)
    with pytest.raises(WorkerError) as caught:
        generate(fresh, "sd1.5-img2img", **fields)
    assert caught.value.code == code and loaded_names(fresh) == []
