import math
import warnings

import pandas as pd
import pytest

from medbench.data.read import birads
from medbench.data.read.manifest import read_manifest
from medbench.errors import MedbenchWarning
from medbench.report.clinical import reader_calls
from tests.data.layouts import gdph_layout


@pytest.mark.parametrize(
    "value, expected",
    [
        ("4A", "4a"),
        ("4a", "4a"),
        (" 4b ", "4b"),
        ("4 C", "4c"),
        (3.0, "3"),
        (5, "5"),
        (4, "4"),
        (4.0, "4"),
        ("3.0", "3"),
        ("5.0", "5"),
        ("BI-RADS 4A", "4a"),
        ("birads5", "5"),
        ("0", "0"),
        (0, "0"),
        ("6", "6"),
        ("4", "4"),
        (None, None),
        (float("nan"), None),
        ("", None),
        ("4/5", None),
        ("4d", None),
        ("c", None),
        (7, None),
        (3.5, None),
        (4.5, None),
        (True, None),
    ],
)
def test_category(value, expected):
    assert birads.category(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1", False),
        (2, False),
        ("3", False),
        (3.0, False),
        ("4", True),  # a plain 4 counts as positive
        (4, True),
        ("4A", True),
        ("4c", True),
        (5.0, True),
        ("6", True),
        ("0", None),  # incomplete: not an assessment
        ("x", None),
        ("", None),
        (None, None),
    ],
)
def test_call_is_positive_at_4a_and_above(value, expected):
    assert birads.call(value) is expected


def test_every_category_is_a_call_except_0():
    assert [c for c in birads.CATEGORIES if birads.call(c) is None] == ["0"]
    assert set(birads.CATEGORIES) - {"0"} == birads.POSITIVE | birads.NEGATIVE


# Reader cells as sheets hold them: every category, Excel's numbers, upper case, stray values.
CELLS = [*birads.CATEGORIES, 3.0, 4, 4.0, "4A", "4C", "BI-RADS 4b", "4/5", "x", 7, None]


def test_manifest_and_report_agree_on_every_reader_cell(tmp_path):
    ds = gdph_layout(tmp_path, stray=None)
    assert len(ds.rows) >= len(CELLS)
    for row, cell in zip(ds.rows, CELLS, strict=False):
        row["BIRADS-reader1"] = cell
    ds.write_sheet()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MedbenchWarning)  # the stray values
        manifest = read_manifest(tmp_path)
    stored = manifest["birads_reader1"].tolist()[: len(CELLS)]
    # The manifest keeps each cell's category (0 included) and nothing for the rest.
    assert [None if pd.isna(s) else s for s in stored] == [birads.category(c) for c in CELLS]
    assert stored[0] == "0"
    # The report's calls on the manifest equal the calls on the raw cells, 0 included.
    on_manifest = reader_calls(stored).positive
    on_cells = reader_calls(CELLS).positive
    expected = [birads.call(c) for c in CELLS]
    for got, raw, want in zip(on_manifest, on_cells, expected, strict=True):
        if want is None:
            assert math.isnan(got) and math.isnan(raw)
        else:
            assert got == raw == float(want)
    # 0 is left out of the reader's numbers like a stray value, never counted as a call.
    calls = reader_calls(stored)
    assert calls.n_stray == 1  # the "0"
    assert calls.n_missing == 4  # "4/5", "x", 7 and the empty cell, dropped by the manifest
    assert int(calls.valid.sum()) == len(CELLS) - 5
