"""Label sheets: finding the sheet file in a dataset folder, choosing its worksheet and reading
its cells as they were typed (object dtype: parsing them is ``cells``' job).

Column names are compared loosely (``column_key``): people write ``ID``, `` id `` or
``Birads Reader 2``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.read.cells import is_blank
from medbench.errors import DataError, MedbenchWarning, closest

SHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv")


def column_key(name: object) -> str:
    """A column name without case, spaces, '-' and '_': 'BIRADS-reader1' -> 'biradsreader1'."""
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def sheet_files(root: Path) -> list[Path]:
    """The sheet files directly in ``root``, leaving out Excel's lock files and hidden files."""
    return sorted(
        p
        for p in root.iterdir()
        if p.is_file() and p.suffix.lower() in SHEET_SUFFIXES and not p.name.startswith(("~$", "."))
    )


def find_sheet_file(root: Path, sheet: str | None, preferred: str) -> tuple[Path, str | None]:
    """The sheet file and the worksheet asked for (None: choose).

    ``sheet`` names a worksheet, a file in ``root`` (``labels.csv``) or both
    (``book.xlsx:prediction``); without a file, the ``preferred`` file or the only one is used.
    """
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
    candidates = sheet_files(root)
    named = [p for p in candidates if p.name.lower() == preferred.lower()]
    if named:
        return named[0], sheet
    if len(candidates) == 1:
        return candidates[0], sheet
    if not candidates:
        raise DataError(
            f"{root}: no label sheet (.xlsx or .csv) in the dataset folder; "
            f"expected {preferred} next to the image folders"
        )
    names = ", ".join(p.name for p in candidates)
    raise DataError(
        f"{root}: several label sheets ({names}); keep one, or name it, e.g. sheet={candidates[0].name!r}"
    )


def read_sheet(
    sheet_file: Path, worksheet: str | None, preferred: str, key: str, header_only: bool = False
) -> tuple[pd.DataFrame, str | None]:
    """The sheet's cells as read (object dtype, text column names) and the worksheet's name
    (None for CSV).

    Without ``worksheet``, the ``preferred`` worksheet is read, else the only one, else the only
    one with a ``key`` column. ``header_only`` reads the column names alone.
    """
    nrows = 0 if header_only else None
    if sheet_file.suffix.lower() == ".csv":
        try:
            table = pd.read_csv(
                sheet_file,
                dtype=object,
                keep_default_na=False,
                na_values=[""],
                skip_blank_lines=False,  # keep line numbers equal to sheet rows
                encoding="utf-8-sig",
                nrows=nrows,
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise DataError(f"{sheet_file}: cannot read the CSV sheet ({err})") from None
        return _text_columns(table), None
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
        chosen = _choose_worksheet(book, sheet_file, worksheet, preferred, key)
        if worksheet is None and not header_only:
            _say_if_hidden(book, sheet_file, chosen)
        table = pd.read_excel(book, sheet_name=chosen, header=0, dtype=object, nrows=nrows)
    return _text_columns(table), chosen


def _say_if_hidden(book: pd.ExcelFile, sheet_file: Path, chosen: str) -> None:
    """A hidden worksheet chosen while visible ones exist is read, and said: the user looking at
    the workbook in Excel does not see the sheet medbench reads."""
    states = {
        ws.title: ws.sheet_state for ws in getattr(getattr(book, "book", None), "worksheets", [])
    }
    visible = [name for name, state in states.items() if state == "visible"]
    if states.get(chosen, "visible") != "visible" and visible:
        warnings.warn(
            f"{sheet_file}: read the hidden worksheet {chosen!r} (visible: "
            f"{', '.join(repr(v) for v in visible)}); choose another with data.sheet",
            MedbenchWarning,
            stacklevel=4,
        )


def _choose_worksheet(
    book: pd.ExcelFile, sheet_file: Path, worksheet: str | None, preferred: str, key: str
) -> str:
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
        return match[0]
    named = [n for n in names if n.strip().lower() == preferred.lower()]
    if named:
        return named[0]
    if len(names) == 1:
        return names[0]
    with_key = [
        n
        for n in names
        if any(
            column_key(c) == column_key(key)
            for c in pd.read_excel(book, sheet_name=n, nrows=0).columns
        )
    ]
    if len(with_key) != 1:
        raise DataError(
            f"{sheet_file}: no usable worksheet among {listed}; expected "
            f"{preferred!r} with an {key} column, or choose one with sheet=NAME"
        )
    return with_key[0]


def _text_columns(table: pd.DataFrame) -> pd.DataFrame:
    table.columns = [str(c) for c in table.columns]
    return table


def filled_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that are not blank, indexed by their sheet row as Excel numbers it (header 1)."""
    filled = np.array([not all(is_blank(v) for v in row) for row in table.itertuples(index=False)])
    table = table.set_axis(np.arange(len(table)) + 2, axis=0)
    return table[filled.astype(bool)]
