"""The data settings a prepared dataset is made from, as plain values.

The data layer takes these and never imports the config: ``data_settings`` in the config module
is the one conversion from a config's ``data`` section. The names are the config keys' (``synthetic.n``
becomes ``synthetic_n``); the defaults live in the config only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExternalSettings:
    """A dataset every fold's selected checkpoint is also tested on (``data.external[i]``)."""

    root: str  # the dataset folder
    name: str | None  # None: its layout's name, or the folder's for the flat layout
    layout: str  # "auto" or a layout name
    sheet: str | None
    include_normal: bool


@dataclass(frozen=True)
class DataSettings:
    """Where the training data is, how to read it, its folds and the model's input size."""

    root: str | None  # None or empty: the synthetic dataset of synthetic_n, synthetic_seed
    layout: str  # "auto" or a layout name
    sheet: str | None  # worksheet, sheet or fold file to read
    include_normal: bool  # BUSI's normal images as benign
    labels: str  # a sheet's label column against the file names: check, sheet or names
    folds: str  # a fold source (medbench.data.folds.FOLD_SOURCES)
    n_folds: int  # for stratified folds
    folds_keep: tuple[str, ...]  # the folds to keep (empty: all)
    exclude: tuple[str, ...]  # image ids left out before folds are drawn
    image_size: int  # side of the square model input
    synthetic_n: int
    synthetic_seed: int
    max_image_pixels: int  # Pillow's decompression-bomb guard
    external: tuple[ExternalSettings, ...]  # tested with the same preprocessing

    def key(self) -> dict[str, Any]:
        """The settings that change the prepared dataset (manifest, folds, images), by config key:
        what the per-process cache of prepared datasets is keyed on. Neither the image-size
        guard (it only refuses) nor the external datasets (prepared on their own) are in it."""
        key = {
            "root": self.root,
            "layout": self.layout,
            "sheet": self.sheet,
            "include_normal": self.include_normal,
            "labels": self.labels,
            "folds": self.folds,
            "n_folds": self.n_folds,
            "folds_keep": list(self.folds_keep),
            "image_size": self.image_size,
            "synthetic.n": self.synthetic_n,
            "synthetic.seed": self.synthetic_seed,
        }
        if self.exclude:  # only when set: the keys of before stay as they were
            key["exclude"] = list(self.exclude)
        return key
