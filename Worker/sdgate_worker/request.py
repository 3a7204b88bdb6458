"""The generate request: decoded from JSON, checked field by field, every problem reported at once."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import invalid

TASKS = ("text-to-image", "image-to-image")
FAMILIES = ("sd1.5", "sdxl", "sd3")
OUTPUT_FORMATS = ("jpeg", "png")
UINT64_MAX = 2**64 - 1

# Sanity limits; the gateway's catalog is stricter per model.
MAX_SIDE = 4096
MAX_SAMPLES = 8
MAX_STEPS = 500
MAX_PROMPT_CHARS = 20_000


@dataclass(frozen=True)
class GenerateRequest:
    model: str
    task: str
    prompt: str
    width: int
    height: int
    steps: int
    guidance_scale: float
    seed: int
    family: str | None = None
    negative_prompt: str | None = None
    image_base64: str | None = None
    samples: int = 1
    strength: float | None = None
    scheduler: str | None = None
    sampler: str | None = None
    style: str | None = None
    refiner: bool | None = None
    high_noise_fraction: float | None = None
    base_model: str | None = None
    output_format: str = "jpeg"
    jpeg_quality: int = 90
    inject_fault: str | None = None
    # Who asked, opaque (the gateway sends the key id): a batching worker takes turns across members.
    member: str | None = None
    # Names the generation for POST /cancel (the gateway's job id).
    request_id: str | None = None


class _Reader:
    """Reads typed fields out of a JSON object, collecting problems instead of stopping at the first."""

    def __init__(self, body: dict):
        self.body = body
        self.problems: list[str] = []

    def _get(self, name: str, required: bool):
        value = self.body.get(name)
        if value is None and required:
            self.problems.append(f"{name}: required")
        return value

    def string(self, name: str, required: bool = False, choices: tuple[str, ...] | None = None,
               max_chars: int = MAX_PROMPT_CHARS) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problems.append(f"{name}: must be a string")
        elif len(value) > max_chars:
            self.problems.append(f"{name}: longer than {max_chars} characters")
        elif choices is not None and value not in choices:
            self.problems.append(f"{name}: must be one of {', '.join(choices)}")
        else:
            return value
        return None

    def integer(self, name: str, low: int, high: int, required: bool = False) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        # bool is a subclass of int in Python; JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"{name}: must be an integer")
        elif not low <= value <= high:
            self.problems.append(f"{name}: must be between {low} and {high}")
        else:
            return value
        return None

    def number(self, name: str, low: float, high: float, required: bool = False) -> float | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.problems.append(f"{name}: must be a finite number")
        elif not low <= value <= high:
            self.problems.append(f"{name}: must be between {low:g} and {high:g}")
        else:
            return float(value)
        return None

    def boolean(self, name: str) -> bool | None:
        value = self._get(name, False)
        if value is None or isinstance(value, bool):
            return value
        self.problems.append(f"{name}: must be true or false")
        return None

    def seed(self, name: str) -> int | None:
        """An unsigned 64-bit seed, as a JSON integer or a decimal string (for clients whose JSON numbers
        are doubles and would round seeds above 2^53)."""
        value = self._get(name, True)
        if value is None:
            return None
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT64_MAX:
            self.problems.append(f"{name}: must be an integer between 0 and {UINT64_MAX}")
            return None
        return value


def parse_generate_request(body: object) -> GenerateRequest:
    """Decodes a generate request, or raises `invalid_request` listing every bad field."""
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    r = _Reader(body)
    fields = dict(
        model=r.string("model", required=True, max_chars=200),
        family=r.string("family", choices=FAMILIES),
        task=r.string("task", required=True, choices=TASKS),
        prompt=r.string("prompt", required=True),
        negative_prompt=r.string("negative_prompt"),
        image_base64=r.string("image", max_chars=2**31),
        width=r.integer("width", 8, MAX_SIDE, required=True),
        height=r.integer("height", 8, MAX_SIDE, required=True),
        samples=r.integer("samples", 1, MAX_SAMPLES),
        steps=r.integer("steps", 1, MAX_STEPS, required=True),
        guidance_scale=r.number("guidance_scale", 0.0, 100.0, required=True),
        strength=r.number("strength", 0.0, 1.0),
        seed=r.seed("seed"),
        scheduler=r.string("scheduler", max_chars=100),
        sampler=r.string("sampler", max_chars=100),
        style=r.string("style", max_chars=100),
        refiner=r.boolean("refiner"),
        high_noise_fraction=r.number("high_noise_fraction", 0.0, 1.0),
        base_model=r.string("base_model", max_chars=100),
        output_format=r.string("output_format", choices=OUTPUT_FORMATS),
        jpeg_quality=r.integer("jpeg_quality", 1, 100),
        inject_fault=r.string("inject_fault", max_chars=100),
        member=r.string("member", max_chars=200),
        request_id=r.string("request_id", max_chars=100),
    )
    for side in ("width", "height"):
        if fields[side] is not None and fields[side] % 8:
            r.problems.append(f"{side}: must be a multiple of 8")
    if fields["task"] == "image-to-image" and fields["image_base64"] is None:
        r.problems.append("image: required for image-to-image")
    if fields["task"] == "text-to-image" and fields["image_base64"] is not None:
        r.problems.append("image: not allowed for text-to-image")
    if r.problems:
        raise invalid("; ".join(r.problems))
    # Absent optional fields keep the dataclass defaults.
    return GenerateRequest(**{k: v for k, v in fields.items() if v is not None})
