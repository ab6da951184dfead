"""Preprocessing as in the GCSAM paper, as MONAI transforms, with an on-disk tensor cache.

The paper's pipeline is ``PIL .convert("RGB")`` -> torchvision ``Resize((256, 256))`` ->
``ToTensor()``. Here the same result comes from :class:`ReadRGB` and :class:`ResizeAntialiased`
composed with MONAI; MONAI's own ``Resize`` smooths with a Gaussian before bilinear sampling and
differs from PIL by ~0.02 on average, so the resize is an antialiased bilinear ``interpolate``,
the operation torchvision uses to match PIL.

The cache stores each preprocessed image as uint8 (the reference pipeline's own precision: its
``Resize`` works on 8-bit images), keyed by the file's content digest and the preprocessing
settings, so later epochs and later runs decode no PNG and a changed file is never served stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from medbench.data.pixels import arrays
from medbench.data.pixels.images import decode_workers, read_rgb
from medbench.errors import MedbenchError, MedbenchWarning
from medbench.optional import lazy_import
from medbench.paths import atomic_write, cache_dir, ensure_folder

tqdm_auto = lazy_import("tqdm.auto")  # only a progress bar needs it
# only a cache miss preprocesses: a process that reads the cache (every packed worker, a warm
# run) is spared MONAI's import, which loads torchvision's models and torch._dynamo (seconds)
monai_transforms = lazy_import("monai.transforms")

#: Bump when the preprocessing changes so that old cache entries are not reused.
PREPROCESS_VERSION = 2  # 2: single-channel images scaled by their depth


@dataclass(frozen=True)
class PreprocessSettings:
    """What determines a preprocessed tensor (besides the file's content)."""

    image_size: int = 256

    def key(self) -> str:
        blob = json.dumps({"v": PREPROCESS_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


class ReadRGB:
    """File path -> float32 (3, H, W) tensor in [0, 1]; a transform as MONAI's ``Compose``
    takes them (any callable), defined without subclassing MONAI's so that it loads lazily."""

    def __call__(self, path: str | os.PathLike) -> torch.Tensor:
        rgb = read_rgb(path)
        scale = 255.0 if rgb.dtype == np.uint8 else 1.0
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(scale)


class ResizeAntialiased:
    """(C, H, W) -> (C, size, size), bilinear with antialiasing: agrees with PIL's resize."""

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(
            img[None],
            size=(self.size, self.size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )[0]
        return out.clamp_(0.0, 1.0)


def preprocess_transform(settings: PreprocessSettings):
    """The paper's preprocessing (a MONAI ``Compose``): RGB, resized, float32 (C, H, W) in
    [0, 1]."""
    return monai_transforms.Compose([ReadRGB(), ResizeAntialiased(settings.image_size)])


def preprocess(path: str | os.PathLike, settings: PreprocessSettings) -> torch.Tensor:
    """Run :func:`preprocess_transform` on one file; a bad file raises its own one-line DataError."""
    try:
        return preprocess_transform(settings)(path)
    except RuntimeError as err:  # MONAI wraps errors raised inside a transform
        cause = err
        while cause.__cause__ is not None and isinstance(cause, RuntimeError):
            cause = cause.__cause__
        if isinstance(cause, MedbenchError):
            raise cause from None
        raise


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Quantise a [0, 1] image to 8 bits (round half up, as PIL does)."""
    return img.mul(255.0).add_(0.5).floor_().clamp_(0, 255).to(torch.uint8)


def file_digest(path: str | os.PathLike) -> str:
    """Content digest of one file: the cache key does not trust names or timestamps. An array
    member (``FILE::ARRAY[INDEX]``) is digested by its own pixels."""
    if arrays.parse(path) is not None:
        return arrays.member_digest(path)
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _preprocess_to_cache(job: tuple[str, str, PreprocessSettings]) -> str:
    path, target, settings = job
    array = to_uint8(preprocess(path, settings)).numpy()
    atomic_write(Path(target), lambda f: np.save(f, array))
    return target


@dataclass
class CachedImages:
    """The preprocessed images of a manifest, in manifest order, as one uint8 (N, 3, S, S) tensor."""

    images: torch.Tensor
    digests: list[str]
    decoded: int  # how many files had to be decoded this time (0 on a warm cache)


def load_cached(
    paths: Sequence[str],
    settings: PreprocessSettings,
    root: Path | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> CachedImages:
    """Preprocess ``paths`` once (in worker threads) and load them from the cache.

    Errors while decoding name the file (``DataError`` from :func:`read_rgb`).
    """
    folder = (root or cache_dir() / "images") / settings.key()
    ensure_folder(folder)
    digests = [file_digest(p) for p in paths]
    targets = [folder / digest[:2] / f"{digest}.npy" for digest in digests]
    todo = {
        str(t): p for t, p in zip(targets, paths, strict=True) if not t.exists()
    }  # one per content
    jobs = [(p, t, settings) for t, p in todo.items()]
    workers = decode_workers() if workers is None else workers
    # threads, not processes: PNG decoding (zlib) and torch's resize release the GIL, and a fork
    # after torch has started its thread pools can deadlock the children
    pool = ThreadPoolExecutor(max_workers=workers) if len(jobs) > 16 and workers > 1 else None
    bar = _progress(len(jobs), "preprocessing") if progress and jobs else None
    try:
        for _ in (pool.map if pool else map)(_preprocess_to_cache, jobs):
            if bar:
                bar.update()
    finally:
        if pool:
            pool.shutdown()
        if bar:
            bar.close()
    size = settings.image_size
    images = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    rebuilt = 0
    for i, target in enumerate(targets):
        array = _read_entry(target, size)
        if array is None:  # truncated, an object array, another shape: never trusted, rebuilt
            _preprocess_to_cache((paths[i], str(target), settings))
            array, rebuilt = _read_entry(target, size), rebuilt + 1
        images[i] = torch.from_numpy(array)
    if rebuilt:
        warnings.warn(
            f"{rebuilt} unreadable entries of the preprocessing cache {folder} were rebuilt",
            MedbenchWarning,
            stacklevel=2,
        )
    return CachedImages(images=images, digests=digests, decoded=len(jobs) + rebuilt)


def _read_entry(target: Path, size: int) -> np.ndarray | None:
    """A cached image, or None when the entry cannot be one (cut short by a full disk, written
    by something else, of another size): such an entry is rebuilt, never fails every run."""
    try:
        array = np.load(target, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        return None
    return array if array.shape == (3, size, size) else None


def _progress(total: int, desc: str):
    return tqdm_auto.tqdm(total=total, desc=desc, unit="img", leave=False)
