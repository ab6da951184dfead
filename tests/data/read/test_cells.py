"""Sheet cells: blanks, Excel's numbers, folds and labels."""

import math

import numpy as np
import pytest

from medbench.data.read.cells import cell_text, fold_value, is_blank, label_value


@pytest.mark.parametrize("value", [None, math.nan, "", "  ", np.nan])
def test_blank_cells(value):
    assert is_blank(value) and cell_text(value) is None


@pytest.mark.parametrize("value, text", [(3.0, "3"), (3.5, "3.5"), (" 4a ", "4a"), (0, "0")])
def test_cell_text(value, text):
    assert not is_blank(value) and cell_text(value) == text


@pytest.mark.parametrize(
    "value, fold",
    [
        (1, 1),
        (np.int64(2), 2),
        (3.0, 3),
        ("4", 4),
        ("5.0", 5),
        ("-1", -1),
        (2.5, None),
        ("two", None),
        (None, None),
        (True, None),
    ],
)
def test_fold_value(value, fold):
    assert fold_value(value) == fold


@pytest.mark.parametrize(
    "value, label",
    [
        (0, 0),
        (1.0, 1),
        ("1", 1),
        ("Malignant", 1),
        (" benign ", 0),
        ("2", None),
        ("maybe", None),
        (None, None),
    ],
)
def test_label_value(value, label):
    assert label_value(value) == label
