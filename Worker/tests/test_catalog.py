"""The worker's models file: what it accepts, and how it names a broken entry."""

from pathlib import Path

import pytest
import yaml

from sdgate_worker.catalog import CatalogError, parse_catalog


def parse(text: str, tmp_path: Path):
    (tmp_path / "weights-a").mkdir(exist_ok=True)
    return parse_catalog(yaml.safe_load(text), tmp_path / "models.yaml")


def test_folders_resolve_against_the_models_file_and_repo_ids_stay_ids(tmp_path):
    catalog = parse("""
weights:
  a: { kind: sdxl, source: ./weights-a }
  r: { kind: sdxl-refiner, source: stabilityai/stable-diffusion-xl-refiner-1.0 }
models:
  m: { weights: a, refiner: r }
""", tmp_path)
    assert catalog.weights["a"].is_folder and catalog.weights["a"].source == str((tmp_path / "weights-a").resolve())
    assert not catalog.weights["r"].is_folder
    assert catalog.models["m"].family == "sdxl"
    assert catalog.models["m"].all_weights() == ["a", "r"]


def test_base_model_choices_default_to_the_named_one(tmp_path):
    catalog = parse("""
weights:
  a: { kind: sdxl, source: ./weights-a }
  b: { kind: sdxl, source: org/b }
models:
  m: { base_models: { Juggernaut: a, sdxl: b }, default_base_model: sdxl }
""", tmp_path)
    assert catalog.models["m"].base_models == {"juggernaut": "a", "sdxl": "b"}
    assert catalog.models["m"].default_base_model == "sdxl"


@pytest.mark.parametrize("text, named", [
    ("weights: { a: { kind: sd2, source: org/a } }\nmodels: { m: { weights: a } }", "weights.a.kind"),
    ("weights: { a: { kind: sd3, source: ./missing } }\nmodels: { m: { weights: a } }", "weights.a.source"),
    ("weights: { a: { kind: sd3, source: org/a } }\nmodels: { m: { weights: b } }", "models.m"),
    ("weights: { a: { kind: sdxl, source: org/a } }\nmodels: { m: { weights: a, refiner: a } }",
     "models.m.refiner"),
    ("weights: { a: { kind: sdxl, source: org/a }, c: { kind: sd3, source: org/c } }\n"
     "models: { m: { base_models: { x: a, y: c } } }", "models.m"),
])
def test_a_broken_entry_is_named(tmp_path, text, named):
    with pytest.raises(CatalogError) as caught:
        parse(text, tmp_path)
    assert named in str(caught.value) and "models.yaml" in str(caught.value)


def test_the_example_models_file_names_every_model_of_the_gateway_catalog():
    from sdgate_worker.catalog import load_catalog
    import contract
    example = load_catalog(Path(__file__).resolve().parents[1] / "models.example.yaml")
    gateway = yaml.safe_load(contract.CATALOG.read_text())["models"]
    assert set(example.models) == set(gateway)
    assert all(example.models[name].family == gateway[name]["family"] for name in gateway)
