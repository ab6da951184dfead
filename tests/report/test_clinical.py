import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from medbench.report.clinical import (
    ORDINAL,
    kappa_from_confusion,
    operating_point,
    reader_agreement,
    reader_calls,
    sensitivity_at_specificity,
    sensitivity_at_specificity_resampled,
    specificity_at_sensitivity,
)
from medbench.report.stats import stratified_counts


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


def test_weighted_kappas_match_sklearn_on_the_ordinal_scale():
    r1 = ["2", "3", "4a", "4b", "5", "", "2", "4c", "3", "x", "4", "4a"]
    r2 = ["3", "3", "4a", "3", "5", "4a", "2", "4c", "4b", "2", "4b", "5"]
    ag = reader_agreement(r1, r2, n_resamples=200)
    keep = [0, 1, 2, 3, 4, 6, 7, 8, 10, 11]
    o1, o2 = [ORDINAL[r1[i]] for i in keep], [ORDINAL[r2[i]] for i in keep]
    scale = sorted(set(ORDINAL.values()))  # every category, used or not, keeps its distance
    for weights in ("linear", "quadratic"):
        want = cohen_kappa_score(o1, o2, weights=weights, labels=scale)
        assert ag.kappa[f"kappa_{weights}"] == pytest.approx(want)
    # a plain 4 sits with 4b: rows 10 ("4" vs "4b") agree on the ordinal scale
    assert ORDINAL["4"] == ORDINAL["4b"]
    for name in ag.kappa:
        assert ag.low[name] <= ag.kappa[name] <= ag.high[name] <= 1


def test_kappa_bootstrap_is_sklearn_on_the_resampled_images():
    rng = np.random.default_rng(5)
    cats = ["2", "3", "4a", "4b", "4c", "5"]
    r1 = list(rng.choice(cats, 60))
    r2 = [c if rng.random() < 0.6 else str(rng.choice(cats)) for c in r1]
    ag = reader_agreement(r1, r2, n_resamples=300, seed=2)
    counts = stratified_counts(np.zeros(60), 300, 2)
    o1, o2 = np.array([ORDINAL[c] for c in r1]), np.array([ORDINAL[c] for c in r2])
    values = [
        cohen_kappa_score(o1, o2, weights="quadratic", labels=range(8), sample_weight=w)
        for w in counts
    ]
    assert (ag.low["kappa_quadratic"], ag.high["kappa_quadratic"]) == pytest.approx(
        tuple(np.percentile(values, [2.5, 97.5]))
    )


def test_kappa_from_confusion_by_hand():
    # 2x2: observed agreement 0.8, expected 0.5 -> kappa 0.6
    assert kappa_from_confusion([[40, 10], [10, 40]]) == pytest.approx(0.6)
    assert math.isnan(kappa_from_confusion([[10, 0], [0, 0]]))  # one category only


def test_sensitivity_at_reader_specificity_resampled_equals_the_plain_function():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 50)
    p = np.round(np.clip(0.3 * y + 0.7 * rng.random(50), 0, 1), 2)
    calls = (rng.random(50) < np.where(y == 1, 0.85, 0.3)).astype(int)
    counts = stratified_counts(y, 40, seed=1)
    got = sensitivity_at_specificity_resampled(y, p, calls, np.vstack([np.ones(50), counts]))
    for r, w in enumerate(np.vstack([np.ones(50, dtype=int), counts])):
        yy, pp, cc = np.repeat(y, w), np.repeat(p, w), np.repeat(calls, w)
        spec = operating_point(yy, cc).specificity
        assert got[r] == pytest.approx(sensitivity_at_specificity(yy, pp, spec)[0]), r
    assert got.min() >= 0 and got.max() <= 1
