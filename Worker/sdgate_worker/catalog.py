"""The worker's models file: which weights each model name runs on.

    weights:                      # each entry: a diffusers folder, or a Hugging Face repo id in the cache
      sdxl-base:   { kind: sdxl, source: stabilityai/stable-diffusion-xl-base-1.0, variant: fp16 }
      sdxl-refiner: { kind: sdxl-refiner, source: /srv/models/sdxl-refiner }
    models:                       # the gateway's model names
      sdxl1.0-txt2img: { weights: sdxl-base, refiner: sdxl-refiner }
      sdxl-img2img:    { base_models: { juggernaut: juggernaut-xl, sdxl: sdxl-base }, default_base_model: juggernaut }

Problems are reported with the file, the entry and the field, and stop the worker at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

FAMILY_BY_KIND = {"sd1.5": "sd1.5", "sdxl": "sdxl", "sdxl-refiner": "sdxl", "sd3": "sd3"}
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class CatalogError(Exception):
    pass


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    kind: str
    # A folder (absolute) or a Hugging Face repo id; both go through `from_pretrained`.
    source: str
    is_folder: bool
    revision: str | None = None
    variant: str | None = None
    # SD3 only: False drops the T5 encoder (about 9 GB in fp16), as many deployments do.
    text_encoder_3: bool = True

    @property
    def family(self) -> str:
        return FAMILY_BY_KIND[self.kind]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    # base_model value -> weights name; a model without a choice has one entry under the key None.
    base_models: dict[str | None, str]
    default_base_model: str | None = None
    refiner: str | None = None

    def all_weights(self) -> list[str]:
        """Every weights entry this model may run on, without duplicates."""
        return list(dict.fromkeys([*self.base_models.values(), *([self.refiner] if self.refiner else [])]))


@dataclass(frozen=True)
class Catalog:
    weights: dict[str, WeightsEntry]
    models: dict[str, ModelEntry] = field(default_factory=dict)


def load_catalog(path: Path) -> Catalog:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise CatalogError(f"{path}: cannot read: {error}") from error
    return parse_catalog(document, path)


def parse_catalog(document: object, path: Path) -> Catalog:
    problems: list[str] = []
    if not isinstance(document, dict):
        raise CatalogError(f"{path}: must be a mapping with `weights` and `models`")
    weights = {}
    for name, raw in _mapping(document.get("weights"), f"{path}: weights", problems).items():
        entry = _weights_entry(str(name), raw, path, problems)
        if entry:
            weights[entry.name] = entry
    models = {}
    for name, raw in _mapping(document.get("models"), f"{path}: models", problems).items():
        entry = _model_entry(str(name), raw, weights, path, problems)
        if entry:
            models[entry.name] = entry
    if problems:
        raise CatalogError("\n".join(problems))
    return Catalog(weights=weights, models=models)


def _mapping(value: object, where: str, problems: list[str]) -> dict:
    if not isinstance(value, dict) or not value:
        problems.append(f"{where}: must be a non-empty mapping")
        return {}
    return value


def _weights_entry(name: str, raw: object, path: Path, problems: list[str]) -> WeightsEntry | None:
    where = f"{path}: weights.{name}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    kind, source = raw.get("kind"), raw.get("source")
    if kind not in FAMILY_BY_KIND:
        problems.append(f"{where}.kind: must be one of {', '.join(FAMILY_BY_KIND)}")
        return None
    if not isinstance(source, str) or not source:
        problems.append(f"{where}.source: must be a folder or a Hugging Face repo id")
        return None
    # A relative folder is relative to the models file, so a file and its weights can move together.
    folder = Path(source) if Path(source).is_absolute() else path.parent / source
    is_folder = folder.is_dir()
    if not is_folder and (source.startswith((".", "/")) or not REPO_ID.match(source)):
        problems.append(f"{where}.source: {source!r} is neither an existing folder nor a repo id (owner/name)")
        return None
    text_encoder_3 = raw.get("text_encoder_3", True)
    if not isinstance(text_encoder_3, bool):
        problems.append(f"{where}.text_encoder_3: must be true or false")
    return WeightsEntry(name=name, kind=kind, source=str(folder.resolve()) if is_folder else source,
                        is_folder=is_folder, revision=_optional_string(raw, "revision", where, problems),
                        variant=_optional_string(raw, "variant", where, problems),
                        text_encoder_3=text_encoder_3 is not False)


def _optional_string(raw: dict, key: str, where: str, problems: list[str]) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        problems.append(f"{where}.{key}: must be a string")
        return None
    return value


def _model_entry(name: str, raw: object, weights: dict[str, WeightsEntry], path: Path,
                 problems: list[str]) -> ModelEntry | None:
    where = f"{path}: models.{name}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    if ("weights" in raw) == ("base_models" in raw):
        problems.append(f"{where}: needs exactly one of `weights` or `base_models`")
        return None
    choices = raw["base_models"] if "base_models" in raw else {None: raw["weights"]}
    if not isinstance(choices, dict) or not choices:
        problems.append(f"{where}.base_models: must be a non-empty mapping of name to weights")
        return None
    base_models = {(None if k is None else str(k).lower()): v for k, v in choices.items()}
    for choice, weights_name in base_models.items():
        entry = weights.get(weights_name)
        if entry is None or entry.kind == "sdxl-refiner":
            problems.append(f"{where}: {weights_name!r} is not a base weights entry")
            return None
    families = {weights[w].family for w in base_models.values()}
    if len(families) != 1:
        problems.append(f"{where}: base models of different families")
        return None
    default = raw.get("default_base_model", next(iter(base_models)))
    default = default.lower() if isinstance(default, str) else default
    if default not in base_models:
        problems.append(f"{where}.default_base_model: must be one of the base_models")
        return None
    refiner = raw.get("refiner")
    if refiner is not None and (refiner not in weights or weights[refiner].kind != "sdxl-refiner"):
        problems.append(f"{where}.refiner: {refiner!r} is not an sdxl-refiner weights entry")
        return None
    return ModelEntry(name=name, family=families.pop(), base_models=base_models,
                      default_base_model=default, refiner=refiner)
