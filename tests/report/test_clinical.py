import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from medbench.report.clinical import (
    operating_point,
    reader_agreement,
    reader_calls,
    sensitivity_at_specificity,
    specificity_at_sensitivity,
)


def test_reader_calls_count_missing_and_stray():
    calls = reader_calls(["2", "4a", "", None, "stray", "5", "0", "4"])
    assert calls.n_missing == 2 and calls.n_stray == 2
    assert list(calls.valid) == [True, True, False, False, False, True, False, True]
    assert list(calls.positive[calls.valid]) == [0, 1, 1, 1]


# A hand-computed example: 4 malignant (a-d), 4 benign (e-h).
LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0])
READER = ["5", "4b", "3", "4a", "2", "4a", "3", "2"]
PROBS = np.array([0.9, 0.8, 0.4, 0.35, 0.7, 0.3, 0.2, 0.1])


def test_reader_operating_point_by_hand():
    calls = reader_calls(READER)
    point = operating_point(LABELS, calls.positive.astype(int))
    # malignant: 5, 4b, 4a positive, 3 negative -> TP 3, FN 1
    # benign: 4a positive, 2, 3, 2 negative -> FP 1, TN 3
    assert (point.tp, point.fn, point.tn, point.fp) == (3, 1, 3, 1)
    assert point.sensitivity == 0.75 and point.specificity == 0.75 and point.n == 8


def test_model_at_the_readers_operating_point_by_hand():
    # thresholds down the sorted probs: 0.9 (1/4 sens, 4/4 spec), 0.8 (2/4, 4/4),
    # 0.7 (2/4, 3/4), 0.4 (3/4, 3/4), 0.35 (4/4, 3/4), 0.3 (4/4, 2/4) ...
    sens, thr = sensitivity_at_specificity(LABELS, PROBS, 0.75)
    assert sens == 1.0 and thr == 0.35
    spec, thr = specificity_at_sensitivity(LABELS, PROBS, 0.75)
    assert spec == 0.75 and thr == 0.35
    sens, thr = sensitivity_at_specificity(LABELS, PROBS, 1.0)
    assert sens == 0.5 and thr == 0.8
    spec, thr = specificity_at_sensitivity(LABELS, PROBS, 0.5)
    assert spec == 1.0 and thr == 0.8
    assert math.isnan(sensitivity_at_specificity([1, 1], [0.2, 0.3], 0.5)[0])


def test_kappa_matches_sklearn_and_skips_unusable_rows():
    r1 = ["2", "3", "4a", "4b", "5", "", "2", "4c", "3", "x"]
    r2 = ["3", "3", "4a", "3", "5", "4a", "2", "4c", "4b", "2"]
    ag = reader_agreement(r1, r2)
    keep = [0, 1, 2, 3, 4, 6, 7, 8]
    c1 = [r1[i] for i in keep]
    c2 = [r2[i] for i in keep]
    pos = {"4a", "4b", "4c", "5"}
    assert ag.n == 8
    assert ag.kappa_categories == pytest.approx(cohen_kappa_score(c1, c2))
    assert ag.kappa_calls == pytest.approx(
        cohen_kappa_score([c in pos for c in c1], [c in pos for c in c2])
    )
    assert ag.percent_agreement == pytest.approx(6 / 8)
    assert reader_agreement(["", "x"], ["2", "3"]).n == 0
