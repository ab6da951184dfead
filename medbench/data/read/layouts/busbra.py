"""BUS-BRA (Gómez-Flores et al., Med Phys 2024): 1,875 images of 1,064 patients, four scanners,
biopsy-proven pathology, one radiologist's BI-RADS category, patient-level fold files.

On disk::

    ROOT/
      bus_data.csv      ID, Case, Histology, Pathology, BIRADS, Device, Height, Width, Side, BBOX
      5-fold-cv.csv     ID, Pathology, kFold
      10-fold-cv.csv    ID, Pathology, kFold
      Images/           bus_0001-l.png ...
      Masks/            mask_0001-l.png ...   (lesion delineations: not images to classify)

``ID`` is the image's file stem; the label is ``Pathology``; the patient is ``Case`` (a patient
may have several images, and medbench never splits them); the site is ``Device`` (the scanner),
so per-site metrics compare scanners; ``BIRADS`` is the radiologist's category and appears as
reader 1. Folds are ``kFold`` of the fold file ``sheet`` names (``5-fold-cv.csv`` by default).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medbench.data.messages import problem
from medbench.data.read import birads, sheets
from medbench.data.read.cells import cell_text, fold_value, is_blank, label_value
from medbench.data.read.layouts.base import Found, ReadOptions
from medbench.data.read.layouts.listed import IMAGE_SUFFIXES, column_roles, image_files
from medbench.errors import DataError

NAME = "busbra"
CARD = "busbra"
CLINICAL_FILE = "bus_data.csv"
FOLD_FILES = ("5-fold-cv.csv", "10-fold-cv.csv")
IMAGE_FOLDER = "Images"
MASK_FOLDER = "Masks"
DESCRIPTION = f"{CLINICAL_FILE}, {' or '.join(FOLD_FILES)} and an {IMAGE_FOLDER}/ folder (BUS-BRA)"
#: Columns of bus_data.csv, in the release's order.
RELEASE_COLUMNS = (
    "ID",
    "Case",
    "Histology",
    "Pathology",
    "BIRADS",
    "Device",
    "Height",
    "Width",
    "Side",
    "BBOX",
)
#: Columns of bus_data.csv and the manifest field each fills (the others are kept on disk only).
CLINICAL_COLUMNS = {
    "ID": "id",
    "Case": "patient",
    "Pathology": "label",
    "BIRADS": "birads_reader1",
    "Device": "site",
}
#: Columns of the fold files.
FOLD_COLUMNS = {"ID": "id", "Pathology": "label", "kFold": "fold"}


def detect(root: Path, sheet: str | None = None) -> bool:
    """Whether ``root`` holds ``bus_data.csv`` beside an ``Images`` folder."""
    return (root / CLINICAL_FILE).is_file() and (root / IMAGE_FOLDER).is_dir()


def _table(path: Path, names: dict[str, str], required: tuple[str, ...]):
    """The filled rows of a BUS-BRA csv and the column of each role; the required roles exist."""
    table, _ = sheets.read_sheet(path, None, preferred="", key="ID")
    roles = column_roles(list(table.columns), names, str(path))
    missing = [column for column, role in names.items() if role in required and role not in roles]
    if missing:
        columns = ", ".join(repr(c) for c in table.columns)
        raise DataError(f"{path}: no {' or '.join(missing)} column; columns are {columns}")
    rows = sheets.filled_rows(table)
    if rows.empty:
        raise DataError(f"{path}: the sheet has no rows")
    return rows, roles


def fold_file(root: Path, sheet: str | None) -> Path | None:
    """The fold file ``sheet`` names (``5-fold-cv.csv`` by default); None when the default is
    absent (medbench then draws its own folds, grouped by patient)."""
    if sheet:
        path = root / sheet
        if not path.is_file():
            present = [f for f in FOLD_FILES if (root / f).is_file()]
            raise DataError(
                f"{path}: fold file not found; {root} holds {', '.join(present) or 'no fold file'}"
            )
        return path
    path = root / FOLD_FILES[0]
    return path if path.is_file() else None


def read(root: Path, sheet: str | None = None, options: ReadOptions | None = None) -> Found:
    """One record per row of ``bus_data.csv``, its fold from the fold file, its image in Images/."""
    if not detect(root):
        raise DataError(f"{root}: not a BUS-BRA folder; expected {DESCRIPTION}")
    clinical_path = root / CLINICAL_FILE
    rows, roles = _table(clinical_path, CLINICAL_COLUMNS, ("id", "label"))
    folds_path = fold_file(root, sheet)
    folds, fold_problems = _folds(folds_path) if folds_path else ({}, [])
    images = {p.stem: p for p in image_files(root / IMAGE_FOLDER)}
    culprits: dict[str, list[str]] = {
        "bad_id": [],
        "duplicate": [],
        "missing": [],
        "label": [],
        "fold": [],
        "pathology": [],
        "reader": [],
        "no_case": [],
    }
    records: list[dict] = []
    seen: dict[str, int] = {}
    for r, row in zip(rows.index, rows.to_dict("records"), strict=True):
        id_ = _image_id(row[roles["id"]])
        if id_ is None or "/" in id_ or "\\" in id_:
            culprits["bad_id"].append(f"row {r} {id_!r}")
            continue
        if id_ in seen:
            culprits["duplicate"].append(f"{id_!r} (rows {seen[id_]} and {r})")
            continue
        seen[id_] = r
        if id_ not in images:
            culprits["missing"].append(f"{id_!r} (row {r})")
            continue
        label = label_value(row[roles["label"]])
        if label is None:
            culprits["label"].append(f"row {r} {cell_text(row[roles['label']])!r}")
            continue
        fold = pd.NA
        if folds_path is not None:
            if id_ not in folds:
                culprits["fold"].append(f"{id_!r}")
                continue
            fold, fold_label = folds[id_]
            if fold_label is not None and fold_label != label:
                culprits["pathology"].append(f"{id_!r}")
        reader = row[roles["birads_reader1"]] if "birads_reader1" in roles else None
        category = birads.category(reader)
        if category is None and not is_blank(reader):
            culprits["reader"].append(f"row {r} {cell_text(reader)!r}")
        case = cell_text(row[roles["patient"]]) if "patient" in roles else None
        if case is None and "patient" in roles:
            culprits["no_case"].append(f"row {r} {id_!r}")
        records.append(
            {
                "id": id_,
                "path": str(images[id_].resolve()),
                "label": label,
                "site": cell_text(row[roles["site"]]) if "site" in roles else None,
                "fold": fold,
                "birads_reader1": category,
                "patient": case,
            }
        )
    unlisted = sorted(set(images) - set(seen))
    where, fw = clinical_path, folds_path
    problems = [
        *fold_problems,
        *problem("error", culprits["bad_id"], f"{where}: {{n}} without a usable ID: {{c}}", "row"),
        *problem("error", culprits["duplicate"], f"{where}: duplicate IDs: {{c}}", "ID"),
        *problem(
            "error",
            culprits["missing"],
            f"{where}: {{n}} missing from {root / IMAGE_FOLDER}: {{c}}",
            "listed image",
        ),
        *problem(
            "error",
            [images[u].name for u in unlisted],
            f"{root / IMAGE_FOLDER}: {{n}} not in {CLINICAL_FILE}: {{c}}",
            "image",
        ),
        *problem(
            "error",
            culprits["label"],
            f"{where}: column {roles['label']!r} must hold benign/malignant: {{c}}",
            "row",
        ),
        *problem("error", culprits["fold"], f"{fw}: {{n}} without a fold: {{c}}", "image"),
        *problem(
            "warning",
            culprits["pathology"],
            f"{fw}: {{n}} whose Pathology differs from {CLINICAL_FILE}'s (which is used): {{c}}",
            "image",
        ),
        *problem(
            "warning",
            culprits["reader"],
            f"{where}: column {roles.get('birads_reader1')!r}: {{n}} not a BI-RADS category, kept "
            "as missing: {c}",
            "value",
        ),
        *problem(
            "warning",
            culprits["no_case"],
            f"{where}: {{n}} without a Case (patient): each is its own patient: {{c}}",
            "image",
        ),
    ]
    if "patient" not in roles:
        problems.append(
            ("warning", f"{where}: no Case column: images of one patient may be split across folds")
        )
    if folds_path is None:
        problems.append(
            (
                "warning",
                f"{root}: no {FOLD_FILES[0]}: medbench draws its own folds (grouped by patient)",
            )
        )
    masks = root / MASK_FOLDER
    n_masks = sum(1 for p in masks.iterdir() if p.is_file()) if masks.is_dir() else 0
    return Found(
        records=records,
        source=f"{clinical_path}" + (f" and {folds_path.name}" if folds_path else ""),
        problems=problems,
        sheet_file=folds_path or clinical_path,
        left_out={f"lesion masks ({MASK_FOLDER}/)": n_masks} if n_masks else {},
    )


def _image_id(cell: object) -> str | None:
    """An ID cell as the image's file stem ('bus_0001-l.png' and 'bus_0001-l' alike)."""
    id_ = cell_text(cell)
    if id_ is not None and Path(id_).suffix.lower() in IMAGE_SUFFIXES:
        return Path(id_).stem
    return id_


def _folds(path: Path) -> tuple[dict[str, tuple[int, int | None]], list[tuple[str, str]]]:
    """ID -> (kFold, Pathology) of a fold file, and its problems."""
    rows, roles = _table(path, FOLD_COLUMNS, ("id", "fold"))
    out: dict[str, tuple[int, int | None]] = {}
    bad: list[str] = []
    for r, row in zip(rows.index, rows.to_dict("records"), strict=True):
        id_ = _image_id(row[roles["id"]])
        fold = fold_value(row[roles["fold"]])
        if id_ is None or fold is None:
            bad.append(f"row {r} {cell_text(row[roles['fold']])!r}")
            continue
        out[id_] = (fold, label_value(row[roles["label"]]) if "label" in roles else None)
    message = f"{path}: column {roles['fold']!r} must hold an integer fold for each ID: {{c}}"
    return out, problem("error", bad, message, "row")
