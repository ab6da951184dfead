"""A prepared dataset: the manifest with its folds, the preprocessed images and a fingerprint.

Preparing reads the folder once (or generates the synthetic dataset), assigns the folds, and
loads every image through the preprocessing cache. The result is memoised per process on the
config's dataset settings (:func:`medbench.config.dataset_settings`), so the jobs of a grid run
in one process share it, and a Ray worker prepares it once.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medbench.config import DataConfig, dataset_settings
from medbench.data.cards import read_card
from medbench.data.folds import assign_folds, fold_ids
from medbench.data.labels import LABELS
from medbench.data.manifest import read_manifest
from medbench.data.synthetic import GENERATOR_VERSION, MARKER, generate
from medbench.data.transforms import PreprocessSettings, load_cached
from medbench.paths import cache_dir


@dataclass
class Dataset:
    """What every job of a grid reads: never the folder itself."""

    root: Path
    manifest: pd.DataFrame  # MANIFEST_COLUMNS, folds assigned; row i is images[i]
    images: torch.Tensor  # uint8 (N, 3, S, S)
    labels: torch.Tensor  # int64 (N,)
    fingerprint: str  # see dataset_fingerprint
    card: str | None  # name of the data card that describes this dataset, when one does
    generated: bool = False  # the synthetic dataset, written (or found) in the cache
    decoded: int = 0  # images decoded into the preprocessing cache this time (0: all cached)
    seconds: float = 0.0  # time to prepare it
    generation_s: float = 0.0  # of which generating the synthetic dataset (0: found)

    @property
    def folds(self) -> list:
        return fold_ids(self.manifest)


_PREPARED: dict[str, Dataset] = {}


def synthetic_root(synthetic) -> Path:
    """Where the synthetic dataset of ``data.synthetic`` is generated (once) in the cache."""
    return (
        cache_dir() / "synthetic" / f"bus-n{synthetic.n}-seed{synthetic.seed}-v{GENERATOR_VERSION}"
    )


def dataset_fingerprint(manifest: pd.DataFrame, digests: list[str]) -> str:
    """Digest of what a job sees: ids, labels, sites, folds and every image's content."""
    h = hashlib.sha256()
    for row, digest in zip(manifest.itertuples(index=False), digests, strict=True):
        h.update(f"{row.id}|{row.label}|{row.site}|{row.fold}|{digest}\n".encode())
    return h.hexdigest()


def _card(root: Path, manifest: pd.DataFrame) -> str | None:
    """The data card that describes this very dataset: the synthetic one's when the generator
    wrote it; the release's only when the counts per site and label are the release's (a folder
    merely in the release's layout is not the release)."""
    if (root / MARKER).is_file():  # generated data, wherever it was written
        return "synthetic_bus"
    if manifest.attrs.get("layout") == "gdph_sysucc":
        meta, _ = read_card("gdph_sysucc_bus")
        found = manifest.groupby(["site", "label"]).size()
        expected = {
            (site, LABELS[name]): n
            for site, by_label in meta["counts"]["by_site"].items()
            for name, n in by_label.items()
        }
        if {k: int(v) for k, v in found.items()} == expected:
            return "gdph_sysucc_bus"
    return None


def prepare_dataset(data: DataConfig, fold_seed: int, progress: bool = False) -> Dataset:
    """Read (or generate) the dataset of ``data``, assign its folds and load its images.

    ``fold_seed`` seeds stratified folds. The same settings return the same object within a
    process.
    """
    key = json.dumps([dataset_settings(data), fold_seed], sort_keys=True, default=str)
    if key in _PREPARED:
        return _PREPARED[key]
    start = time.perf_counter()
    generation_s = 0.0
    if data.root:
        root = Path(data.root).expanduser()
    else:
        root = synthetic_root(data.synthetic)
        generation_s = generate(root, n=data.synthetic.n, seed=data.synthetic.seed).seconds
    manifest = read_manifest(root, sheet=data.sheet)
    card = _card(root, manifest)
    manifest = assign_folds(manifest, source=data.folds, k=data.n_folds, seed=fold_seed)
    manifest = manifest.reset_index(drop=True)
    cached = load_cached(
        list(manifest["path"]), PreprocessSettings(image_size=data.image_size), progress=progress
    )
    dataset = Dataset(
        root=root,
        manifest=manifest,
        images=cached.images,
        labels=torch.tensor(manifest["label"].to_numpy(dtype=np.int64)),
        fingerprint=dataset_fingerprint(manifest, cached.digests),
        card=card,
        generated=not data.root,
        decoded=cached.decoded,
        seconds=time.perf_counter() - start,
        generation_s=generation_s,
    )
    _PREPARED[key] = dataset
    return dataset
