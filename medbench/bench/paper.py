"""What the paper's grid costs (``medbench bench paper``), measured on one fold and projected.

One fold of the ``paper`` config per (model, optimizer), on the full-scale synthetic set (2,405
images at the release's sizes, preprocessed to 256 px), through the engine's own steps
(:func:`~medbench.engine.train.setup`, :func:`~medbench.engine.train.fit_epoch`): a warm-up
epoch, then consecutive timed epochs. Per pair: seconds per epoch (training and validation: what
the grid pays), training images per second, peak device memory, device utilisation (sampled:
NVML through ``torch.cuda.utilization`` on a GPU, this process's CPU use on the CPU), and the
share of the epoch spent waiting for data.

Packing: per model, ``k`` worker processes (spawned, as the packed executor starts them) train
the same pair at once after a shared start; the throughput of all of them against one alone
gives the speed-up of ``executor.jobs_per_device: k``.

Projection: the whole grid (5 folds x models x optimizers) at ``expected_epochs`` epochs per
job, an assumption: the paper config stops after 10 epochs without a better validation loss,
out of at most 120. Flatness, testing and start-up add minutes per job and are not included.

Precision: fp32, TF32 (CUDA only) and bf16 autocast time per epoch for the first SAM-family
pair, next to the ``perturbation_fidelity`` each gives (:mod:`medbench.optim.fidelity`; TF32 is
emulated by rounding the weights to TF32's 10-bit mantissa, which is what its kernels read).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import queue
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch

from medbench.bench.timing import Spread, cpu_seconds, peak_rss_gb, reset_peak_rss
from medbench.config import data_settings, load_config
from medbench.data.dataset import prepare_dataset, synthetic_root
from medbench.data.synth.synthetic import generate
from medbench.engine.device import resolve_device
from medbench.engine.executors.packed import available_cpus, threads_per_job
from medbench.engine.jobs import Job
from medbench.engine.runner import fold_data
from medbench.engine.train import fit_epoch, setup
from medbench.optim.fidelity import cast_parameters, perturbation_fidelity
from medbench.optim.registry import is_sam_family

FOLDS = 5
#: Epochs a paper job is assumed to run before early stopping (patience 10 on the validation
#: loss): the best epoch around 20, then 10 more.
EXPECTED_EPOCHS = 30
PRECISIONS = {  # name -> config overrides
    "fp32": ["train.amp=off", "train.tf32=off"],
    "tf32": ["train.amp=off", "train.tf32=on"],
    "bf16": ["train.amp=bf16", "train.tf32=off"],
}


class Sampler:
    """Device utilisation sampled on a thread: GPU busy % (NVML) or this process's CPU %."""

    def __init__(self, device: torch.device, every: float = 0.2) -> None:
        self.device, self.every = device, every
        self.samples: list[float] = []
        self.note = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self):
        if self.device.type == "cuda":
            try:
                torch.cuda.utilization(self.device)
            except Exception as err:  # noqa: BLE001 - no NVML bindings (nvidia-ml-py)
                self.note = f"no GPU utilisation ({type(err).__name__}: install nvidia-ml-py)"
                return None
            return lambda: float(torch.cuda.utilization(self.device))

        cpus = available_cpus()
        last = [time.perf_counter(), cpu_seconds()]

        def cpu_share() -> float:
            now, used = time.perf_counter(), cpu_seconds()
            share = (used - last[1]) / max(now - last[0], 1e-9) / (cpus or 1)
            last[:] = [now, used]
            return 100.0 * share

        return cpu_share

    def _run(self) -> None:
        read = self._read()
        while read is not None and not self._stop.wait(self.every):
            self.samples.append(read())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_peak_rss()


def _peak_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    return peak_rss_gb()


def tf32_round(t: torch.Tensor) -> torch.Tensor:
    """``t`` (float32) rounded to TF32's 10-bit mantissa, to nearest, ties away from zero."""
    bits = t.detach().float().contiguous().view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)


def tf32_fidelity(fit) -> float:
    """``perturbation_fidelity`` of SAM's first step when the kernels read TF32 weights."""

    x, y = next(fit.train.epoch(0))
    fit.optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(fit.net(x).float(), y).backward()
    before = {id(p): p.detach().clone() for p in fit.model.parameters()}
    fit.optimizer.first_step(zero_grad=True)
    cast = cast_parameters(fit.model)
    rounded_before, pairs = {}, []
    for p, e in fit.optimizer.perturbation:
        now, then = (
            (tf32_round(p), tf32_round(before[id(p)])) if id(p) in cast else (p, before[id(p)])
        )
        rounded_before[id(now)] = then
        pairs.append((now, e))
    fidelity, _ = perturbation_fidelity(rounded_before, pairs, set(), None)
    fit.optimizer.second_step(zero_grad=True)  # back to w (the base step is of no interest)
    return fidelity


@dataclass
class Pair:
    """One (model, optimizer) measured on one fold."""

    model: str
    optimizer: str
    epoch_s: Spread
    train_images: int
    data_wait: float
    peak_memory_gb: float
    utilisation: float | None
    fidelity: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "epoch_s": self.epoch_s.to_dict(),
            "images_per_s": self.train_images / self.epoch_s.median,
            "train_images": self.train_images,
            "data_wait_fraction": self.data_wait,
            "peak_memory_gb": self.peak_memory_gb,
            "utilisation_pct": self.utilisation,
            "perturbation_fidelity": self.fidelity,
        }


def _config(base: list[str], root: str):

    return load_config("paper", base, data_root=root)


def measure_pair(config, model: str, optimizer: str, epochs: int, device) -> Pair:
    """A warm-up epoch, then ``epochs`` timed epochs of one fold, through the engine's steps."""

    dataset = prepare_dataset(data_settings(config.data), min(config.seeds))
    job = Job(model, optimizer, dataset.folds[0], min(config.seeds))
    fold = fold_data(dataset, config, job)
    fit = setup(job, config, fold, device)
    fit_epoch(fit)
    fit.state["epoch"] += 1
    _peak_reset(device)
    rows = []
    with Sampler(device) as sampler:
        for _ in range(epochs):
            rows.append(fit_epoch(fit))
            fit.state["epoch"] += 1
    fidelity = [r["perturbation_fidelity"] for r in rows if "perturbation_fidelity" in r]
    return Pair(
        model,
        optimizer,
        Spread([r["epoch_time_s"] for r in rows]),
        len(fold.split.train),
        sum(r["data_time_s"] for r in rows) / sum(r["epoch_time_s"] for r in rows),
        _peak_gb(device),
        sampler.mean,
        statistics.median(fidelity) if fidelity else None,
    )


def _packed_worker(overrides, root, model, optimizer, epochs, threads, barrier, results) -> None:
    """One of ``k`` processes training the same pair at once (see :func:`packed_throughput`)."""
    torch.set_num_threads(threads)

    try:
        config = _config(overrides, root)
        device = resolve_device(config.train.device)
        dataset = prepare_dataset(data_settings(config.data), min(config.seeds))
        job = Job(model, optimizer, dataset.folds[0], min(config.seeds))
        fold = fold_data(dataset, config, job)
        fit = setup(job, config, fold, device)
        fit_epoch(fit)  # warm-up
        _peak_reset(device)
        barrier.wait()
        start = time.perf_counter()
        for _ in range(epochs):
            fit_epoch(fit)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        results.put(
            ("ok", start, time.perf_counter(), len(fold.split.train) * epochs, _peak_gb(device))
        )
    except BaseException as err:  # noqa: BLE001 - out of memory, most likely: reported
        barrier.abort()
        results.put(("error", f"{type(err).__name__}: {err}".splitlines()[0][:300]))


def packed_throughput(
    overrides: list[str], root: str, model: str, optimizer: str, k: int, epochs: int, device
) -> dict[str, Any]:
    """Training images per second of ``k`` processes running the pair at once, all together."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(k), ctx.Queue()
    procs = [
        ctx.Process(
            target=_packed_worker,
            args=(overrides, root, model, optimizer, epochs, threads_per_job(k), barrier, results),
            daemon=True,
        )
        for _ in range(k)
    ]
    for p in procs:
        p.start()
    got = []
    with Sampler(device) as sampler:
        while len(got) < k:
            try:
                got.append(results.get(timeout=5))
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    got += [("error", "a worker died")] * (k - len(got))
    for p in procs:
        p.join()
    errors = [g[1] for g in got if g[0] == "error"]
    if errors:
        return {"k": k, "error": errors[0]}
    start, end = min(g[1] for g in got), max(g[2] for g in got)
    return {
        "k": k,
        "images_per_s": sum(g[3] for g in got) / (end - start),
        "wall_s": end - start,
        "peak_memory_gb": sum(g[4] for g in got),
        "utilisation_pct": sampler.mean,
    }


def project(pairs: list[dict[str, Any]], packing: dict[str, dict], expected_epochs: int):
    """Projected hours of the grid, one job at a time and at each common ``jobs_per_device``."""
    per_model: dict[str, float] = {}
    for p in pairs:
        seconds = FOLDS * expected_epochs * p["epoch_s"]["median"]
        per_model[p["model"]] = per_model.get(p["model"], 0.0) + seconds
    sequential = sum(per_model.values()) / 3600
    common = set.intersection(*(set(v["speedup"]) for v in packing.values())) if packing else set()
    packed = {
        int(k): sum(per_model[m] / packing[m]["speedup"][k] for m in per_model) / 3600
        for k in common
    }
    best = min(packed, key=packed.get) if packed else 1
    return {
        "sequential": sequential,
        "packed": packed.get(best, sequential),
        "jobs_per_device": best,
        "packed_by_k": packed,
    }


def bench_paper(
    models: list[str] | None = None,
    optimizers: list[str] | None = None,
    n: int = 2405,
    sizes: str = "release",
    image_size: int | None = None,
    batch_size: int | None = None,
    epochs: int = 5,
    device: str = "auto",
    jobs: tuple[int, ...] | None = None,
    expected_epochs: int = EXPECTED_EPOCHS,
    precisions: tuple[str, ...] = ("fp32", "tf32", "bf16"),
    packing_epochs: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Every figure of the module docstring; the options shrink it for a CPU test."""

    dev = resolve_device(device)
    root = synthetic_root(n, seed)  # generated once, in the cache
    root = root.with_name(root.name + ("" if sizes == "default" else f"-{sizes}"))
    generate(root, n=n, seed=seed, sizes=sizes)
    overrides = [f"train.device={device}", "flatness.enabled=false", "report.enabled=false"]
    if image_size:
        overrides.append(f"data.image_size={image_size}")
    if batch_size:
        overrides.append(f"train.batch_size={batch_size}")
    config = _config(overrides, str(root))
    models = models or list(config.models)
    optimizers = optimizers or list(config.optimizers)
    jobs = jobs or ((1, 2, 4, 8) if dev.type == "cuda" else (1, 2))

    pairs = [measure_pair(config, m, o, epochs, dev).to_dict() for m in models for o in optimizers]
    packing: dict[str, dict] = {}
    for m in models:
        opt = next((o for o in optimizers if is_sam_family(o)), optimizers[0])
        runs = []
        for k in jobs:
            run = packed_throughput(overrides, str(root), m, opt, k, packing_epochs, dev)
            runs.append(run)
            if "error" in run or (len(runs) > 1 and run["images_per_s"] < runs[-2]["images_per_s"]):
                break  # out of memory, or past the best
        ok = [r for r in runs if "error" not in r]
        base = ok[0]["images_per_s"] if ok and ok[0]["k"] == 1 else None
        packing[m] = {
            "optimizer": opt,
            "runs": runs,
            "speedup": {r["k"]: r["images_per_s"] / base for r in ok} if base else {},
        }
    precision = _precisions(overrides, str(root), models, optimizers, precisions, epochs, dev)
    projection = project(pairs, packing, expected_epochs)
    out = {
        "device": str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
        "n": n,
        "sizes": sizes,
        "image_size": config.data.image_size,
        "batch_size": config.train.batch_size,
        "epochs_timed": epochs,
        "expected_epochs": expected_epochs,
        "folds": FOLDS,
        "pairs": pairs,
        "packing": packing,
        "precision": precision,
        "projection": projection,
    }
    if dev.type == "cuda":
        out["paper_grid_projected_h"] = {
            "sequential": projection["sequential"],
            "packed": projection["packed"],
            "jobs_per_device": projection["jobs_per_device"],
        }
    return out


def _precisions(overrides, root, models, optimizers, names, epochs, dev) -> dict[str, Any]:
    """fp32 / TF32 / bf16 seconds per epoch and fidelity of the first SAM-family pair."""
    sam = next((o for o in optimizers if is_sam_family(o)), None)
    if sam is None:
        return {}
    out: dict[str, Any] = {"model": models[0], "optimizer": sam}
    for name in names:
        if name == "tf32" and dev.type != "cuda":
            out[name] = {"note": "TF32 is a CUDA (Ampere and later) format"}
            continue
        config = _config([*overrides, *PRECISIONS[name]], root)
        pair = measure_pair(config, models[0], sam, epochs, dev)
        fidelity = pair.fidelity
        if name == "tf32":
            fidelity = _tf32_fidelity(config, models[0], sam, dev)
        out[name] = {"epoch_s": pair.epoch_s.to_dict(), "perturbation_fidelity": fidelity}
    return out


def _tf32_fidelity(config, model: str, optimizer: str, device) -> float:

    dataset = prepare_dataset(data_settings(config.data), min(config.seeds))
    job = Job(model, optimizer, dataset.folds[0], min(config.seeds))
    return tf32_fidelity(setup(job, config, fold_data(dataset, config, job), device))


def _fmt(value: float | None, fmt: str) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:{fmt}}"
    )


def render_paper(r: dict[str, Any]) -> str:
    lines = [
        f"paper grid on {r['device']}: {r['n']} synthetic images ('{r['sizes']}' sizes) at "
        f"{r['image_size']} px, batch {r['batch_size']}, one fold, median of {r['epochs_timed']} "
        "consecutive epochs after a warm-up",
        f"  {'model':<18}{'optimizer':<10}{'s/epoch':>9}{'img/s':>9}{'peak GB':>9}{'util %':>8}"
        f"{'data wait':>11}{'fidelity':>10}",
    ]
    for p in r["pairs"]:
        lines.append(
            f"  {p['model']:<18}{p['optimizer']:<10}{p['epoch_s']['median']:>9.2f}"
            f"{p['images_per_s']:>9.1f}{p['peak_memory_gb']:>9.2f}{_fmt(p['utilisation_pct'], '.0f'):>8}"
            f"{100 * p['data_wait_fraction']:>10.1f}%{_fmt(p['perturbation_fidelity'], '.3f'):>10}"
        )
    lines.append(
        "  packing (training images per second of k processes at once, speed-up over one):"
    )
    for model, pk in r["packing"].items():
        cells = []
        for run in pk["runs"]:
            if "error" in run:
                cells.append(f"k={run['k']}: {run['error']}")
            else:
                cells.append(
                    f"k={run['k']}: {run['images_per_s']:.1f} img/s "
                    f"({pk['speedup'].get(run['k'], float('nan')):.2f}x, util "
                    f"{_fmt(run['utilisation_pct'], '.0f')}%, {run['peak_memory_gb']:.1f} GB)"
                )
        lines.append(f"    {model} ({pk['optimizer']}): " + "; ".join(cells))
    pr = r["projection"]
    lines.append(
        f"  projected paper grid ({r['folds']} folds x {r['expected_epochs']} epochs per job, an "
        f"assumption; training and validation only): {pr['sequential']:.2f} h one job at a time, "
        f"{pr['packed']:.2f} h at jobs_per_device {pr['jobs_per_device']}"
    )
    prec = r["precision"]
    if prec:
        cells = []
        for name in PRECISIONS:
            if name not in prec:
                continue
            if "note" in prec[name]:
                cells.append(f"{name}: n/a ({prec[name]['note']})")
                continue
            cells.append(
                f"{name} {prec[name]['epoch_s']['median']:.2f} s/epoch, fidelity "
                f"{_fmt(prec[name]['perturbation_fidelity'], '.3f')}"
            )
        lines.append(f"  precision ({prec['model']}, {prec['optimizer']}): " + "; ".join(cells))
    return "\n".join(lines)
