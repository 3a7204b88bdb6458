"""The scheduler and sampler names of the contract, read from the gateway's own model catalog, so the
worker's tests follow the catalog instead of a copy of it."""

from __future__ import annotations

from pathlib import Path

import yaml

CATALOG = Path(__file__).resolve().parents[2] / "Config" / "models.yaml"


def _fields(model: str) -> dict:
    return yaml.safe_load(CATALOG.read_text())["models"][model]["fields"]


def values(model: str, field: str) -> list[str]:
    return list(_fields(model)[field]["values"])


def default(model: str, field: str):
    return _fields(model)[field]["default"]
