"""Reading one image file into RGB pixels, with errors that name the file.

Every mode a PNG can hold is accepted: 8-bit grayscale, RGB, RGBA, palette and 16-bit
grayscale. 8-bit modes go through ``PIL.Image.convert("RGB")`` exactly as the paper's reference
pipeline does (alpha dropped, palette looked up, gray replicated); 16-bit images are scaled by
their full range (PIL's own conversion would clip them to white).

Single-channel images wider than 8 bits often hold less than their container: 12-bit scanner
data in a 16-bit PNG, 8-bit values in a float or 32-bit integer TIFF. Scaled by the container's
range they would come out dark (16 grey levels) or white; they are scaled by the smallest
standard depth (8, 10, 12, 14 or 16 bits) that holds their largest value instead, with a
warning that names the first such file. Pillow's guard against decompression bombs stays on
(``data.max_image_pixels``); an image over it is a one-line error naming the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medbench.data.pixels import arrays
from medbench.errors import DataError, MedbenchWarning

#: Images smaller than this on either side load, with a warning: they carry little information.
TINY_SIDE = 32

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


#: Depths a single-channel image may hold, smallest first: scaled by the first that fits.
STANDARD_BITS = (8, 10, 12, 14, 16)
_WARNED_DEPTH: set[tuple[str, int]] = set()


def scale_gray(pixels: np.ndarray, mode: str, path: str | Path) -> np.ndarray:
    """A single-channel image of more than 8 bits as float32 in [0, 1].

    16-bit (``I;16*``) and 32-bit (``I``) integers and floats (``F``) are divided by the
    smallest standard depth's range (:data:`STANDARD_BITS`) that holds their largest value;
    floats already in [0, 1] stay as they are. A container wider than its data (12 bits in 16,
    8 bits in a float) is said once per (mode, depth) in a warning naming the first file.
    """
    gray = np.asarray(pixels, dtype=np.float64)
    top = float(np.nanmax(gray)) if gray.size else 0.0
    if mode == "F" and top <= 1.0:
        return np.clip(gray, 0.0, 1.0).astype(np.float32)
    bits = next((b for b in STANDARD_BITS if top <= 2**b - 1), None)
    scale = float(2**bits - 1) if bits is not None else top
    container = {"F": "a float image", "I": "a 32-bit image"}.get(mode, "a 16-bit image")
    full = bits == 16 and mode != "F"  # 16-bit data in its own container (or PIL's "I")
    key = (mode if mode in ("F", "I") else "I;16", bits or 0)
    if not full and key not in _WARNED_DEPTH:
        _WARNED_DEPTH.add(key)
        held = f"{bits}-bit values" if bits is not None else f"values up to {top:g}"
        warnings.warn(
            f"{path}: {container} holding {held} (largest {top:g}): scaled by {scale:g}, not by "
            "its container's range (files like it are scaled the same way without a warning)",
            MedbenchWarning,
            stacklevel=3,
        )
    return np.clip(gray / scale, 0.0, 1.0).astype(np.float32)


def decode_workers() -> int:
    """Threads for decoding many images at once (PNG decoding releases the GIL)."""
    return max(1, min(8, os.cpu_count() or 1))


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` into an (H, W, 3) array: uint8 for 8-bit files, float32 in [0, 1] for 16-bit.

    ``path`` may also name one image of an array file (``FILE::ARRAY[INDEX]``, see
    :mod:`medbench.data.pixels.arrays`).
    """
    if arrays.parse(path) is not None:
        return _member_rgb(path)
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes), not an image")
        with warnings.catch_warnings():  # medbench says it itself, below: one line, an error
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            limit = Image.MAX_IMAGE_PIXELS
            if limit and img.width * img.height > limit:
                # Pillow only warns between its limit and twice it (a 144-Mpx image passed)
                raise DataError(
                    f"{path}: {img.width}x{img.height} pixels, over the limit of {limit:,} "
                    "(the guard against decompression bombs); if the file is trusted, raise "
                    "data.max_image_pixels"
                )
            img.load()
            if img.mode in _SIXTEEN_BIT or img.mode == "F":
                gray = scale_gray(np.asarray(img), img.mode, path)
                rgb = np.repeat(gray[..., None], 3, axis=2)
            else:
                rgb = np.array(img.convert("RGB"))
    except DataError:
        raise
    except Image.DecompressionBombError as err:
        raise DataError(
            f"{path}: larger than Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} pixels (its guard "
            f"against decompression bombs: {err}); if the file is trusted, raise "
            "data.max_image_pixels"
        ) from None
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image file") from None
    except (OSError, ValueError, SyntaxError) as err:  # truncated or corrupt data
        raise DataError(f"{path}: corrupt or truncated image ({err})") from None
    h, w = rgb.shape[:2]
    if min(h, w) < TINY_SIDE:
        warnings.warn(
            f"{path}: tiny image ({w}x{h} pixels), upscaled to the model size",
            MedbenchWarning,
            stacklevel=2,
        )
    return rgb


_WARNED_TINY: set[str] = set()


def _member_rgb(path: str | Path) -> np.ndarray:
    """An array member as RGB, like a file of the same mode. Its images are all one size, so a
    tiny size is said once per array file, not once per image."""
    pixels = arrays.read_member(path)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        raise DataError(f"{path}: an image array must be (H, W) or (H, W, 3), got {pixels.shape}")
    if 0 in pixels.shape[:2]:  # (N, 0, 0) arrays: passed the audit's counts, crashed the resize
        raise DataError(f"{path}: an empty image (shape {pixels.shape})")
    if pixels.dtype == np.uint8:
        rgb = pixels[..., :3] if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)
        rgb = np.ascontiguousarray(rgb)
    elif pixels.dtype == np.uint16 and pixels.ndim == 2:  # as a 16-bit PNG: scaled by its depth
        rgb = np.repeat(scale_gray(pixels, "I;16", path)[..., None], 3, axis=2)
    elif pixels.dtype == np.uint16:
        rgb = pixels[..., :3].astype(np.float32) / 65535.0
    else:
        raise DataError(
            f"{path}: image arrays must hold uint8 or uint16 pixels, not {pixels.dtype}"
        )
    h, w = rgb.shape[:2]
    file = str(arrays.parse(path).file)
    if min(h, w) < TINY_SIDE and file not in _WARNED_TINY:
        _WARNED_TINY.add(file)
        warnings.warn(
            f"{file}: tiny images ({w}x{h} pixels), upscaled to the model size",
            MedbenchWarning,
            stacklevel=3,
        )
    return rgb
