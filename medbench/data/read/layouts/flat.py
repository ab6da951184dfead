"""The flat layout, for your own data: one image folder, or images directly in the root, and a
label sheet whose first column is the file name (with or without its extension).

The label comes from the file name (``gdph_sysucc.label_from_name``: a name containing
'malignant' and not 'benign' is malignant) unless the sheet has a label column. The sheet may
also carry the release's fold and reader columns, a ``site`` column (the hospital or scanner of
each image; without one, images in several subfolders take the folder as their site, and in one
folder they have none) and a ``patient`` column (images of one patient then stay together in
every split medbench makes: patient-grouped stratified folds and validation split). The sheet is
found as the release's is. The earlier HoVer-Trans release (``img/`` and ``label.csv`` with
``name, label``) reads as this layout.

This is the loosest layout: detection tries it last.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medbench.data.read import sheets
from medbench.data.read.cells import cell_text
from medbench.data.read.layouts import gdph_sysucc, listed
from medbench.data.read.layouts.base import Found, ReadOptions
from medbench.errors import DataError

NAME = "flat"
CARD = None
DESCRIPTION = (
    "images, in one folder or the root, and a sheet whose first column is the file name "
    "(optional label, fold, site, patient and reader columns)"
)
#: The columns read besides the file name: the release's, and a site and a patient column.
NAMES = {
    **gdph_sysucc.NAMES,
    "site": "site",
    "hospital": "site",
    "patient": "patient",
    "patient id": "patient",
}


def detect(root: Path, sheet: str | None = None) -> bool:
    """Whether ``root`` holds image files or a sheet (or the user names one).

    Raises a DataError when ``root`` cannot be listed.
    """
    return bool(sheet) or bool(listed.list_images(root).folders) or bool(sheets.sheet_files(root))


def read(root: Path, sheet: str | None = None, options: ReadOptions | None = None) -> Found:
    """The records of the sheet, matched to the images by the file names of its first column."""
    opened = listed.open_sheet(
        root, sheet, gdph_sysucc.SHEET_FILE, gdph_sysucc.WORKSHEET, key=gdph_sysucc.ID, names=NAMES
    )
    key_column = opened.rows.columns[0]
    keys = [cell_text(v) for v in opened.rows[key_column]]
    if not any(k and opened.images.knows(k) for k in keys):
        raise DataError(
            f"{opened.where}: no ID column, and the first column {key_column!r} names no image in "
            f"{root} (e.g. {next((k for k in keys if k), '')!r}); columns are "
            f"{', '.join(repr(c) for c in opened.rows.columns)}"
        )
    with_sites = len(opened.images.folders) > 1
    return listed.read_rows(
        opened,
        key_column,
        "file name",
        site=lambda folder: folder if with_sites and folder else pd.NA,
        label_from_name=gdph_sysucc.label_from_name,
    )
