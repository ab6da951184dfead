"""Small fake datasets on disk for the data tests (the real release's layout and the flat one),
and how the tests read them.

Images are tiny (about 40x50 px) smooth random patterns, so each has its own perceptual hash
and a planted near-duplicate (same pattern, fresh noise) lands within a few bits of it.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook
from PIL import Image

from medbench.data.read.layouts.gdph_sysucc import COLUMNS
from medbench.data.read.manifest import read_manifest
from medbench.errors import DataError, MedbenchWarning

GDPH_COLUMNS = tuple(COLUMNS)
SIZES = ((50, 40), (44, 36), (56, 48))  # (width, height), all above the tiny-image limit

# Reader values as Excel holds them in the release: numbers for some categories, text for others.
BENIGN_READS = (2, 3.0, "3", "4a", "2 ", 3)
MALIGNANT_READS = ("4A", "4b", 5, "4c", "5", 4.0, "4C")


def pattern(seed: int, size: tuple[int, int] = (50, 40), noise: float = 2.0) -> np.ndarray:
    """A smooth random gray pattern (uint8, H x W); the same seed gives the same pattern."""
    coarse = np.random.default_rng(seed).random((5, 6)) * 255
    img = Image.fromarray(coarse.astype(np.float32), mode="F").resize(size, Image.BILINEAR)
    fine = np.random.default_rng(seed + 10_000).normal(0, noise, (size[1], size[0]))
    return np.clip(np.asarray(img) + fine, 0, 255).astype(np.uint8)


def write_png(path: Path, gray: np.ndarray, mode: str = "L") -> Path:
    """Save a gray pattern as a PNG of the given mode: L, RGB, RGBA, P or I;16."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        img = Image.fromarray(gray)
    elif mode in ("RGB", "RGBA", "P"):
        rgb = Image.fromarray(np.stack([gray, gray, gray], axis=-1))
        img = rgb.convert(mode) if mode != "P" else rgb.quantize(64)
    elif mode == "I;16":
        img = Image.fromarray(gray.astype(np.uint16) * 257)
    else:
        raise ValueError(mode)
    img.save(path)
    return path


@dataclass
class FakeDataset:
    """A dataset written to ``root``; edit ``rows``/``columns`` then call ``write_sheet``."""

    root: Path
    sheet: Path
    rows: list[dict]
    columns: tuple[str, ...]
    sheet_name: str | None = "prediction"
    extra_sheet: bool = True
    files: dict[str, Path] = field(default_factory=dict)  # ID -> image file

    def write_sheet(self) -> Path:
        """(Re)write the sheet file from ``rows`` and ``columns``."""
        write_sheet(self.sheet, self.rows, self.columns, self.sheet_name, self.extra_sheet)
        return self.sheet

    def row_of(self, id_: str) -> int:
        """The sheet row (as Excel numbers it, header = 1) of an ID."""
        first = self.columns[0]
        return next(i for i, r in enumerate(self.rows) if r.get(first) == id_) + 2


def write_sheet(
    path: Path,
    rows: list[dict],
    columns: tuple[str, ...],
    sheet_name: str | None = "prediction",
    extra_sheet: bool = True,
) -> None:
    """Write rows as .csv or .xlsx (then with an unrelated sheet placed first, as people do)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for row in rows:
                writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        return
    wb = Workbook()
    first = wb.active
    if extra_sheet:
        first.title = "notes"
        first.append(["source", "exported from the hospital PACS"])
        first.append(["ID", "comment"])
        ws = wb.create_sheet(sheet_name or "Sheet1")
    else:
        ws = first
        ws.title = sheet_name or "Sheet1"
    ws.append(list(columns))
    for row in rows:
        ws.append([row.get(c) for c in columns])
    wb.save(path)


def gdph_layout(
    root: Path,
    per_site: dict[str, tuple[int, int]] | None = None,
    folds: tuple[int, ...] = (1, 2, 3, 4, 5),
    stray: str | None = "4/5",
    extra_sheet: bool = True,
    near_duplicate: bool = False,
    modes: dict[str, tuple[str, ...]] | None = None,
) -> FakeDataset:
    """The GDPH&SYSUCC release layout: site folders, ``BIRADS&FOLD.xlsx`` sheet ``prediction``.

    Numbering continues across sites (``benign(0)`` ... in SYSUCC, then GDPH), images mix
    sizes and modes, readers mix numbers and text, and ``stray`` is one non-category reader
    value (row of the first malignant image). ``near_duplicate`` plants a copy of the first
    benign image as a malignant one in another fold.
    """
    root = Path(root)
    per_site = per_site or {"SYSUCC": (6, 7), "GDPH": (6, 5)}
    modes = modes or {"SYSUCC": ("L", "I;16", "P"), "GDPH": ("RGB", "RGBA", "L")}
    counters = {"benign": 0, "malignant": 0}
    rows: list[dict] = []
    files: dict[str, Path] = {}
    for site, (n_benign, n_malignant) in per_site.items():
        site_modes = modes.get(site, ("L",))
        for cls, n in (("benign", n_benign), ("malignant", n_malignant)):
            reads = BENIGN_READS if cls == "benign" else MALIGNANT_READS
            for _ in range(n):
                k = counters[cls]
                counters[cls] += 1
                id_ = f"{cls}({k})"
                seed = (0 if cls == "benign" else 5000) + k
                files[id_] = write_png(
                    root / site / f"{id_}.png",
                    pattern(seed, SIZES[k % len(SIZES)]),
                    site_modes[k % len(site_modes)],
                )
                rows.append(
                    {
                        "ID": id_,
                        "BIRADS-reader1": reads[k % len(reads)],
                        "BIRADS-reader2": reads[(k + 1) % len(reads)],
                        "fold": folds[k % len(folds)],
                    }
                )
    if stray is not None:
        next(r for r in rows if r["ID"].startswith("malignant"))["BIRADS-reader2"] = stray
    if near_duplicate:
        k = counters["malignant"]
        id_ = f"malignant({k})"
        site = next(iter(per_site))
        files[id_] = write_png(root / site / f"{id_}.png", pattern(0, SIZES[0], noise=3.0), "RGB")
        rows.append({"ID": id_, "BIRADS-reader1": 5, "BIRADS-reader2": "4c", "fold": folds[1]})
    ds = FakeDataset(
        root=root,
        sheet=root / "BIRADS&FOLD.xlsx",
        rows=rows,
        columns=GDPH_COLUMNS,
        extra_sheet=extra_sheet,
        files=files,
    )
    ds.write_sheet()
    return ds


def flat_layout(
    root: Path,
    n_benign: int = 6,
    n_malignant: int = 6,
    folder: str | None = "images",
    sheet: str = "labels.csv",
    extension: bool = True,
) -> FakeDataset:
    """The seed's flat layout: one image folder (or none) and a sheet whose first column is the file name."""
    root = Path(root)
    image_dir = root / folder if folder else root
    rows: list[dict] = []
    files: dict[str, Path] = {}
    for cls, n in (("benign", n_benign), ("malignant", n_malignant)):
        for k in range(n):
            name = f"{cls} ({k + 1}).png"
            seed = (0 if cls == "benign" else 5000) + k
            files[name[:-4]] = write_png(image_dir / name, pattern(seed, SIZES[k % len(SIZES)]))
            rows.append({"image": name if extension else name[:-4], "note": f"case {k}"})
    ds = FakeDataset(
        root=root,
        sheet=root / sheet,
        rows=rows,
        columns=("image", "note"),
        sheet_name=None if sheet.endswith(".csv") else "Sheet1",
        extra_sheet=False,
        files=files,
    )
    ds.write_sheet()
    return ds


def truncate(path: Path) -> None:
    """Cut an image file in half, as an interrupted copy does."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def read_quietly(root, **kwargs) -> pd.DataFrame:
    """The manifest, warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MedbenchWarning)
        return read_manifest(root, **kwargs)


def one_line_error(root, **kwargs) -> str:
    """The message of the DataError reading ``root`` raises, checked to be one line."""
    with pytest.raises(DataError) as exc:
        read_quietly(root, **kwargs)
    message = str(exc.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- other datasets


@dataclass
class BusBra:
    """A hand-made BUS-BRA folder: ``cases`` are (Case, n_images, label) and ``folds5`` /
    ``folds10`` the 1-based fold of each Case (as the authors' files assign them)."""

    root: Path
    rows: list[dict]
    folds5: dict[int, int]
    folds10: dict[int, int]


def busbra_layout(
    root: Path,
    n_benign: int = 20,
    n_malignant: int = 10,
    split_case: int | None = None,
    drop_image: str | None = None,
    mismatch: str | None = None,
) -> BusBra:
    """BUS-BRA as released: ``bus_data.csv``, ``5-fold-cv.csv``, ``10-fold-cv.csv``, ``Images/``
    and ``Masks/``, with 1, 2 or 3 images per patient (Case), four devices, BI-RADS 2-5.

    Folds are dealt by patient, round-robin within each label. ``split_case`` moves the last
    image of that Case to another fold in ``5-fold-cv.csv`` (a patient across folds);
    ``drop_image`` deletes one image file; ``mismatch`` flips one ID's Pathology in the fold files.
    """
    root = Path(root)
    labels = [0] * n_benign + [1] * n_malignant
    folds5, folds10, rank = {}, {}, {0: 0, 1: 0}
    rows, image = [], 0
    for case, label in enumerate(labels, start=1):
        folds5[case] = rank[label] % 5 + 1
        folds10[case] = rank[label] % 10 + 1
        rank[label] += 1
        side = "lr"[case % 2]
        for _ in range(case % 3 + 1):  # 2, 3, 1, 2, 3, 1 ... images per patient
            image += 1
            id_ = f"bus_{image:04d}-{side}"
            size = SIZES[image % len(SIZES)]
            write_png(root / "Images" / f"{id_}.png", pattern(7000 + image, size))
            write_png(
                root / "Masks" / f"mask_{image:04d}-{side}.png", np.zeros(size[::-1], np.uint8)
            )
            rows.append(
                {
                    "ID": id_,
                    "Case": case,
                    "Histology": "fibroadenoma" if label == 0 else "invasive ductal carcinoma",
                    "Pathology": ("benign", "malignant")[label],
                    "BIRADS": (2, 3, "4", 5)[(2 * label + image) % 4],
                    "Device": ("GE", "Toshiba", "Philips", "Siemens")[case % 4],
                    "Height": size[1],
                    "Width": size[0],
                    "Side": ("left", "right")["lr".index(side)],
                    "BBOX": "[1, 2, 10, 8]",
                }
            )
    write_sheet(root / "bus_data.csv", rows, tuple(rows[0]))
    for name, folds in (("5-fold-cv.csv", folds5), ("10-fold-cv.csv", folds10)):
        fold_rows = [
            {"ID": r["ID"], "Pathology": r["Pathology"], "kFold": folds[r["Case"]]} for r in rows
        ]
        if name.startswith("5") and split_case is not None:
            last = [i for i, r in enumerate(rows) if r["Case"] == split_case][-1]
            fold_rows[last]["kFold"] = folds[split_case] % 5 + 1
        if mismatch is not None:
            row = next(r for r in fold_rows if r["ID"] == mismatch)
            row["Pathology"] = "malignant" if row["Pathology"] == "benign" else "benign"
        write_sheet(root / name, fold_rows, ("ID", "Pathology", "kFold"))
    if drop_image is not None:
        (root / "Images" / f"{drop_image}.png").unlink()
    return BusBra(root, rows, folds5, folds10)


def busi_layout(
    root: Path,
    n_benign: int = 8,
    n_malignant: int = 6,
    n_normal: int = 3,
    second_masks: int = 2,
    nested: bool = True,
) -> Path:
    """BUSI as released: ``Dataset_BUSI_with_GT/{benign,malignant,normal}/'benign (1).png'``
    with ``_mask.png`` beside every image and ``_mask_1.png`` beside the first
    ``second_masks`` benign ones; returns the folder that holds the class folders."""
    base = Path(root) / "Dataset_BUSI_with_GT" if nested else Path(root)
    for cls, n, offset in (
        ("benign", n_benign, 0),
        ("malignant", n_malignant, 3000),
        ("normal", n_normal, 6000),
    ):
        for k in range(1, n + 1):
            size = SIZES[k % len(SIZES)]
            write_png(base / cls / f"{cls} ({k}).png", pattern(offset + k, size), "RGB")
            write_png(base / cls / f"{cls} ({k})_mask.png", np.zeros(size[::-1], np.uint8))
            if cls == "benign" and k <= second_masks:
                write_png(base / cls / f"{cls} ({k})_mask_1.png", np.zeros(size[::-1], np.uint8))
    return base


def breastmnist_npz(
    path: Path, size: int = 28, labels: dict[str, list[int]] | None = None
) -> dict[str, np.ndarray]:
    """A MedMNIST BreastMNIST file: ``{split}_images`` (N, size, size) uint8 and
    ``{split}_labels`` (N, 1) in MedMNIST's coding (0 = malignant, 1 = normal or benign)."""
    labels = labels or {
        "train": [0] * 6 + [1] * 14,
        "val": [0, 1, 1, 0, 1],
        "test": [0] * 3 + [1] * 7,
    }
    arrays, seed = {}, 9000 + size
    for split, values in labels.items():
        imgs = []
        for _ in values:
            seed += 1
            imgs.append(pattern(seed, (size, size)))
        arrays[f"{split}_images"] = np.stack(imgs).astype(np.uint8)
        arrays[f"{split}_labels"] = np.asarray(values, dtype=np.uint8).reshape(-1, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays
