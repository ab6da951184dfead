"""The GDPH&SYSUCC release (Mo et al., HoVer-Trans, IEEE TMI 2023), defined once for the reader
and the synthetic generator.

On disk::

    ROOT/
      BIRADS&FOLD.xlsx   worksheet "prediction": ID, BIRADS-reader1, BIRADS-reader2, fold
      SYSUCC/            benign(0).png ... malignant(1115).png
      GDPH/              benign(443).png ... malignant(1518).png

``ID`` is the file stem, unique across both folders; the label is its prefix; the site is the
folder. A sheet saved under another name or as csv is the same layout as long as it has an ID
column; images directly in the root have no site.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medbench.data.read import sheets
from medbench.data.read.labels import LABEL_NAMES, LABELS
from medbench.data.read.layouts import listed
from medbench.data.read.layouts.base import Found, ReadOptions
from medbench.errors import DataError

NAME = "gdph_sysucc"
CARD = "gdph_sysucc_bus"
SHEET_FILE = "BIRADS&FOLD.xlsx"
WORKSHEET = "prediction"
ID = "ID"
#: The sheet's columns, in order, and the manifest field each fills.
COLUMNS = {
    ID: "id",
    "BIRADS-reader1": "birads_reader1",
    "BIRADS-reader2": "birads_reader2",
    "fold": "fold",
}
#: Column names read as the release's (compared without case, spaces, '-' and '_'): its own,
#: shorter reader names, and a label column, which wins over the file name.
NAMES = {
    **COLUMNS,
    "reader1": "birads_reader1",
    "reader2": "birads_reader2",
    "label": "label",
    "class": "label",
}
#: Site folders in the release's numbering order: per class, SYSUCC first, then GDPH.
SITES = ("SYSUCC", "GDPH")
DESCRIPTION = f"site folders of images and {SHEET_FILE} with an {ID} column"


def image_id(label: int, number: int) -> str:
    """The release's name (file stem, sheet ID) of image ``number`` of a class: 'benign(12)'."""
    return f"{LABEL_NAMES[label]}({number})"


def label_from_name(name: str) -> int | None:
    """0/1 from a file name: its prefix ``benign``/``malignant``, else the one of the two words
    it contains (as the flat layout's names do); None when neither or both."""
    lower = name.lower()
    for word, label in LABELS.items():
        if lower.startswith(word):
            return label
    found = [label for word, label in LABELS.items() if word in lower]
    return found[0] if len(found) == 1 else None


def open_sheet(root: Path, sheet: str | None = None) -> listed.Sheet:
    """The images and the label sheet of ``root``, this release's sheet and worksheet preferred."""
    return listed.open_sheet(root, sheet, SHEET_FILE, WORKSHEET, key=ID, names=NAMES)


def detect(root: Path, sheet: str | None = None) -> bool:
    """Whether the label sheet of ``root`` (the one ``sheet`` names) has an ID column."""
    try:
        sheet_file, worksheet = sheets.find_sheet_file(root, sheet, preferred=SHEET_FILE)
        table, _ = sheets.read_sheet(sheet_file, worksheet, WORKSHEET, key=ID, header_only=True)
        roles = listed.column_roles(list(table.columns), NAMES, str(sheet_file))
    except (DataError, OSError):  # no usable sheet: not this layout (the reader says why)
        return False
    return "id" in roles


def read(root: Path, sheet: str | None = None, options: ReadOptions | None = None) -> Found:
    """The records of the release's sheet, matched to the images by ID (the file stem)."""
    opened = open_sheet(root, sheet)
    if "id" not in opened.roles:
        columns = ", ".join(repr(c) for c in opened.rows.columns)
        raise DataError(f"{opened.where}: no {ID} column; columns are {columns}")
    return listed.read_rows(
        opened, opened.roles["id"], ID, site=_site, label_from_name=label_from_name
    )


def _site(folder: str) -> object:
    return folder or pd.NA
