"""Training benchmark: epoch time per optimizer for one model, and the share spent waiting for data.

The optimizers take turns epoch by epoch (round-robin) on the same cached data, so the ratios
GCSAM/Adam and SAM/Adam are measured side by side. The training loop is the engine's own
:func:`medbench.engine.train.train_epoch`.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

OPTIMIZERS = ("adam", "sam", "gcsam")


def bench_train(
    model: str = "resnet18",
    image_size: int = 64,
    batch_size: int = 32,
    n_images: int = 300,
    epochs: int = 3,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    from medbench.data.loader import BatchLoader, place_images
    from medbench.data.manifest import read_manifest
    from medbench.data.synthetic import generate
    from medbench.data.transforms import PreprocessSettings, load_cached
    from medbench.engine.device import Precision, resolve_device
    from medbench.engine.train import train_epoch
    from medbench.models import build_model
    from medbench.optim import build_optimizer

    dev = resolve_device(device)
    precision = Precision.for_device(dev)
    tmp = Path(tempfile.mkdtemp(prefix="medbench-bench-train-"))
    try:
        generate(tmp / "bus", n=n_images, seed=seed)
        manifest = read_manifest(tmp / "bus")
        cached = load_cached(
            list(manifest["path"]), PreprocessSettings(image_size=image_size), root=tmp / "cache"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    images = place_images(cached.images, dev)
    labels = torch.tensor(manifest["label"].to_numpy())
    loader = BatchLoader(
        images=images,
        labels=labels,
        index=torch.arange(len(labels)).numpy(),
        batch_size=batch_size,
        device=dev,
        shuffle=True,
        seed=seed,
        channels_last=precision.channels_last,
    )
    runs = {}
    for name in OPTIMIZERS:
        torch.manual_seed(seed)
        net = build_model(model, image_size=image_size).to(dev)
        if precision.channels_last:
            net = net.to(memory_format=torch.channels_last)
        runs[name] = (net, build_optimizer(name, net.parameters(), lr=1e-4))
    times: dict[str, list[float]] = {n: [] for n in OPTIMIZERS}
    waits: dict[str, list[float]] = {n: [] for n in OPTIMIZERS}
    for epoch in range(epochs + 1):  # epoch 0 warms up (allocator, kernels) and is not counted
        order = OPTIMIZERS[epoch % len(OPTIMIZERS) :] + OPTIMIZERS[: epoch % len(OPTIMIZERS)]
        for name in order:
            net, opt = runs[name]
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
            wait = train_epoch(net, net, opt, loader, epoch, dev, precision).data_time_s
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if epoch:
                times[name].append(time.perf_counter() - start)
                waits[name].append(wait)
    med = {n: statistics.median(t) for n, t in times.items()}
    wait_fraction = sum(sum(w) for w in waits.values()) / sum(sum(t) for t in times.values())
    return {
        "model": model,
        "image_size": image_size,
        "batch_size": batch_size,
        "images_per_epoch": len(labels),
        "device": str(dev),
        "epochs_timed": epochs,
        "epoch_time_s": med,
        "data_wait_fraction": wait_fraction,
        "sam_over_adam_epoch_time": med["sam"] / med["adam"],
        "gcsam_over_adam_epoch_time": med["gcsam"] / med["adam"],
        "gcsam_over_sam_epoch_time": med["gcsam"] / med["sam"],
    }


def render_train(r: dict[str, Any]) -> str:
    t = r["epoch_time_s"]
    return "\n".join(
        [
            f"training: {r['model']} at {r['image_size']}x{r['image_size']}, batch {r['batch_size']}, "
            f"{r['images_per_epoch']} images/epoch on {r['device']} (median of {r['epochs_timed']} epochs, round-robin)",
            "  " + "   ".join(f"{n}: {t[n]:.2f} s/epoch" for n in t),
            f"  SAM/Adam {r['sam_over_adam_epoch_time']:.3f}   GCSAM/Adam {r['gcsam_over_adam_epoch_time']:.3f}   "
            f"GCSAM/SAM {r['gcsam_over_sam_epoch_time']:.3f}   waiting for data: {100 * r['data_wait_fraction']:.2f}% of epoch time",
        ]
    )
