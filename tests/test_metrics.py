import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    recall_score,
    roc_auc_score,
)

from medbench.metrics import (
    METRIC_NAMES,
    binary_metrics,
    describe,
    describe_by,
    expected_calibration_error,
    quartiles,
    resampled_metrics,
)


def test_against_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    probs = np.clip(labels * 0.3 + rng.random(200) * 0.7, 0, 1)
    m = binary_metrics(labels, probs)
    pred = (probs >= 0.5).astype(int)
    assert m["auc"] == pytest.approx(roc_auc_score(labels, probs))
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, pred))
    assert m["sensitivity"] == pytest.approx(recall_score(labels, pred))
    assert m["specificity"] == pytest.approx(recall_score(1 - labels, 1 - pred))
    assert m["f1"] == pytest.approx(f1_score(labels, pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, pred))
    assert m["brier"] == pytest.approx(brier_score_loss(labels, probs))


def test_single_class_gives_undefined_auc_not_a_crash():
    m = binary_metrics(np.array([1, 1, 1]), np.array([0.9, 0.2, 0.7]))
    assert math.isnan(m["auc"]) and math.isnan(m["specificity"])
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_ece_hand_computed():
    labels = np.array([0, 1, 1, 1])
    probs = np.array([0.05, 0.15, 0.95, 0.85])
    # bins: [0.0,0.1): {0.05 -> 0}: |0-0.05|; [0.1,0.2): {0.15 -> 1}: |1-0.15|; [0.8,0.9): |1-0.85|; [0.9,1): |1-0.95|
    expected = (0.05 + 0.85 + 0.15 + 0.05) / 4
    assert expected_calibration_error(labels, probs) == pytest.approx(expected)
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == pytest.approx(0.0)


def test_describe_matches_scipy_t_interval():
    v = np.array([0.81, 0.84, 0.79, 0.88, 0.83])
    ci = describe(v)
    lo, hi = sps.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=sps.sem(v))
    assert (ci.mean, ci.std, ci.n) == (v.mean(), v.std(ddof=1), 5)
    assert (ci.low, ci.high) == pytest.approx((lo, hi), abs=1e-15)
    lo90, hi90 = sps.t.interval(0.9, 4, loc=v.mean(), scale=sps.sem(v))
    assert (describe(v, 0.9).low, describe(v, 0.9).high) == pytest.approx((lo90, hi90))


def test_describe_leaves_out_undefined_values():
    ci = describe([0.7, np.nan, 0.9, np.inf])
    assert ci.n == 2 and ci.mean == pytest.approx(0.8)
    assert ci.std == pytest.approx(np.std([0.7, 0.9], ddof=1))


def test_describe_below_two_values_has_no_spread():
    none = describe([])
    assert none.n == 0 and all(math.isnan(x) for x in (none.mean, none.std, none.low, none.high))
    one = describe([0.8])
    assert one.n == 1 and one.mean == 0.8
    assert math.isnan(one.std) and math.isnan(one.low) and math.isnan(one.high)


def test_describe_by_summarises_each_point_of_the_curves():
    # three units, the third stopped early (no epoch 2) and logged a non-finite value at epoch 1
    frame = pd.DataFrame(
        {
            "run": ["a", "a", "a", "b", "b", "b", "c", "c"],
            "step": [0, 1, 2, 0, 1, 2, 0, 1],
            "value": [1.0, 0.5, 0.2, 3.0, 0.7, 0.4, 2.0, np.inf],
        }
    )
    out = describe_by(frame, ["step"]).set_index("step")
    assert list(out.columns) == ["mean", "std", "q25", "q75", "n"]
    assert (out.loc[0, "q25"], out.loc[0, "q75"]) == pytest.approx((1.5, 2.5))  # of 1, 2, 3
    assert list(out["n"]) == [3, 2, 2]
    assert out.loc[0, "mean"] == pytest.approx(2.0) and out.loc[0, "std"] == pytest.approx(1.0)
    assert out.loc[1, "mean"] == pytest.approx(0.6)
    assert out.loc[1, "std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    single = describe_by(frame[frame["run"] == "a"], ["step"])
    assert single["std"].isna().all() and list(single["mean"]) == [1.0, 0.5, 0.2]


def test_quartiles_are_numpys_over_the_finite_values():
    q = quartiles([3.0, 1.0, np.nan, 2.0, 10.0])
    assert (q.q25, q.median, q.q75, q.n) == pytest.approx(
        (*np.quantile([1.0, 2.0, 3.0, 10.0], [0.25, 0.5, 0.75]), 4)
    )
    assert math.isnan(quartiles([]).median) and quartiles([]).n == 0


def test_resampled_metrics_equal_binary_metrics_on_the_repeated_sample():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 40)
    probs = np.round(np.clip(0.3 * labels + 0.7 * rng.random(40), 0, 1), 1)  # many ties
    counts = rng.multinomial(40, np.full(40, 1 / 40), size=25)
    counts[0] = 1  # the sample itself
    got = resampled_metrics(labels, probs, counts, threshold=0.4)
    for r, w in enumerate(counts):
        want = binary_metrics(np.repeat(labels, w), np.repeat(probs, w), threshold=0.4)
        for name in METRIC_NAMES:
            assert got[name][r] == pytest.approx(want[name], abs=1e-12, nan_ok=True), name
    # tied scores count one half, as in scikit-learn's weighted AUC
    assert got["auc"][3] == pytest.approx(roc_auc_score(labels, probs, sample_weight=counts[3]))


def test_resampled_metrics_undefined_where_binary_metrics_are():
    got = resampled_metrics([1, 1, 0], [0.9, 0.2, 0.4], [[1, 1, 0], [0, 0, 3]])
    assert math.isnan(got["auc"][0]) and math.isnan(got["specificity"][0])
    assert got["sensitivity"][0] == 0.5 and got["balanced_accuracy"][0] == 0.5
    assert math.isnan(got["sensitivity"][1]) and got["balanced_accuracy"][1] == 1.0
    empty = resampled_metrics([], [], np.zeros((2, 0)))
    assert all(np.isnan(v).all() and len(v) == 2 for v in empty.values())
