"""Layouts whose label sheet lists image files (gdph_sysucc, flat): the reading they share.

A sheet row names an image by a key (an ID, i.e. a file stem, or a file name) and may carry a
label, a fold, two readers' BI-RADS categories, and (the flat layout) a site and a patient. Reading takes three steps:

1. matching (``match_rows``): each row's key to exactly one image file, and the files that no
   row names;
2. parsing (``parse_rows``): each matched row's cells to a manifest record;
3. reporting (``report``): one message per kind of problem, naming rows and files, in a fixed
   order (the strict reader raises the first error).

The label comes from the file name unless the sheet has a label column, which then wins (the
audit reports where the two disagree). Images are listed, never decoded: decoding is the
audit's and the preprocessing cache's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from medbench.data.messages import listing, plural
from medbench.data.read import birads, sheets
from medbench.data.read.cells import cell_text, fold_value, is_blank, label_value
from medbench.data.read.layouts.base import Found
from medbench.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
READERS = ("birads_reader1", "birads_reader2")

#: (severity, kind, noun, template) of each kind of problem, in the order they are reported. In
#: a template, {count} is the number of culprits with the noun, {culprits} their listing and
#: {column} the sheet column of the role the kind is named after (label, fold, a reader).
MESSAGES = (
    ("error", "bad_keys", "bad {key}", "{where}: {count}: {culprits}"),
    ("error", "duplicates", "", "{where}: duplicate {key}s: {culprits}"),
    ("error", "ambiguous", "{key}", "{where}: {count} match several images: {culprits}"),
    ("error", "missing", "listed image", "{where}: {count} missing from {root}: {culprits}"),
    ("error", "unlisted", "image", "{root}: {count} not in {where}: {culprits}"),
    (
        "error",
        "unlabelled",
        "file name",
        "{where}: {count} without a label (they start with neither 'benign' nor 'malignant') "
        "and the sheet has no label column: {culprits}",
    ),
    (
        "error",
        "label",
        "",
        "{where}: column {column!r} must hold 0/1 or benign/malignant: {culprits}",
    ),
    ("error", "fold", "", "{where}: column {column!r} must hold integers: {culprits}"),
    *(
        (
            "warning",
            role,
            "value",
            "{where}: column {column!r}: {count} not a BI-RADS category, kept as missing: "
            "{culprits}",
        )
        for role in READERS
    ),
)

#: A matched row: (sheet row, its cells, image folder ('' for the root), image file).
Match = tuple[int, dict, str, Path]


@dataclass
class Images:
    """The image files of a dataset folder by subfolder ('' for the root), looked up by name."""

    folders: dict[str, list[Path]]
    by_stem: dict[str, list[tuple[str, Path]]] = field(init=False, default_factory=dict)
    by_name: dict[str, list[tuple[str, Path]]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for folder, files in self.folders.items():
            for f in files:
                self.by_stem.setdefault(f.stem, []).append((folder, f))
                self.by_name.setdefault(f.name, []).append((folder, f))

    def knows(self, key: str) -> bool:
        """Whether ``key`` is the stem or the name of an image file."""
        return key in self.by_stem or key in self.by_name

    def lookup(self, key: str) -> list[tuple[str, Path]]:
        """The (folder, file) pairs a key names: by file name when it ends in an image suffix,
        else by stem."""
        by_ext = Path(key).suffix.lower() in IMAGE_SUFFIXES
        return (self.by_name if by_ext else self.by_stem).get(key, [])


def image_files(folder: Path) -> list[Path]:
    """The visible image files directly in ``folder`` (by suffix), sorted."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def list_images(root: Path) -> Images:
    """Image files directly in ``root`` and in each of its visible subfolders."""
    folders: dict[str, list[Path]] = {}
    try:
        for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
            if folder.name.startswith(".") and folder != root:
                continue
            files = image_files(folder)
            if files:
                folders["" if folder == root else folder.name] = files
    except OSError as err:
        raise DataError(f"{root}: cannot list the dataset folder ({err.strerror or err})") from None
    return Images(folders)


def column_roles(columns: list[str], names: Mapping[str, str], where: str) -> dict[str, str]:
    """The sheet column of each role it has: ``names`` maps column names, compared loosely
    (``sheets.column_key``), to manifest fields."""
    by_key = {sheets.column_key(name): role for name, role in names.items()}
    found: dict[str, str] = {}
    for column in columns:
        role = by_key.get(sheets.column_key(column))
        if role is None:
            continue
        if role in found:
            raise DataError(
                f"{where}: columns {found[role]!r} and {column!r} both read as {role!r}; keep one"
            )
        found[role] = str(column)
    return found


@dataclass
class Sheet:
    """A label sheet opened beside its images: what matching and parsing work on."""

    root: Path
    images: Images
    file: Path
    worksheet: str | None
    rows: pd.DataFrame  # the filled rows, indexed by sheet row
    roles: dict[str, str]  # manifest field -> sheet column

    @property
    def where(self) -> str:
        """The sheet as messages name it: its file, and its worksheet for a workbook."""
        return f"{self.file}" + (f", worksheet {self.worksheet!r}" if self.worksheet else "")


def open_sheet(
    root: Path, sheet: str | None, sheet_file: str, worksheet: str, key: str, names: Mapping
) -> Sheet:
    """List the images of ``root`` and read its sheet (``sheet_file`` and ``worksheet`` are
    preferred when there are several; ``key`` names the column that picks a worksheet)."""
    images = list_images(root)
    if not images.folders:
        raise DataError(
            f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder or its subfolders"
        )
    file, chosen = sheets.find_sheet_file(root, sheet, preferred=sheet_file)
    table, chosen = sheets.read_sheet(file, chosen, preferred=worksheet, key=key)
    opened = Sheet(root, images, file, chosen, sheets.filled_rows(table), {})
    if opened.rows.empty:
        raise DataError(f"{opened.where}: the sheet has no rows")
    opened.roles = column_roles(list(table.columns), names, opened.where)
    return opened


def read_rows(
    sheet: Sheet,
    key_column: str,
    key_name: str,
    site: Callable[[str], object],
    label_from_name: Callable[[str], int | None],
) -> Found:
    """Match, parse and report: the records of a sheet whose ``key_column`` names the images.

    ``key_name`` is what messages call a key ('ID', 'file name'); ``site`` gives the site of an
    image folder ('' for the root); ``label_from_name`` is the layout's file-name label rule.
    """
    matched, culprits = match_rows(sheet, key_column, key_name)
    records, rows, name_labels, parse_culprits = parse_rows(sheet, matched, site, label_from_name)
    return Found(
        records=records,
        source=sheet.where,
        problems=report(sheet, key_name, {**culprits, **parse_culprits}),
        sheet_file=sheet.file,
        sheet_name=sheet.worksheet,
        sheet_rows=rows,
        name_labels=name_labels,
    )


def match_rows(
    sheet: Sheet, key_column: str, key_name: str
) -> tuple[list[Match], dict[str, list[str]]]:
    """Each row's key to one image file; the culprits of each kind of matching problem."""
    culprits: dict[str, list[str]] = {
        "bad_keys": [],
        "duplicates": [],
        "ambiguous": [],
        "missing": [],
    }
    seen: dict[str, int] = {}
    used: set[Path] = set()
    matched: list[Match] = []
    for r, row in zip(sheet.rows.index, sheet.rows.to_dict("records"), strict=True):
        key = cell_text(row[key_column])
        if key is None:
            culprits["bad_keys"].append(f"row {r} has an empty {key_name}")
            continue
        if "/" in key or "\\" in key or key in (".", "..") or key.startswith("..") or "\0" in key:
            culprits["bad_keys"].append(f"row {r} {key_name} {key!r} is a path, not a file name")
            continue
        stem = Path(key).stem if Path(key).suffix.lower() in IMAGE_SUFFIXES else key
        if stem in seen:
            culprits["duplicates"].append(f"{stem!r} (rows {seen[stem]} and {r})")
            continue
        seen[stem] = r
        matches = sheet.images.lookup(key)
        if not matches:
            culprits["missing"].append(f"{key!r} (row {r})")
            continue
        if len(matches) > 1:
            files = " and ".join(str(Path(folder) / f.name) for folder, f in matches)
            culprits["ambiguous"].append(f"{key!r} (row {r}) matches {files}")
            continue
        folder, path = matches[0]
        used.add(path)
        matched.append((int(r), row, folder, path))
    culprits["unlisted"] = [
        str(Path(folder) / f.name)
        for folder, files in sheet.images.folders.items()
        for f in files
        if f not in used
    ]
    return matched, culprits


def parse_rows(
    sheet: Sheet,
    matched: list[Match],
    site: Callable[[str], object],
    label_from_name: Callable[[str], int | None],
) -> tuple[list[dict], list[int], list[int | None], dict[str, list[str]]]:
    """Each matched row's cells to a record; returns the records, their sheet rows, the label
    each file name gives, and the culprits of each kind of cell problem."""
    roles = sheet.roles
    culprits: dict[str, list[str]] = {
        "unlabelled": [],
        "label": [],  # label cells that are no label
        "fold": [],  # fold cells that are no integer
        **{role: [] for role in READERS},  # stray reader values
    }
    records: list[dict] = []
    rows: list[int] = []
    name_labels: list[int | None] = []
    for r, row, folder, path in matched:
        name_label = label_from_name(path.stem)
        label = name_label
        if "label" in roles:
            label = label_value(row[roles["label"]])
            if label is None:
                culprits["label"].append(f"row {r} {cell_text(row[roles['label']])!r}")
                continue
        elif name_label is None:
            culprits["unlabelled"].append(f"{path.name!r} (row {r})")
            continue

        fold = pd.NA
        if "fold" in roles:
            value = row[roles["fold"]]
            fold = fold_value(value)
            if fold is None:
                culprits["fold"].append(
                    f"row {r} " + ("is empty" if is_blank(value) else f"{cell_text(value)!r}")
                )
                fold = pd.NA

        readers = {}
        for role in READERS:
            value = row[roles[role]] if role in roles else None
            readers[role] = birads.category(value)
            if readers[role] is None and not is_blank(value):
                culprits[role].append(f"row {r} {cell_text(value)!r}")

        # a site or patient column wins over the folder; an empty cell is missing
        record = {
            "id": path.stem,
            "path": str(path.resolve()),
            "label": label,
            "site": site(folder),
            "fold": fold,
            **readers,
        }
        for role in ("site", "patient"):
            if role in roles:
                record[role] = cell_text(row[roles[role]])
        records.append(record)
        rows.append(r)
        name_labels.append(name_label)
    return records, rows, name_labels, culprits


def report(sheet: Sheet, key_name: str, culprits: dict[str, list[str]]) -> list[tuple[str, str]]:
    """One (severity, message) per kind of problem found, in the order of ``MESSAGES``."""
    return [
        (
            severity,
            template.format(
                where=sheet.where,
                root=sheet.root,
                key=key_name,
                count=plural(len(culprits[kind]), noun.format(key=key_name)),
                culprits=listing(culprits[kind]),
                column=sheet.roles.get(kind),
            ),
        )
        for severity, kind, noun, template in MESSAGES
        if culprits[kind]
    ]
