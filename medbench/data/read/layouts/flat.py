"""The seed script's layout: one image folder, or images directly in the root, and a label
sheet whose first column is the file name (with or without its extension).

The label comes from the file name (``gdph_sysucc.label_from_name``: a name containing
'malignant' and not 'benign' is malignant) unless the sheet has a label column. The sheet may
also carry the release's fold and reader columns, and is found as the release's is. Images in
several subfolders take the folder as their site; in one folder they have none. The earlier
HoVer-Trans release (``img/`` and ``label.csv`` with ``name, label``) reads as this layout.

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
DESCRIPTION = "images, in one folder or the root, and a sheet whose first column is the file name"


def detect(root: Path, sheet: str | None = None) -> bool:
    """Whether ``root`` holds image files or a sheet (or the user names one).

    Raises a DataError when ``root`` cannot be listed.
    """
    return bool(sheet) or bool(listed.list_images(root).folders) or bool(sheets.sheet_files(root))


def read(root: Path, sheet: str | None = None, options: ReadOptions | None = None) -> Found:
    """The records of the sheet, matched to the images by the file names of its first column."""
    opened = gdph_sysucc.open_sheet(root, sheet)
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
