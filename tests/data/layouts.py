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

from medbench.data.layouts.gdph_sysucc import COLUMNS
from medbench.data.manifest import read_manifest
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
