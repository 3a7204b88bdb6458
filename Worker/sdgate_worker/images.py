"""Input images in, encoded output images out, with the checks between."""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import WorkerError, invalid

# Checked from the header, before any pixel is decoded (decompression bombs).
MAX_INPUT_PIXELS = 4096 * 4096


def decode_input_image(data: str, width: int, height: int) -> Image.Image:
    """The base64 input as RGB, resized to the output size (the gateway has already rounded it)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("image: not valid base64") from None
    try:
        image = Image.open(io.BytesIO(raw))
        if image.width * image.height > MAX_INPUT_PIXELS:
            raise invalid(f"image: {image.width}x{image.height} is larger than {MAX_INPUT_PIXELS} pixels")
        image.seek(0)  # animated formats: the first frame
        image = image.convert("RGB")
    except WorkerError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise invalid("image: not a decodable image") from None
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image


def check_finite(images: np.ndarray) -> None:
    """A NaN or infinite pixel means the numbers broke down (fp16 overflow, a bad scheduler); encoding it
    would silently give a black or noisy image."""
    if not np.isfinite(images).all():
        raise WorkerError("failed", "the model produced non-finite pixel values (NaN or infinity); "
                                    "no image was encoded")


def to_pil(images: np.ndarray) -> list[Image.Image]:
    """Float images in [0, 1] of shape (n, h, w, 3) as 8-bit RGB."""
    check_finite(images)
    pixels = (np.clip(images, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return [Image.fromarray(p, mode="RGB") for p in pixels]


def encode(image: Image.Image, output_format: str, jpeg_quality: int) -> bytes:
    buffer = io.BytesIO()
    if output_format == "jpeg":
        image.save(buffer, format="JPEG", quality=jpeg_quality)
    elif output_format == "png":
        image.save(buffer, format="PNG")
    else:
        raise ValueError(output_format)
    return buffer.getvalue()
