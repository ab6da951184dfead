"""The manifest: the one description of a dataset, one row per image; nothing downstream reads
the folder.

Its columns are ``MANIFEST_COLUMNS``: ``id`` and ``path`` (text), ``label`` (int64: 0 benign,
1 malignant), ``site`` (text), ``fold`` (nullable Int64), the two readers' BI-RADS categories
(text, see :mod:`~medbench.data.read.birads`), ``patient`` (text: images of one patient share it, and every split
medbench makes keeps them together) and ``split`` (text: a dataset's own ``train``/``val``/
``test`` part, as BreastMNIST has); a dataset without a field leaves it missing. ``path`` is a
file, or one image of an array file (``FILE::ARRAY[INDEX]``, see :mod:`~medbench.data.pixels.arrays`). ``df.attrs``
keeps where it came from: ``root``, ``sheet_file``, ``sheet_name`` and ``layout``.

A folder is read by its layout (``medbench.data.read.layouts``), detected from what is on disk or
named. ``read_manifest`` stops at the first error; ``scan`` collects every problem for the
audit.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.messages import plural
from medbench.data.read.labels import LABEL_NAMES
from medbench.data.read.layouts import detect, get_layout
from medbench.data.read.layouts.base import ReadOptions
from medbench.errors import ConfigError, DataError, MedbenchWarning, closest

MANIFEST_COLUMNS = (
    "id",
    "path",
    "label",
    "site",
    "fold",
    "birads_reader1",
    "birads_reader2",
    "patient",
    "split",
)


@dataclass
class Scan:
    """What reading a dataset folder found: the manifest it could build and every problem.

    ``read_manifest`` raises at the first error; the audit reads everything through ``scan``.
    """

    manifest: pd.DataFrame
    sheet_rows: list[int] = field(default_factory=list)  # the sheet row of each manifest row
    name_labels: list[int | None] = field(default_factory=list)  # label from each file name
    problems: list[tuple[str, str]] = field(default_factory=list)  # (severity, message)
    left_out: dict[str, int] = field(default_factory=dict)  # files that are no task image, why


def read_manifest(
    root: str | Path,
    sheet: str | None = None,
    layout: str | None = None,
    include_normal: bool = False,
    labels: str = "check",
) -> pd.DataFrame:
    """Read a dataset folder into the manifest, one row per image.

    Parameters
    ----------
    root : str or Path
        The dataset folder.
    sheet : str, optional
        For layouts with a label sheet: a worksheet name (``"prediction"``), a sheet file in
        ``root`` (``"labels.csv"``) or both (``"book.xlsx:prediction"``). By default the
        layout's own sheet, or the only one.
    layout : str, optional
        A layout name from :func:`medbench.data.read.layouts.list_layouts`; by default (or
        ``"auto"``) it is detected from what is on disk.
    include_normal : bool, default False
        Fold a dataset's normal (lesion-free) images into benign; by default they are left out.
    labels : str, default "check"
        Where a sheet's label column and the file names disagree: ``"check"`` stops with one
        line naming how many and an example, ``"sheet"`` or ``"names"`` says which one wins.

    Returns
    -------
    pandas.DataFrame
        Columns ``MANIFEST_COLUMNS``; ``attrs`` holds ``root``, ``sheet_file``, ``sheet_name``
        and ``layout``.

    Raises
    ------
    DataError
        At the first problem (missing folder, no sheet, a bad row, one class only, ...), as
        one line naming the file, row or key.

    Warns
    -----
    MedbenchWarning
        For values kept as missing, such as a reader cell that is not a BI-RADS category.
    """
    found = scan(root, sheet, layout, include_normal, labels)
    for severity, message in found.problems:
        if severity == "error":
            raise DataError(message)
        warnings.warn(message, MedbenchWarning, stacklevel=2)
    return found.manifest


def scan(
    root: str | Path,
    sheet: str | None = None,
    layout: str | None = None,
    include_normal: bool = False,
    labels: str = "check",
) -> Scan:
    """Read like :func:`read_manifest`, collecting row-level problems instead of raising.

    Parameters
    ----------
    root : str or Path
        The dataset folder.
    sheet : str, optional
        As for :func:`read_manifest`.
    layout : str, optional
        As for :func:`read_manifest`.
    include_normal : bool, default False
        As for :func:`read_manifest`.
    labels : str, default "check"
        As for :func:`read_manifest`.

    Returns
    -------
    Scan
        The manifest without the rows at fault, the sheet row and file-name label of each row
        (layouts with a sheet), every problem as (severity, message), and the files left out.

    Raises
    ------
    DataError
        For problems that leave nothing to read: no folder, no layout that fits it, no sheet,
        no key column, no images.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: dataset folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected a dataset folder with images and a sheet)")
    reader = detect(root, sheet) if layout in (None, "auto") else get_layout(layout)
    found = reader.read(root, sheet, ReadOptions(include_normal=include_normal))
    manifest = _frame(found.records)
    manifest.attrs.update(
        root=str(root.resolve()),
        sheet_file=str(found.sheet_file.resolve()) if found.sheet_file else None,
        sheet_name=found.sheet_name,
        layout=reader.NAME,
    )
    problems = found.problems
    problems += _label_sources(manifest, found.sheet_rows, found.name_labels, labels, found.source)
    problems += _class_problems(manifest, root, found.source)
    return Scan(manifest, found.sheet_rows, found.name_labels, problems, found.left_out)


def exclude_images(manifest: pd.DataFrame, ids: Sequence[str]) -> pd.DataFrame:
    """The manifest without the images ``ids`` (``data.exclude``: e.g. one image of each
    near-duplicate pair ``data check`` lists), its ``attrs`` kept.

    Raises
    ------
    ConfigError
        An id the dataset does not have (a typo would otherwise leave the duplicate in), with
        the closest id.
    """
    if not ids:
        return manifest
    known = manifest["id"].astype(str)
    missing = [str(i) for i in ids if str(i) not in set(known)]
    if missing:
        where = manifest.attrs.get("root", "the dataset")
        raise ConfigError(
            f"data.exclude: no image {missing[0]!r} in {where}"
            f"{closest(missing[0], known.tolist())}"
            + (f" ({len(missing)} ids not found)" if len(missing) > 1 else "")
        )
    kept = manifest[~known.isin({str(i) for i in ids})].reset_index(drop=True)
    kept.attrs = dict(manifest.attrs)
    return kept


#: Which label wins when a sheet's label column and the file names disagree: ``check`` stops
#: (a column named like a label may hold something else, e.g. site codes), ``sheet`` or ``names``.
LABEL_SOURCES = ("check", "sheet", "names")


def label_disagreements(manifest: pd.DataFrame, name_labels: list[int | None]) -> list[int]:
    """Positions of the rows whose sheet label contradicts the label in the file's name."""
    return [
        i
        for i, (label, by_name) in enumerate(zip(manifest["label"], name_labels, strict=True))
        if by_name is not None and by_name != label
    ]


def disagreement(manifest: pd.DataFrame, rows: list[int], i: int) -> str:
    """Row ``i`` of a label disagreement as messages show it: its sheet row (when ``rows`` has
    them), its ID and the sheet's label."""
    id_ = repr(manifest["id"].iloc[i])
    if not rows:
        return id_
    return f"row {rows[i]} {id_} is {LABEL_NAMES[int(manifest['label'].iloc[i])]} in the sheet"


def _label_sources(
    manifest: pd.DataFrame,
    rows: list[int],
    name_labels: list[int | None],
    labels: str,
    source: str,
) -> list[tuple[str, str]]:
    """Apply the ``labels`` rule where the sheet's label and the file name's disagree."""
    if not name_labels or labels == "sheet":
        return []
    at = label_disagreements(manifest, name_labels)
    if not at:
        return []
    if labels == "names":
        manifest.loc[at, "label"] = [name_labels[i] for i in at]
        return []
    example = disagreement(manifest, rows, at[0])
    return [
        (
            "error",
            f"{source}: the label column disagrees with the file names for "
            f"{plural(len(at), 'image')} of {len(manifest)} (e.g. {example}); if the column "
            "holds the labels, set data.labels: sheet; if the file names do, data.labels: names",
        )
    ]


def _class_problems(manifest: pd.DataFrame, root: Path, source: str) -> list[tuple[str, str]]:
    """A benign/malignant benchmark needs images of both classes."""
    labels = set(manifest["label"])
    if len(labels) == 1:
        only = LABEL_NAMES[labels.pop()]
        return [
            (
                "error",
                f"{root}: all {len(manifest)} images are {only}; a benign/malignant benchmark "
                "needs both classes",
            )
        ]
    if not labels:
        return [("error", f"{root}: no usable image rows in {source}")]
    return []


def _frame(records: list[dict]) -> pd.DataFrame:
    """The manifest with its dtypes fixed (strings, int labels, nullable Int64 folds)."""
    columns = {c: [rec.get(c) for rec in records] for c in MANIFEST_COLUMNS}
    return pd.DataFrame(
        {
            "id": pd.array(columns["id"], dtype="str"),
            "path": pd.array(columns["path"], dtype="str"),
            "label": np.asarray(columns["label"], dtype=np.int64),
            "site": pd.array(columns["site"], dtype="str"),
            "fold": pd.array(columns["fold"], dtype="Int64"),
            "birads_reader1": pd.array(columns["birads_reader1"], dtype="str"),
            "birads_reader2": pd.array(columns["birads_reader2"], dtype="str"),
            "patient": pd.array(columns["patient"], dtype="str"),
            "split": pd.array(columns["split"], dtype="str"),
        },
        columns=list(MANIFEST_COLUMNS),
    )
