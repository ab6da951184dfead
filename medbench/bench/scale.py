"""The data path at the real release's scale (``medbench bench scale``).

For n = 2,405 synthetic images at the release's sizes (500-1,000 px a side): generation time,
``medbench data check`` time (perceptual hashes and the near-duplicate search included),
first-epoch preprocessing and later-epoch batch throughput next to the paper's reference
pipeline in the same process, the cache's size on disk and the peak resident memory of each
pipeline. The near-duplicate search is timed at n and at 4n, with the O(n^2) comparison it
replaced next to it, to show how it grows.

The 4n hashes are the n measured ones plus three copies of each with ``COPY_FLIPS`` of their bits
flipped at random: distinct images that keep the measured hashes' bit statistics (generating
and hashing 9,620 release-size images would take several more minutes on a small machine).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medbench.bench.data import (
    ReferenceDataset,
    compare_pipelines,
    drain,
    render_pipelines,
    source_size,
)
from medbench.bench.timing import (
    MIN_SECONDS,
    REPETITIONS,
    Spread,
    cpu_seconds,
    interleaved,
    peak_rss_gb,
    reset_peak_rss,
    rss_gb,
)
from medbench.data.audit.check import audit_dataset
from medbench.data.audit.near_duplicates import near_duplicate_pairs, pairs_by_matrix_product
from medbench.data.pixels.loader import BatchLoader
from medbench.data.pixels.transforms import PreprocessSettings, load_cached
from medbench.data.read.manifest import read_manifest
from medbench.data.synth.synthetic import generate

#: Bits flipped in each synthetic copy of a measured hash (the audit's threshold is 24).
COPY_FLIPS = 32


def scaled_hashes(hashes: np.ndarray, factor: int, seed: int = 0) -> np.ndarray:
    """``hashes`` and ``factor - 1`` copies of each with ``COPY_FLIPS`` random bits flipped."""
    rng = np.random.default_rng(seed)
    ok = hashes[~np.isnan(hashes).any(axis=1)]
    parts = [ok]
    for _ in range(factor - 1):
        copy = ok.copy()
        for row in copy:
            flip = rng.choice(row.size, COPY_FLIPS, replace=False)
            row[flip] = 1.0 - row[flip]
        parts.append(copy)
    return np.concatenate(parts)


def _timed(fn) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, time.perf_counter() - wall, cpu_seconds() - cpu


def hash_search(
    hashes: np.ndarray,
    max_distance: int,
    factor: int = 4,
    repetitions: int = REPETITIONS,
    min_seconds: float = MIN_SECONDS,
) -> dict[str, Any]:
    """Multi-index hashing and the O(n^2) comparison at n and ``factor`` n, interleaved."""
    sets = {"n": hashes, f"{factor}n": scaled_hashes(hashes, factor)}
    methods = {"mih": near_duplicate_pairs, "all_pairs": pairs_by_matrix_product}
    same = all(
        np.array_equal(
            near_duplicate_pairs(h, max_distance), pairs_by_matrix_product(h, max_distance)
        )
        for h in sets.values()
    )
    timed = interleaved(
        {
            f"{m}_{size}": (lambda f=f, h=h: f(h, max_distance))
            for m, f in methods.items()
            for size, h in sets.items()
        },
        repetitions,
        min_seconds,
    )
    n, big = len(sets["n"]), len(sets[f"{factor}n"])
    growth = {m: (timed[f"{m}_{factor}n"].cpu / timed[f"{m}_n"].cpu) for m in methods}
    return {
        "n": n,
        "n_large": big,
        "factor": factor,
        "max_distance": max_distance,
        "same_pairs": same,
        "pairs": {
            size: int(len(near_duplicate_pairs(h, max_distance))) for size, h in sets.items()
        },
        "seconds": {k: t.to_dict() for k, t in timed.items()},
        "growth_cpu": {m: g.to_dict() for m, g in growth.items()},
        "growth_n_log_n": big * math.log(big) / (n * math.log(n)),
        "growth_n_squared": (big / n) ** 2,
    }


def peak_memory(paths: list[str], labels: list[int], cache: Path, image_size: int, workers: int):
    """Peak resident memory (GB) of this process while each pipeline runs one epoch."""
    out: dict[str, float] = {"before": rss_gb()}
    scoped = reset_peak_rss()
    shutil.rmtree(cache, ignore_errors=True)
    cached = load_cached(paths, PreprocessSettings(image_size), root=cache, workers=workers)
    loader = BatchLoader(
        images=cached.images,
        labels=torch.tensor(labels),
        index=np.arange(len(paths)),
        batch_size=32,
        shuffle=True,
        seed=0,
    )
    drain(loader.epoch(1))
    out["medbench"] = peak_rss_gb()
    del cached, loader
    reset_peak_rss()
    ref = torch.utils.data.DataLoader(
        ReferenceDataset(paths, labels, image_size), batch_size=32, num_workers=workers
    )
    drain(ref)
    out["reference_main_process"] = peak_rss_gb()
    out["scoped"] = scoped  # False: both figures are the process's peak since it started
    return out


def _folder_gb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9


def bench_scale(
    n: int = 2405,
    sizes: str = "release",
    image_size: int = 256,
    batch_size: int = 32,
    workers: int = 2,
    repetitions: int = REPETITIONS,
    min_seconds: float = MIN_SECONDS,
    hash_factor: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Every figure of the data path for ``n`` images (see the module docstring)."""
    tmp = Path(tempfile.mkdtemp(prefix="medbench-bench-scale-"))
    try:
        summary, gen_wall, gen_cpu = _timed(lambda: generate(tmp / "bus", n, seed, sizes))
        report, check_wall, check_cpu = _timed(lambda: audit_dataset(tmp / "bus"))
        manifest = read_manifest(tmp / "bus")
        paths, labels = list(manifest["path"]), [int(v) for v in manifest["label"]]
        source = [s for p in paths for s in source_size(p)]
        memory = peak_memory(paths, labels, tmp / "cache", image_size, workers)
        pipelines = compare_pipelines(
            paths, labels, tmp / "cache", image_size, batch_size, workers, repetitions, min_seconds
        )
        cache_gb = _folder_gb(tmp / "cache")
        dataset_gb = _folder_gb(tmp / "bus")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    search = hash_search(report.hashes, report.max_distance, hash_factor, repetitions, min_seconds)
    planted = {frozenset((d.original, d.copy)) for d in summary.near_duplicates}
    found = report.near_duplicates
    found_pairs = {frozenset(p) for p in zip(found["id_a"], found["id_b"], strict=True)}
    preprocess = Spread(pipelines["seconds"]["medbench_first_epoch"]["wall_s"]["runs"])
    result = {
        "n": n,
        "sizes": sizes,
        "source_side_px": {
            "min": int(min(source)),
            "median": int(np.median(source)),
            "max": int(max(source)),
        },
        "dataset_gb": dataset_gb,
        "generation_s": {"wall": gen_wall, "cpu": gen_cpu},
        "check_s": {"wall": check_wall, "cpu": check_cpu},
        "check_usable": report.usable,
        "near_duplicates": {
            "found": len(found),
            "planted": len(planted),
            "planted_found": len(planted & found_pairs),
        },
        "hash_search": search,
        "pipelines": pipelines,
        "preprocess_first_epoch_s": preprocess.to_dict(),
        "cache_gb": cache_gb,
        "peak_rss_gb": memory,
    }
    if n == 2405:  # the release's size: the headline figures
        result["scale_check_s_2405"] = check_wall
        result["scale_preprocess_s_2405"] = preprocess.median
        result["scale_peak_rss_gb"] = memory["medbench"]
    return result


def render_scale(r: dict[str, Any]) -> str:
    hs = r["hash_search"]
    sec = {k: Spread(v["cpu_s"]["runs"]) for k, v in hs["seconds"].items()}
    growth = {k: Spread(v["runs"]) for k, v in hs["growth_cpu"].items()}
    big = f"{hs['factor']}n"
    side = r["source_side_px"]
    nd, mem = r["near_duplicates"], r["peak_rss_gb"]
    lines = [
        f"data path at scale: {r['n']} synthetic PNGs, '{r['sizes']}' sizes ({side['min']}-{side['max']} px "
        f"a side, median {side['median']}), {r['dataset_gb']:.2f} GB on disk",
        f"  generation: {r['generation_s']['wall']:.1f} s wall, {r['generation_s']['cpu']:.1f} s CPU (one run)",
        f"  data check (decode, pHash, near-duplicate search): {r['check_s']['wall']:.1f} s wall, "
        f"{r['check_s']['cpu']:.1f} s CPU (one run); {nd['found']} near-duplicate pairs, "
        f"{nd['planted_found']} of {nd['planted']} planted ones found",
        f"  near-duplicate search, CPU seconds, median (min-max) of interleaved repetitions "
        f"(same pairs as comparing all pairs: {'yes' if hs['same_pairs'] else 'NO'}):",
        f"    n = {hs['n']}: multi-index hashing {sec['mih_n'].text('.3g', ' s')}, "
        f"all pairs {sec['all_pairs_n'].text('.3g', ' s')}",
        f"    n = {hs['n_large']} ({big}, synthetic copies of the hashes): multi-index hashing "
        f"{sec['mih_' + big].text('.3g', ' s')}, all pairs {sec['all_pairs_' + big].text('.3g', ' s')}",
        f"    growth from n to {big}: multi-index hashing {growth['mih'].text('.2f', 'x')}, all pairs "
        f"{growth['all_pairs'].text('.2f', 'x')}; n log n would be {hs['growth_n_log_n']:.2f}x, "
        f"n^2 {hs['growth_n_squared']:.0f}x",
        f"  pipelines at {r['pipelines']['image_size']} px, batch {r['pipelines']['batch_size']}:",
        *["  " + line for line in render_pipelines(r["pipelines"])],
        f"  first-epoch preprocessing: {Spread(r['preprocess_first_epoch_s']['runs']).text('.1f', ' s')} wall; "
        f"cache on disk {r['cache_gb']:.2f} GB",
        f"  peak resident memory of this process during one epoch: medbench {mem['medbench']:.2f} GB, "
        f"reference {mem['reference_main_process']:.2f} GB (its DataLoader workers apart); "
        f"{mem['before']:.2f} GB before either (Python, torch)"
        + ("" if mem["scoped"] else " (peaks since the process started: no per-phase count here)"),
    ]
    return "\n".join(lines)
