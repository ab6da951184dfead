"""Sheet cells as people type them: blanks, Excel's integral floats (3.0), integer folds and
0/1 or benign/malignant labels. Every reader parses cells here, so a value means one thing."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from medbench.data.read.labels import LABELS


def is_blank(value: object) -> bool:
    """True for an empty cell: None, NaN or whitespace-only text."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def cell_text(value: object) -> str | None:
    """A cell as text; Excel's integral floats (3.0) read as '3'; None when blank."""
    if is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def fold_value(value: object) -> int | None:
    """A fold cell as an integer; None when it is not one (2.5, 'two', blank, True)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    text = cell_text(value)
    if text is None or not re.fullmatch(r"[+-]?\d+(\.0+)?", text):
        return None
    return int(text.split(".")[0])


def label_value(value: object) -> int | None:
    """A label cell: 0/1 or benign/malignant; None when it is neither."""
    text = cell_text(value)
    if text is None:
        return None
    text = text.lower()
    if text in LABELS:
        return LABELS[text]
    if re.fullmatch(r"[01](\.0+)?", text):
        return int(text[0])
    return None
