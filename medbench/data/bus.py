"""Manifest readers: a BUS dataset folder becomes one row per image, and nothing downstream reads the folder.

Two layouts are detected from what is on disk:

- ``gdph_sysucc`` (the GDPH&SYSUCC release, Mo et al. 2023): site folders of images and a
  sheet (``BIRADS&FOLD.xlsx``, worksheet ``prediction``) with the columns ``ID`` (file stem),
  ``BIRADS-reader1``, ``BIRADS-reader2`` and ``fold``; the site is the folder name.
- ``flat`` (the seed script's): one image folder, or images directly in the root, and a sheet
  whose first column is the file name; no site.

The label comes from the file name (``benign``/``malignant``) unless the sheet has a ``label``
column, which then wins (the audit reports where the two disagree). Images are listed, never
decoded here: decoding 2,405 PNGs is the audit's and the preprocessing cache's job.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data import birads
from medbench.data.cells import cell_text as _text
from medbench.data.cells import fold_value as _fold_value
from medbench.data.cells import is_blank
from medbench.data.cells import label_value as _label_value
from medbench.data.labels import LABEL_NAMES, LABELS
from medbench.errors import DataError, MedbenchWarning, closest

MANIFEST_COLUMNS = ("id", "path", "label", "site", "fold", "birads_reader1", "birads_reader2")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv")
RELEASE_SHEET = "BIRADS&FOLD.xlsx"
RELEASE_WORKSHEET = "prediction"

# Sheet columns by role, compared after dropping case, spaces, '-' and '_'.
_ROLES = {
    "id": ("id",),
    "fold": ("fold",),
    "label": ("label", "class"),
    "birads_reader1": ("biradsreader1", "reader1"),
    "birads_reader2": ("biradsreader2", "reader2"),
}
_SHOWN = 5  # culprits named in one message before "... and N more"


# --------------------------------------------------------------------------- values


def label_from_name(name: str) -> int | None:
    """0/1 from a file name: its prefix ``benign``/``malignant``, else the one of the two words it contains."""
    lower = name.lower()
    for word, label in LABELS.items():
        if lower.startswith(word):
            return label
    found = [label for word, label in LABELS.items() if word in lower]
    return found[0] if len(found) == 1 else None


def plural(count: int, noun: str) -> str:
    """'1 image', '2 images'."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def listing(items: list[str]) -> str:
    """'a, b, c' with at most a few shown, then '... and N more'."""
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


# --------------------------------------------------------------------------- scan


@dataclass
class Scan:
    """What reading a dataset folder found: the manifest it could build and every problem on the way.

    ``read_manifest`` raises at the first error; the audit reads everything through ``scan``.
    """

    manifest: pd.DataFrame
    sheet_rows: list[int] = field(default_factory=list)  # the sheet row of each manifest row
    name_labels: list[int | None] = field(default_factory=list)  # label from each file name
    problems: list[tuple[str, str]] = field(default_factory=list)  # (severity, message)


class _Problems:
    """Raises on the first error (the reader) or collects everything (the audit)."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.items: list[tuple[str, str]] = []

    def error(self, message: str) -> None:
        if self.strict:
            raise DataError(message)
        self.items.append(("error", message))

    def warning(self, message: str) -> None:
        if self.strict:
            warnings.warn(message, MedbenchWarning, stacklevel=4)
        else:
            self.items.append(("warning", message))


def read_manifest(root: str | Path, sheet: str | None = None) -> pd.DataFrame:
    """Read a dataset folder into the manifest (``MANIFEST_COLUMNS``, one row per image).

    ``sheet`` picks a worksheet by name, a sheet file in ``root`` (``labels.csv``), or both
    (``book.xlsx:prediction``). Where it came from is kept in ``df.attrs``: ``root``,
    ``sheet_file``, ``sheet_name`` and ``layout``. Any problem raises a one-line DataError.
    """
    return _scan(root, sheet, _Problems(strict=True)).manifest


def scan(root: str | Path, sheet: str | None = None) -> Scan:
    """Read like :func:`read_manifest` but collect row-level problems instead of raising.

    Rows at fault are left out of the manifest. Problems that leave nothing to read (no folder,
    no sheet, no key column, no images) still raise a DataError.
    """
    problems = _Problems(strict=False)
    found = _scan(root, sheet, problems)
    found.problems = problems.items
    return found


def _find_images(root: Path) -> dict[str, list[Path]]:
    """Image files directly in ``root`` (key '') and in each of its visible subfolders."""
    folders: dict[str, list[Path]] = {}
    for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        if folder.name.startswith(".") and folder != root:
            continue
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if files:
            folders["" if folder == root else folder.name] = files
    return folders


def _find_sheet_file(root: Path, sheet: str | None) -> tuple[Path, str | None]:
    """The label sheet file and the worksheet asked for (None: choose)."""
    if sheet:
        name, _, worksheet = sheet.rpartition(":")
        if name.lower().endswith(SHEET_SUFFIXES):
            sheet_file, sheet = root / name, worksheet or None
        elif sheet.lower().endswith(SHEET_SUFFIXES):
            sheet_file, sheet = root / sheet, None
        else:
            sheet_file = None
        if sheet_file is not None:
            if not sheet_file.is_file():
                raise DataError(f"{sheet_file}: sheet file not found")
            return sheet_file, sheet
    candidates = sorted(
        p
        for p in root.iterdir()
        if p.is_file()
        and p.suffix.lower() in SHEET_SUFFIXES
        and not p.name.startswith(("~$", "."))  # Excel's lock files, hidden files
    )
    release = [p for p in candidates if p.name.lower() == RELEASE_SHEET.lower()]
    if release:
        return release[0], sheet
    if len(candidates) == 1:
        return candidates[0], sheet
    if not candidates:
        raise DataError(
            f"{root}: no label sheet (.xlsx or .csv) in the dataset folder; "
            f"expected {RELEASE_SHEET} next to the image folders"
        )
    names = ", ".join(p.name for p in candidates)
    raise DataError(
        f"{root}: several label sheets ({names}); keep one, or name it, e.g. sheet={candidates[0].name!r}"
    )


def _norm_column(name: object) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def _has_id(columns: list[object]) -> bool:
    return any(_norm_column(c) in _ROLES["id"] for c in columns)


def _read_table(sheet_file: Path, worksheet: str | None) -> tuple[pd.DataFrame, str | None]:
    """The sheet's cells as read (object dtype) and the worksheet name (None for CSV)."""
    if sheet_file.suffix.lower() == ".csv":
        try:
            table = pd.read_csv(
                sheet_file,
                dtype=object,
                keep_default_na=False,
                na_values=[""],
                skip_blank_lines=False,  # keep line numbers equal to sheet rows
                encoding="utf-8-sig",
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise DataError(f"{sheet_file}: cannot read the CSV sheet ({err})") from None
        return table, None
    try:
        book = pd.ExcelFile(sheet_file)
    except ImportError as err:
        raise DataError(
            f"{sheet_file}: cannot read this workbook format ({err}); save it as .xlsx"
        ) from None
    except Exception as err:  # zip, XML and format errors all mean the same to the user
        raise DataError(
            f"{sheet_file}: cannot read the workbook ({type(err).__name__}: {err})"
        ) from None
    with book:
        names = [str(n) for n in book.sheet_names]
        listed = ", ".join(repr(n) for n in names)
        if worksheet is not None:
            match = [n for n in names if n == worksheet] or [
                n for n in names if n.strip().lower() == worksheet.strip().lower()
            ]
            if not match:
                raise DataError(
                    f"{sheet_file}: no worksheet {worksheet!r}{closest(worksheet, names)}; "
                    f"its worksheets are {listed}"
                )
            chosen = match[0]
        else:
            release = [n for n in names if n.strip().lower() == RELEASE_WORKSHEET]
            if release:
                chosen = release[0]
            elif len(names) == 1:
                chosen = names[0]
            else:
                with_id = [
                    n
                    for n in names
                    if _has_id(list(pd.read_excel(book, sheet_name=n, nrows=0).columns))
                ]
                if len(with_id) != 1:
                    raise DataError(
                        f"{sheet_file}: no usable worksheet among {listed}; expected "
                        f"{RELEASE_WORKSHEET!r} with an ID column, or choose one with sheet=NAME"
                    )
                chosen = with_id[0]
        table = pd.read_excel(book, sheet_name=chosen, header=0, dtype=object)
    return table, chosen


def _roles(table: pd.DataFrame, where: str) -> dict[str, str]:
    """Sheet column of each role found (id, fold, label, readers)."""
    found: dict[str, str] = {}
    for column in table.columns:
        key = _norm_column(column)
        for role, names in _ROLES.items():
            if key in names:
                if role in found:
                    raise DataError(
                        f"{where}: columns {found[role]!r} and {column!r} both read as {role!r}; keep one"
                    )
                found[role] = str(column)
    return found


def _scan(root: str | Path, sheet: str | None, problems: _Problems) -> Scan:
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: dataset folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected a dataset folder with images and a sheet)")
    try:
        folders = _find_images(root)
    except OSError as err:
        raise DataError(f"{root}: cannot list the dataset folder ({err.strerror or err})") from None
    if not folders:
        raise DataError(
            f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder or its subfolders"
        )
    sheet_file, worksheet = _find_sheet_file(root, sheet)
    table, worksheet = _read_table(sheet_file, worksheet)
    table.columns = [str(c) for c in table.columns]
    where = f"{sheet_file}" + (f", worksheet {worksheet!r}" if worksheet else "")
    filled = np.array([not all(is_blank(v) for v in row) for row in table.itertuples(index=False)])
    table = table.assign(_row=np.arange(len(table)) + 2)[filled.astype(bool)]
    if table.empty:
        raise DataError(f"{where}: the sheet has no rows")
    roles = _roles(table.drop(columns="_row"), where)

    layout = "gdph_sysucc" if "id" in roles else "flat"
    key_column = roles.get("id", table.columns[0])
    key_name = "ID" if layout == "gdph_sysucc" else "file name"
    one_folder_flat = layout == "flat" and len(folders) == 1

    by_stem: dict[str, list[tuple[str, Path]]] = {}
    by_name: dict[str, list[tuple[str, Path]]] = {}
    for folder, files in folders.items():
        for f in files:
            by_stem.setdefault(f.stem, []).append((folder, f))
            by_name.setdefault(f.name, []).append((folder, f))

    if layout == "flat":
        keys = [_text(v) for v in table[key_column]]
        if not any(k and (k in by_stem or k in by_name) for k in keys):
            raise DataError(
                f"{where}: no ID column, and the first column {key_column!r} names no image in "
                f"{root} (e.g. {next((k for k in keys if k), '')!r}); columns are "
                f"{', '.join(repr(c) for c in table.columns if c != '_row')}"
            )

    bad_keys: list[str] = []
    duplicates: list[str] = []
    ambiguous: list[str] = []
    missing: list[str] = []
    unlabelled: list[str] = []
    bad_labels: list[str] = []
    bad_folds: list[str] = []
    stray: dict[str, list[str]] = {"birads_reader1": [], "birads_reader2": []}
    seen: dict[str, int] = {}
    used: set[Path] = set()
    records: list[dict] = []
    sheet_rows: list[int] = []
    name_labels: list[int | None] = []

    for row in table.to_dict("records"):
        r = row["_row"]
        key = _text(row[key_column])
        if key is None:
            bad_keys.append(f"row {r} has an empty {key_name}")
            continue
        if "/" in key or "\\" in key or key in (".", "..") or key.startswith("..") or "\0" in key:
            bad_keys.append(f"row {r} {key_name} {key!r} is a path, not a file name")
            continue
        by_ext = Path(key).suffix.lower() in IMAGE_SUFFIXES
        stem = Path(key).stem if by_ext else key
        if stem in seen:
            duplicates.append(f"{stem!r} (rows {seen[stem]} and {r})")
            continue
        seen[stem] = r
        matches = (by_name if by_ext else by_stem).get(key, [])
        if not matches:
            missing.append(f"{key!r} (row {r})")
            continue
        if len(matches) > 1:
            files = " and ".join(str(Path(folder) / f.name) for folder, f in matches)
            ambiguous.append(f"{key!r} (row {r}) matches {files}")
            continue
        folder, path = matches[0]
        used.add(path)

        name_label = label_from_name(path.stem)
        label = name_label
        if "label" in roles:
            label = _label_value(row[roles["label"]])
            if label is None:
                bad_labels.append(f"row {r} {_text(row[roles['label']])!r}")
                continue
        elif name_label is None:
            unlabelled.append(f"{path.name!r} (row {r})")
            continue

        fold = pd.NA
        if "fold" in roles:
            value = row[roles["fold"]]
            fold = _fold_value(value)
            if fold is None:
                bad_folds.append(
                    f"row {r} " + ("is empty" if is_blank(value) else f"{_text(value)!r}")
                )
                fold = pd.NA

        readers = {}
        for role in ("birads_reader1", "birads_reader2"):
            value = row[roles[role]] if role in roles else None
            readers[role] = birads.category(value)
            if readers[role] is None and not is_blank(value):
                stray[role].append(f"row {r} {_text(value)!r}")

        records.append(
            {
                "id": path.stem,
                "path": str(path.resolve()),
                "label": label,
                "site": pd.NA if one_folder_flat or not folder else folder,
                "fold": fold,
                **readers,
            }
        )
        sheet_rows.append(r)
        name_labels.append(name_label)

    if bad_keys:
        problems.error(f"{where}: {plural(len(bad_keys), 'bad ' + key_name)}: {listing(bad_keys)}")
    if duplicates:
        problems.error(f"{where}: duplicate {key_name}s: {listing(duplicates)}")
    if ambiguous:
        problems.error(
            f"{where}: {plural(len(ambiguous), key_name)} match several images: {listing(ambiguous)}"
        )
    if missing:
        problems.error(
            f"{where}: {plural(len(missing), 'listed image')} missing from {root}: {listing(missing)}"
        )
    unlisted = [
        str(Path(folder) / f.name)
        for folder, files in folders.items()
        for f in files
        if f not in used
    ]
    if unlisted:
        problems.error(
            f"{root}: {plural(len(unlisted), 'image')} not in {where}: {listing(unlisted)}"
        )
    if unlabelled:
        problems.error(
            f"{where}: {plural(len(unlabelled), 'file name')} without a label (they start with neither "
            f"'benign' nor 'malignant') and the sheet has no label column: {listing(unlabelled)}"
        )
    if bad_labels:
        problems.error(
            f"{where}: column {roles['label']!r} must hold 0/1 or benign/malignant: {listing(bad_labels)}"
        )
    if bad_folds:
        problems.error(
            f"{where}: column {roles['fold']!r} must hold integers: {listing(bad_folds)}"
        )
    for role, values in stray.items():
        if values:
            problems.warning(
                f"{where}: column {roles[role]!r}: {plural(len(values), 'value')} not a BI-RADS "
                f"category, kept as missing: {listing(values)}"
            )

    manifest = _frame(records)
    labels = set(manifest["label"])
    if len(labels) == 1:
        only = LABEL_NAMES[labels.pop()]
        problems.error(
            f"{root}: all {len(manifest)} images are {only}; a benign/malignant benchmark needs both classes"
        )
    elif not labels:
        problems.error(f"{root}: no usable image rows in {where}")
    manifest.attrs.update(
        root=str(root.resolve()),
        sheet_file=str(sheet_file.resolve()),
        sheet_name=worksheet,
        layout=layout,
    )
    return Scan(manifest=manifest, sheet_rows=sheet_rows, name_labels=name_labels)


def _frame(records: list[dict]) -> pd.DataFrame:
    """The manifest with its dtypes fixed (strings, int labels, nullable Int64 folds)."""
    columns = {c: [rec[c] for rec in records] for c in MANIFEST_COLUMNS}
    return pd.DataFrame(
        {
            "id": pd.array(columns["id"], dtype="str"),
            "path": pd.array(columns["path"], dtype="str"),
            "label": np.asarray(columns["label"], dtype=np.int64),
            "site": pd.array(columns["site"], dtype="str"),
            "fold": pd.array(columns["fold"], dtype="Int64"),
            "birads_reader1": pd.array(columns["birads_reader1"], dtype="str"),
            "birads_reader2": pd.array(columns["birads_reader2"], dtype="str"),
        },
        columns=list(MANIFEST_COLUMNS),
    )
