"""Reading one image file into RGB pixels, with errors that name the file.

Every mode a PNG can hold is accepted: 8-bit grayscale, RGB, RGBA, palette and 16-bit
grayscale. 8-bit modes go through ``PIL.Image.convert("RGB")`` exactly as the paper's reference
pipeline does (alpha dropped, palette looked up, gray replicated); 16-bit images are scaled by
their full range (PIL's own conversion would clip them to white).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medbench.errors import DataError, MedbenchWarning

#: Images smaller than this on either side load, with a warning: they carry little information.
TINY_SIDE = 32

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def decode_workers() -> int:
    """Threads for decoding many images at once (PNG decoding releases the GIL)."""
    return max(1, min(8, os.cpu_count() or 1))


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` into an (H, W, 3) array: uint8 for 8-bit files, float32 in [0, 1] for 16-bit."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes), not an image")
        with Image.open(path) as img:
            img.load()
            if img.mode in _SIXTEEN_BIT:
                gray = np.asarray(img, dtype=np.float32) / 65535.0
                rgb = np.repeat(np.clip(gray, 0.0, 1.0)[..., None], 3, axis=2)
            elif img.mode == "F":
                gray = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
                rgb = np.repeat(gray[..., None], 3, axis=2)
            else:
                rgb = np.array(img.convert("RGB"))
    except DataError:
        raise
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
