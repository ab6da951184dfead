"""BI-RADS, the one home of its rules: the categories, a cell's category and a reader's call.

Radiologists' sheets hold categories as numbers or text ('4A', 3.0, 'BI-RADS 4a'); the manifest
keeps the normalised category text and every consumer (the report's reader operating points,
the audit) turns it into a call here. A reader calls a lesion malignant at 4a or above (a plain
4, as some readers write, counts as positive) and benign at 1-3.

BI-RADS 0 ("incomplete, needs additional imaging") is a category but not an assessment: the
manifest keeps '0', and it is no call, like an empty cell or a stray value.
"""

from __future__ import annotations

import re

from medbench.data.read.cells import cell_text

CATEGORIES = ("0", "1", "2", "3", "4", "4a", "4b", "4c", "5", "6")
POSITIVE = frozenset({"4", "4a", "4b", "4c", "5", "6"})
NEGATIVE = frozenset({"1", "2", "3"})


def category(value: object) -> str | None:
    """The BI-RADS category of a cell as lower-case text ('4A' -> '4a', 3.0 -> '3',
    'BI-RADS 4a' -> '4a'); None when the cell is empty or holds no category."""
    if isinstance(value, bool):
        return None
    text = cell_text(value)
    if text is None:
        return None
    text = re.sub(r"^bi-?rads", "", text.lower().replace(" ", ""))
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    return text if text in CATEGORIES else None


def call(value: object) -> bool | None:
    """A reader's call from a cell or a category: True (malignant) at 4 or above, False at 1-3,
    None when there is no call (0, empty, stray)."""
    found = category(value)
    if found in POSITIVE:
        return True
    if found in NEGATIVE:
        return False
    return None
