"""A prepared dataset: the manifest with its folds, the preprocessed images and a fingerprint.

Preparing reads the folder once (or generates the synthetic dataset), assigns the folds, and
loads every image through the preprocessing cache. It takes plain settings
(:class:`~medbench.data.settings.DataSettings`; the config module's ``data_settings`` makes them
from a config). The result is memoised per process on the settings that change it
(:meth:`DataSettings.key`), so the jobs of a grid run in one process share it, and a Ray worker
prepares it once. External datasets are prepared the same way, with the same preprocessing,
once per process.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from medbench.data.cards import read_card
from medbench.data.folds import (
    check_repeats,
    fold_ids,
    make_folds,
    repartition,
    resolve_source,
)
from medbench.data.pixels.transforms import PreprocessSettings, load_cached
from medbench.data.read.labels import LABELS
from medbench.data.read.layouts import flat, get_layout
from medbench.data.read.manifest import read_manifest
from medbench.data.settings import DataSettings, ExternalSettings
from medbench.data.synth.synthetic import GENERATOR_VERSION, MARKER, generate
from medbench.errors import ConfigError
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
    fold_source: str = "sheet"  # where the folds come from, ``auto`` resolved (data.folds)
    _partitions: dict[int, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def folds(self) -> list:
        return fold_ids(self.manifest)

    def partition(self, repeat: int) -> pd.DataFrame:
        """The manifest with the folds of repeat ``repeat`` (1: :attr:`manifest` itself; see
        :func:`~medbench.data.folds.repartition`), drawn once per process: rows, images and
        labels are those of :attr:`manifest`, only the ``fold`` column differs."""
        if repeat not in self._partitions:
            self._partitions[repeat] = repartition(self.manifest, repeat)
        return self._partitions[repeat]


_PREPARED: dict[str, Dataset] = {}
_EXTERNAL: dict[str, Dataset] = {}


def synthetic_root(n: int, seed: int) -> Path:
    """Where the synthetic dataset of ``n`` images and ``seed`` is generated (once) in the cache."""
    return cache_dir() / "synthetic" / f"bus-n{n}-seed{seed}-v{GENERATOR_VERSION}"


def dataset_fingerprint(manifest: pd.DataFrame, digests: list[str]) -> str:
    """Digest of what a job sees: ids, labels, sites, folds and every image's content, and the
    patients and official split of datasets that have them (they shape the validation split)."""
    extra = [c for c in ("patient", "split") if c in manifest and manifest[c].notna().any()]
    h = hashlib.sha256()
    for row, digest in zip(manifest.itertuples(index=False), digests, strict=True):
        line = f"{row.id}|{row.label}|{row.site}|{row.fold}|{digest}"
        line += "".join(f"|{getattr(row, c)}" for c in extra)
        h.update(f"{line}\n".encode())
    return h.hexdigest()


def _card(root: Path, manifest: pd.DataFrame) -> str | None:
    """The data card that describes this very data: the synthetic twin's for generated
    GDPH&SYSUCC data (other generated layouts have none: the real dataset's card would misstate
    them), else the layout's, but only when the counts per site and label are those the card
    states (a folder merely in a dataset's layout is not that dataset)."""
    marker = root / MARKER
    if marker.is_file():  # generated data, wherever it was written
        layout = json.loads(marker.read_text(encoding="utf-8")).get("layout", "gdph_sysucc")
        return "synthetic_bus" if layout == "gdph_sysucc" else None
    card = get_layout(manifest.attrs["layout"]).CARD
    if card is None:
        return None
    by_site = (read_card(card)[0].get("counts") or {}).get("by_site")
    if by_site:
        found = manifest.groupby(["site", "label"]).size()
        expected = {
            (site, LABELS[name]): n
            for site, labels in by_site.items()
            for name, n in labels.items()
        }
        if {k: int(v) for k, v in found.items()} != expected:
            return None
    return card


def _read(root: Path, source: DataSettings | ExternalSettings, data: DataSettings) -> pd.DataFrame:
    """The manifest of ``root`` as ``source`` (the training data or an external dataset) says
    to read it, under the training data's image-size guard and label rule."""
    Image.MAX_IMAGE_PIXELS = data.max_image_pixels
    return read_manifest(
        root,
        sheet=source.sheet,
        layout=source.layout,
        include_normal=source.include_normal,
        labels=data.labels,
    )


def _load(root: Path, manifest: pd.DataFrame, image_size: int, progress: bool) -> Dataset:
    """The images of ``manifest`` through the preprocessing cache, as a :class:`Dataset`."""
    start = time.perf_counter()
    manifest = manifest.reset_index(drop=True)
    cached = load_cached(
        list(manifest["path"]), PreprocessSettings(image_size=image_size), progress=progress
    )
    return Dataset(
        root=root,
        manifest=manifest,
        images=cached.images,
        labels=torch.tensor(manifest["label"].to_numpy(dtype=np.int64)),
        fingerprint=dataset_fingerprint(manifest, cached.digests),
        card=_card(root, manifest),
        decoded=cached.decoded,
        seconds=time.perf_counter() - start,
    )


def prepare_dataset(
    data: DataSettings, fold_seed: int, progress: bool = False, repeats: int = 1
) -> Dataset:
    """Read (or generate) the dataset of ``data``, assign its folds and load its images.

    ``fold_seed`` seeds stratified folds. ``repeats`` > 1 (``cv.repeats``) needs folds that can
    be drawn again (:func:`~medbench.data.folds.check_repeats`); each repeat's folds come from
    :meth:`Dataset.partition`. The same settings return the same object within a process.
    """
    key = json.dumps([data.key(), fold_seed], sort_keys=True, default=str)
    if key in _PREPARED:
        dataset = _PREPARED[key]
        check_repeats(data.folds, repeats, dataset.fold_source)
        return dataset
    start = time.perf_counter()
    generation_s = 0.0
    if data.root:
        root = Path(data.root).expanduser()
    else:
        root = synthetic_root(data.synthetic_n, data.synthetic_seed)
        generation_s = generate(root, n=data.synthetic_n, seed=data.synthetic_seed).seconds
    read = _read(root, data, data)
    manifest = make_folds(read, data.folds, data.n_folds, fold_seed, data.folds_keep, repeats)
    dataset = _load(root, manifest, data.image_size, progress)
    dataset.fold_source = resolve_source(read, data.folds)
    dataset.generated = not data.root
    dataset.seconds = time.perf_counter() - start
    dataset.generation_s = generation_s
    _PREPARED[key] = dataset
    return dataset


def external_name(ext: ExternalSettings, manifest: pd.DataFrame) -> str:
    """The name of an external dataset: ``ext.name``, else its layout's (``busbra``), else for
    the generic flat layout its folder's, made safe for a metric name."""
    if ext.name:
        return ext.name
    layout = manifest.attrs["layout"]
    if layout != flat.NAME:
        return layout
    return (
        re.sub(r"[^A-Za-z0-9_-]+", "_", Path(manifest.attrs["root"]).name).strip("_") or "external"
    )


def prepare_externals(data: DataSettings, progress: bool = False) -> dict[str, Dataset]:
    """Each external dataset of ``data.external`` by name, read and preprocessed exactly as the
    training data (``data.image_size``); folds are not assigned (every image is a test image).

    Raises ConfigError when two datasets end up with one name (name them), and DataError for a
    dataset that cannot be read.
    """
    out: dict[str, Dataset] = {}
    for i, ext in enumerate(data.external):
        settings = {**asdict(ext), "image_size": data.image_size}
        key = json.dumps(settings, sort_keys=True)
        if key not in _EXTERNAL:
            root = Path(ext.root).expanduser()
            _EXTERNAL[key] = _load(root, _read(root, ext, data), data.image_size, progress)
        dataset = _EXTERNAL[key]
        name = external_name(ext, dataset.manifest)
        if name in out:
            raise ConfigError(
                f"data.external[{i}]: a second external dataset named {name!r}; give each a "
                "name (data.external[i].name)"
            )
        out[name] = dataset
    return out
