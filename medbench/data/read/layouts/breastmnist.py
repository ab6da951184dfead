"""BreastMNIST (MedMNIST v2/v3, Yang et al., Scientific Data 2023): BUSI's 780 images, square,
gray, at 28, 64, 128 or 224 px, with an official train/val/test split, in one ``.npz``.

On disk::

    ROOT/
      breastmnist.npz         (28 px)   train_images (546, 28, 28)  train_labels (546, 1)
      breastmnist_64.npz      (64 px)   val_images, val_labels, test_images, test_labels
      breastmnist_128.npz, breastmnist_224.npz

MedMNIST codes the label as 0 = malignant, 1 = normal or benign: the opposite of medbench's
coding, so the manifest's label is ``1 - label``. Each image's manifest path is
``FILE::ARRAY[INDEX]`` (:mod:`medbench.data.pixels.arrays`); its ID is ``SPLIT_INDEX`` and its
``split`` the official part, which ``data.folds: official`` uses as one fold. ``sheet`` names
the file when the folder holds several sizes; by default the largest images are read. Only
the local file is read: nothing is downloaded.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from medbench.data.pixels import arrays
from medbench.data.read.labels import SPLITS
from medbench.data.read.layouts.base import Found, ReadOptions
from medbench.errors import DataError

NAME = "breastmnist"
CARD = "breastmnist"
FILE_NAME = re.compile(r"breastmnist(_(?P<size>\d+))?\.npz", re.I)
#: MedMNIST's label -> medbench's (0 benign, 1 malignant): MedMNIST has 0 = malignant.
LABEL_MAP = {0: 1, 1: 0}
DESCRIPTION = "breastmnist.npz or breastmnist_SIZE.npz (MedMNIST BreastMNIST)"


def files(root: Path) -> dict[int, Path]:
    """The BreastMNIST files of ``root`` by image size (28 for the file without a size)."""
    found = {}
    for p in sorted(root.iterdir()):
        named = FILE_NAME.fullmatch(p.name)
        if named and p.is_file():
            found[int(named["size"] or 28)] = p
    return found


def detect(root: Path, sheet: str | None = None) -> bool:
    """Whether ``root`` holds a BreastMNIST file (or ``sheet`` names an ``.npz`` in it)."""
    if sheet and sheet.lower().endswith(".npz"):
        return (root / sheet).is_file()
    return bool(files(root))


def choose_file(root: Path, sheet: str | None) -> tuple[Path, list[tuple[str, str]]]:
    """The file to read and a warning when others were passed over."""
    if sheet:
        path = root / sheet
        if not path.is_file():
            raise DataError(f"{path}: array file not found")
        return path, []
    by_size = files(root)
    if not by_size:
        raise DataError(f"{root}: no {DESCRIPTION}")
    chosen = by_size[max(by_size)]
    others = [p.name for size, p in sorted(by_size.items()) if p != chosen]
    if not others:
        return chosen, []
    message = (
        f"{root}: several BreastMNIST files; reading {chosen.name} (the largest images), not "
        f"{', '.join(others)}; name one with sheet=FILE (data.sheet)"
    )
    return chosen, [("warning", message)]


def read(root: Path, sheet: str | None = None, options: ReadOptions | None = None) -> Found:
    """One record per image of the official train, val and test parts."""
    path, problems = choose_file(root, sheet)
    names = arrays.array_names(path)
    missing = [
        f"{split}_{kind}"
        for split in SPLITS
        for kind in ("images", "labels")
        if f"{split}_{kind}" not in names
    ]
    if missing:
        raise DataError(
            f"{path}: not a MedMNIST file: no {', '.join(missing)}; it holds {', '.join(names)}"
        )
    records: list[dict] = []
    for split in SPLITS:
        images = arrays.load_array(path, f"{split}_images")
        labels = np.asarray(arrays.load_array(path, f"{split}_labels")).reshape(-1)
        if len(images) != len(labels):
            raise DataError(
                f"{path}: {split}_images has {len(images)} images but {split}_labels "
                f"{len(labels)} labels"
            )
        bad = sorted(set(labels.tolist()) - set(LABEL_MAP))
        if bad:
            raise DataError(
                f"{path}: {split}_labels must hold MedMNIST's 0 (malignant) and 1 (normal or "
                f"benign), found {', '.join(map(str, bad[:5]))}"
            )
        records += [
            {
                "id": f"{split}_{i}",
                "path": arrays.member_path(path, f"{split}_images", i),
                "label": LABEL_MAP[int(value)],
                "split": split,
            }
            for i, value in enumerate(labels)
        ]
    return Found(records=records, source=str(path), problems=problems, sheet_file=path)
