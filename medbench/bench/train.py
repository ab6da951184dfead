"""Training benchmark: epoch time per optimizer for one model, and the share spent waiting for data.

The optimizers take turns (round-robin, at least a second of epochs each per repetition) on the
same cached data, so the ratios GCSAM/Adam and SAM/Adam are measured side by side; on the CPU
they are ratios of CPU time. The training loop is the engine's own
:func:`medbench.engine.train.train_epoch`.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import torch

from medbench.bench.timing import MIN_SECONDS, REPETITIONS, Spread, interleaved, one_thread
from medbench.data.messages import plural
from medbench.data.pixels.loader import BatchLoader, place_images
from medbench.data.pixels.transforms import PreprocessSettings, load_cached
from medbench.data.read.manifest import read_manifest
from medbench.data.synth.synthetic import generate
from medbench.engine.device import Precision, resolve_device
from medbench.engine.train import train_epoch
from medbench.models import build_model
from medbench.optim import build_optimizer

OPTIMIZERS = ("adam", "sam", "gcsam")


def bench_train(
    model: str = "resnet18",
    image_size: int = 64,
    batch_size: int = 32,
    n_images: int = 300,
    repetitions: int = REPETITIONS,
    device: str = "auto",
    seed: int = 0,
    min_seconds: float = MIN_SECONDS,
) -> dict[str, Any]:
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
    waits: dict[str, list[float]] = {n: [] for n in OPTIMIZERS}
    epoch = [0]

    def one_epoch(name: str) -> None:
        net, opt = runs[name]
        epoch[0] += 1
        waits[name].append(train_epoch(net, net, opt, loader, epoch[0], dev, precision).data_time_s)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    # the first call of each (calibration) warms up the allocator and kernels; on the CPU one
    # thread, so that CPU time stays a measure of work on a busy machine
    with one_thread(dev.type == "cpu"):
        threads = torch.get_num_threads()
        timed = interleaved(
            {n: partial(one_epoch, n) for n in OPTIMIZERS}, repetitions, min_seconds, sync
        )
    for name in OPTIMIZERS:
        waits[name] = waits[name][1:]  # not the warm-up epoch
    clock = "wall" if dev.type == "cuda" else "cpu"  # CPU time: steadier on a shared CPU
    per = {n: getattr(timed[n], clock) for n in OPTIMIZERS}
    wall = {n: timed[n].wall for n in OPTIMIZERS}
    wait_fraction = sum(map(sum, waits.values())) / sum(
        sum(t.wall.runs) * t.units for t in timed.values()
    )
    return {
        "model": model,
        "image_size": image_size,
        "batch_size": batch_size,
        "images_per_epoch": len(labels),
        "device": str(dev),
        "threads": threads,
        "repetitions": repetitions,
        "clock": clock,
        "epoch_time_s": {n: wall[n].median for n in OPTIMIZERS},
        "epoch_seconds": {n: timed[n].to_dict() for n in OPTIMIZERS},
        "data_wait_fraction": wait_fraction,
        "sam_over_adam_epoch_time": (per["sam"] / per["adam"]).median,
        "gcsam_over_adam_epoch_time": (per["gcsam"] / per["adam"]).median,
        "gcsam_over_sam_epoch_time": (per["gcsam"] / per["sam"]).median,
        "ratio_runs": {
            "sam/adam": (per["sam"] / per["adam"]).runs,
            "gcsam/adam": (per["gcsam"] / per["adam"]).runs,
            "gcsam/sam": (per["gcsam"] / per["sam"]).runs,
        },
    }


def render_train(r: dict[str, Any]) -> str:
    t = r["epoch_time_s"]
    runs = {k: Spread(v) for k, v in r["ratio_runs"].items()}
    return "\n".join(
        [
            f"training: {r['model']} at {r['image_size']}x{r['image_size']}, batch {r['batch_size']}, "
            f"{r['images_per_epoch']} images/epoch on {r['device']} "
            f"({plural(r['threads'], 'thread')}; median of {r['repetitions']} "
            "interleaved repetitions of at least 1 s, optimizers taking turns)",
            "  " + "   ".join(f"{n}: {t[n]:.2f} s/epoch" for n in t),
            f"  ratios of {r['clock']} time, median (min-max): SAM/Adam {runs['sam/adam'].text('.3f')}   "
            f"GCSAM/Adam {runs['gcsam/adam'].text('.3f')}   GCSAM/SAM {runs['gcsam/sam'].text('.3f')}",
            f"  waiting for data: {100 * r['data_wait_fraction']:.2f}% of epoch time",
        ]
    )
