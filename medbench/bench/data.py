"""Data-pipeline benchmark: the paper's reference pipeline against medbench's, side by side.

Reference (the authors' script): a Dataset that opens each PNG with PIL, converts to RGB,
applies torchvision ``Resize((256, 256))`` and ``ToTensor()``, in a DataLoader, every epoch.
medbench: the first epoch decodes once into the tensor cache (worker threads); later epochs
cut batches from the in-memory uint8 tensor; a later run loads the warm cache.

Every figure is the median of interleaved repetitions of at least a second of work each
(:mod:`medbench.bench.timing`); speed-ups are ratios of CPU time (this process and its
DataLoader workers), with the wall-clock ratios next to them. torch runs on one thread in this
process, as in each DataLoader worker; medbench's first epoch decodes on ``workers`` threads.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torchvision import transforms as T

from medbench.bench.timing import (
    MIN_SECONDS,
    REPETITIONS,
    Spread,
    interleaved,
    inverse,
    one_thread,
)
from medbench.data.pixels.loader import BatchLoader
from medbench.data.pixels.transforms import PreprocessSettings, load_cached
from medbench.data.read.manifest import read_manifest
from medbench.data.synth.synthetic import generate


class ReferenceDataset(torch.utils.data.Dataset):
    """The paper's per-epoch decode-and-resize pipeline."""

    def __init__(self, paths: list[str], labels: list[int], size: int) -> None:
        self.paths, self.labels = paths, labels
        self.transform = T.Compose([T.Resize((size, size)), T.ToTensor()])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB")), self.labels[i]


def drain(batches) -> int:
    """Pull every batch of an epoch; the number of images."""
    n = 0
    for x, _ in batches:
        n += len(x)
    return n


def compare_pipelines(
    paths: list[str],
    labels: list[int],
    cache: Path,
    image_size: int = 256,
    batch_size: int = 32,
    workers: int = 2,
    repetitions: int = REPETITIONS,
    min_seconds: float = MIN_SECONDS,
    seed: int = 0,
) -> dict[str, Any]:
    """Seconds per epoch of the reference and of medbench (first, later, warm), interleaved.

    ``cache`` is a scratch folder: the first-epoch contender empties it before every unit.
    """
    n = len(paths)
    settings = PreprocessSettings(image_size=image_size)
    reference = torch.utils.data.DataLoader(
        ReferenceDataset(paths, labels, image_size),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )

    def first_epoch() -> None:
        shutil.rmtree(cache, ignore_errors=True)
        cached = load_cached(paths, settings, root=cache, workers=max(workers, 1))
        drain(loader_of(cached.images).epoch(0))

    def loader_of(images: torch.Tensor) -> BatchLoader:
        return BatchLoader(
            images=images,
            labels=torch.tensor(labels),
            index=torch.arange(n).numpy(),
            batch_size=batch_size,
            shuffle=True,
            seed=seed,
        )

    epoch = [0]

    def later_epoch() -> None:
        epoch[0] += 1
        drain(loader.epoch(epoch[0]))

    def warm_load() -> None:
        load_cached(paths, settings, root=cache, workers=max(workers, 1))

    with one_thread():  # as each DataLoader worker of the reference runs
        first_epoch()
        cached = load_cached(paths, settings, root=cache)
        loader = loader_of(cached.images)
        timed = interleaved(
            {
                "reference": lambda: drain(reference),
                "medbench_first_epoch": first_epoch,
                "medbench_later_epochs": later_epoch,
                "medbench_warm_cache_load": warm_load,
            },
            repetitions,
            min_seconds,
        )
    warm = load_cached(paths, settings, root=cache)
    ref, first, later = (
        timed[k] for k in ("reference", "medbench_first_epoch", "medbench_later_epochs")
    )
    return {
        "images": n,
        "image_size": image_size,
        "batch_size": batch_size,
        "workers": workers,
        "repetitions": repetitions,
        "seconds": {k: t.to_dict() for k, t in timed.items()},
        "ips": {
            "reference": inverse(ref.wall, n).to_dict(),
            "medbench_first_epoch": inverse(first.wall, n).to_dict(),
            "medbench_later_epochs": inverse(later.wall, n).to_dict(),
        },
        "speedup_cpu": {
            "first_epoch": (ref.cpu / first.cpu).to_dict(),
            "later_epochs": (ref.cpu / later.cpu).to_dict(),
        },
        "speedup_wall": {
            "first_epoch": (ref.wall / first.wall).to_dict(),
            "later_epochs": (ref.wall / later.wall).to_dict(),
        },
        "warm_cache_decoded": warm.decoded,
    }


def bench_data(
    n_images: int = 240,
    image_size: int = 256,
    batch_size: int = 32,
    workers: int = 2,
    repetitions: int = REPETITIONS,
    min_seconds: float = MIN_SECONDS,
    seed: int = 0,
) -> dict[str, Any]:
    """Both pipelines on the same ``n_images`` synthetic PNGs (default sizes)."""
    tmp = Path(tempfile.mkdtemp(prefix="medbench-bench-data-"))
    try:
        generate(tmp / "bus", n=n_images, seed=seed)
        manifest = read_manifest(tmp / "bus")
        paths = list(manifest["path"])
        result = compare_pipelines(
            paths,
            [int(v) for v in manifest["label"]],
            tmp / "cache",
            image_size,
            batch_size,
            workers,
            repetitions,
            min_seconds,
            seed,
        )
        result["source_pixels_median"] = int(
            manifest["path"].map(lambda p: math.prod(source_size(p))).median()
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["data_speedup_later_epochs"] = result["speedup_cpu"]["later_epochs"]["median"]
    return result


def source_size(path: str) -> tuple[int, int]:
    """An image file's (width, height), from its header."""
    with Image.open(path) as img:
        return img.size


def render_pipelines(r: dict[str, Any]) -> list[str]:
    """The comparison table of :func:`compare_pipelines`: images per second, speed-ups."""
    ips = {k: Spread(v["runs"]) for k, v in r["ips"].items()}
    cpu = {k: Spread(v["runs"]) for k, v in r["speedup_cpu"].items()}
    wall = {k: Spread(v["runs"]) for k, v in r["speedup_wall"].items()}
    warm = Spread(r["seconds"]["medbench_warm_cache_load"]["wall_s"]["runs"])
    return [
        f"  images per second (wall; torch on one thread per process), median (min-max) of "
        f"{r['repetitions']} interleaved repetitions:",
        f"    reference (PIL + torchvision, {r['workers']} DataLoader workers), every epoch: "
        + ips["reference"].text(".0f"),
        f"    medbench first epoch (decode into the cache): {ips['medbench_first_epoch'].text('.0f')}",
        f"    medbench later epochs (in-memory uint8 tensor): {ips['medbench_later_epochs'].text('.0f')}",
        f"  speed-up over the reference in CPU time (workers included): first epoch "
        f"{cpu['first_epoch'].text('.2f', 'x')}, later epochs {cpu['later_epochs'].text('.0f', 'x')}",
        f"  speed-up in wall time: first epoch {wall['first_epoch'].text('.2f', 'x')}, "
        f"later epochs {wall['later_epochs'].text('.0f', 'x')}",
        f"  a later run loads the warm cache in {warm.text('.3f', ' s')} "
        f"({r['warm_cache_decoded']} images decoded)",
    ]


def render_data(r: dict[str, Any]) -> str:
    head = (
        f"data pipeline: {r['images']} PNGs (median {r['source_pixels_median']:,} px) -> "
        f"{r['image_size']}x{r['image_size']}, batch {r['batch_size']}"
    )
    return "\n".join([head, *render_pipelines(r)])
