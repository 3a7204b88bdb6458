"""Builds the worker tests' tiny random pipelines under a folder, with their models file (the
catalog's four models and a few more) and an input image beside it; prints the models file's path.
No download: the pipelines are built from configs in code and saved, so the worker loads them
through its real loading path."""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "Worker" / "tests"))

import tiny_pipelines  # noqa: E402
from PIL import Image  # noqa: E402

root = Path(sys.argv[1])
tiny_pipelines.build_all(root)
(root / "models.yaml").write_text(tiny_pipelines.MODELS_YAML)
# An input image for the image-to-image models: a real, decodable 64x64 PNG.
Image.new("RGB", (64, 64), (200, 120, 40)).save(root / "input.png")
print(root / "models.yaml")
