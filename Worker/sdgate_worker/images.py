"""Input images in, encoded output images out, with the checks between."""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import WorkerError, invalid, unsupported

# Checked from the header, before any pixel is decoded (decompression bombs).
MAX_INPUT_PIXELS = 4096 * 4096
# A progressive JPEG's decoder makes one pass over every block of a scan's component per scan, an empty
# scan too, so the time a JPEG takes grows with its scans, not its bytes: the input limit holds about a
# million empty 18-byte scans, minutes of decoding. Encoders write about 10 (libjpeg's progression: 10
# for colour, 6 for grey); 256 leaves room for any real scan script, and 256 scans of a 4096x4096 image
# decode in about a second.
MAX_JPEG_SCANS = 256
JPEG_SIGNATURE = b"\xff\xd8\xff"
START_OF_SCAN = b"\xff\xda"
# The formats the gateway passes on (it reads their headers). Pillow opens dozens more, each with its own
# decoder and costs, a TIFF's strips of JPEG among them, whose scans the count above never sees.
INPUT_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")


def decode_input_image(data: str, width: int, height: int) -> Image.Image:
    """The base64 input as RGB, resized to the output size (the gateway has already rounded it)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("image: not valid base64") from None
    check_jpeg_scans(raw)
    try:
        image = Image.open(io.BytesIO(raw), formats=INPUT_FORMATS)
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


def check_jpeg_scans(raw: bytes) -> None:
    """Refuses a JPEG of more than MAX_JPEG_SCANS scans before it is decoded. Counts every start-of-scan
    marker's two bytes in the file: inside a scan's data a 0xFF byte is always followed by 0x00 or a
    restart marker, so each scan a decoder reads is one of them; those in metadata (an embedded
    thumbnail's own scans) only add a few. `unsupported`, not `invalid_request`: the file is a valid JPEG,
    and the gateway answers the member's request 422, where a request it sent wrong is its own 502."""
    if not raw.startswith(JPEG_SIGNATURE):
        return
    scans = raw.count(START_OF_SCAN)
    if scans > MAX_JPEG_SCANS:
        raise unsupported(f"image: a JPEG of more than {MAX_JPEG_SCANS} scans is not decoded "
                          f"(this one has {scans} start-of-scan markers)")


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
