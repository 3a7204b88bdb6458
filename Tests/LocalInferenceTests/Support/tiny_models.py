"""Builds the worker tests' tiny random pipelines under a folder and writes a models file for the
catalog's four models over them, and an input image beside it; prints the models file's path. No download: the pipelines are
built from configs in code and saved, so the worker loads them through its real loading path."""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "Worker" / "tests"))

import tiny_pipelines  # noqa: E402
from PIL import Image  # noqa: E402

MODELS = """\
weights:
  sd15: { kind: sd1.5, source: ./sd15 }
  sdxl-base: { kind: sdxl, source: ./sdxl-base }
  sdxl-other: { kind: sdxl, source: ./sdxl-other }
  sdxl-refiner: { kind: sdxl-refiner, source: ./sdxl-refiner }
  sd3: { kind: sd3, source: ./sd3, text_encoder_3: false }
models:
  sd1.5-img2img: { weights: sd15 }
  sdxl-img2img:
    base_models: { juggernaut: sdxl-other, sdxl: sdxl-base }
    default_base_model: juggernaut
  sdxl1.0-txt2img: { weights: sdxl-base, refiner: sdxl-refiner }
  sd3-med-img2img: { weights: sd3 }
"""

root = Path(sys.argv[1])
tiny_pipelines.build_all(root)
(root / "models.yaml").write_text(MODELS)
# An input image for the image-to-image models: a real, decodable 64x64 PNG.
Image.new("RGB", (64, 64), (200, 120, 40)).save(root / "input.png")
print(root / "models.yaml")
