"""Data-pipeline benchmark: the paper's reference pipeline against medbench's, side by side.

Reference (the authors' script): a Dataset that opens each PNG with PIL, converts to RGB,
applies torchvision ``Resize((256, 256))`` and ``ToTensor()``, in a DataLoader, every epoch.
medbench: the first epoch decodes once into the tensor cache (worker threads); later epochs
cut batches from the in-memory uint8 tensor.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


class ReferenceDataset(torch.utils.data.Dataset):
    """The paper's per-epoch decode-and-resize pipeline."""

    def __init__(self, paths: list[str], labels: list[int], size: int) -> None:
        from torchvision import transforms as T

        self.paths, self.labels = paths, labels
        self.transform = T.Compose([T.Resize((size, size)), T.ToTensor()])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB")), self.labels[i]


def _drain(batches) -> int:
    n = 0
    for x, _ in batches:
        n += len(x)
    return n


def bench_data(
    n_images: int = 240,
    image_size: int = 256,
    batch_size: int = 32,
    workers: int = 2,
    epochs: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Images per second of both pipelines, first epoch and later epochs, on the same PNGs."""
    from medbench.data.loader import BatchLoader
    from medbench.data.manifest import read_manifest
    from medbench.data.synthetic import generate
    from medbench.data.transforms import PreprocessSettings, load_cached

    tmp = Path(tempfile.mkdtemp(prefix="medbench-bench-data-"))
    try:
        generate(tmp / "bus", n=n_images, seed=seed)
        manifest = read_manifest(tmp / "bus")
        paths, labels = list(manifest["path"]), [int(v) for v in manifest["label"]]
        n = len(paths)

        ref_loader = torch.utils.data.DataLoader(
            ReferenceDataset(paths, labels, image_size),
            batch_size=batch_size,
            shuffle=True,
            num_workers=workers,
            persistent_workers=workers > 0,
        )
        ref_times = []
        for _ in range(epochs):
            start = time.perf_counter()
            _drain(ref_loader)
            ref_times.append(time.perf_counter() - start)

        settings = PreprocessSettings(image_size=image_size)
        ours_times = []
        start = time.perf_counter()
        cached = load_cached(paths, settings, root=tmp / "cache", workers=workers)
        loader = BatchLoader(
            images=cached.images,
            labels=torch.tensor(labels),
            index=torch.arange(n).numpy(),
            batch_size=batch_size,
            shuffle=True,
            seed=seed,
        )
        _drain(loader.epoch(0))
        ours_times.append(time.perf_counter() - start)
        for epoch in range(1, epochs):
            start = time.perf_counter()
            _drain(loader.epoch(epoch))
            ours_times.append(time.perf_counter() - start)
        # a later run: the disk cache is warm, nothing is decoded
        start = time.perf_counter()
        warm = load_cached(paths, settings, root=tmp / "cache", workers=workers)
        warm_load = time.perf_counter() - start
        sizes = manifest["path"].map(lambda p: _size(p))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def ips(seconds: list[float]) -> float:
        return n / (sum(seconds) / len(seconds))

    ref_first, ref_later = n / ref_times[0], ips(ref_times[1:])
    ours_first, ours_later = n / ours_times[0], ips(ours_times[1:])
    return {
        "images": n,
        "image_size": image_size,
        "source_pixels_median": int(sizes.median()),
        "workers": workers,
        "reference_first_epoch_ips": ref_first,
        "reference_later_epochs_ips": ref_later,
        "medbench_first_epoch_ips": ours_first,
        "medbench_later_epochs_ips": ours_later,
        "medbench_warm_cache_load_s": warm_load,
        "warm_cache_decoded": warm.decoded,
        "data_speedup_first_epoch": ours_first / ref_first,
        "data_speedup_later_epochs": ours_later / ref_later,
    }


def _size(path: str) -> int:
    from PIL import Image

    with Image.open(path) as img:
        return img.width * img.height


def render_data(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"data pipeline: {r['images']} PNGs (median {r['source_pixels_median']:,} px) -> {r['image_size']}x{r['image_size']}, {r['workers']} workers",
            f"  {'':<22}{'first epoch':>14}{'later epochs':>16}",
            f"  {'reference (PIL/tv)':<22}{r['reference_first_epoch_ips']:>10.0f} im/s{r['reference_later_epochs_ips']:>12.0f} im/s",
            f"  {'medbench':<22}{r['medbench_first_epoch_ips']:>10.0f} im/s{r['medbench_later_epochs_ips']:>12.0f} im/s",
            f"  speed-up: first epoch {r['data_speedup_first_epoch']:.1f}x, later epochs {r['data_speedup_later_epochs']:.0f}x; "
            f"a later run loads the warm cache in {r['medbench_warm_cache_load_s']:.2f} s ({r['warm_cache_decoded']} decoded)",
        ]
    )
