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
    ONE_FOLD,
    PREDICTS_ONE_CLASS,
    SAME_ON_EVERY_FOLD,
    binary_metrics,
    concordance_counts,
    describe,
    describe_by,
    expected_calibration_error,
    fold_interval,
    predicts_one_class,
    quartiles,
    resampled_metrics,
    target_summary,
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


# -- AUC counts, headline intervals, time to target ---------------------------------------------


def test_concordance_counts_are_the_mann_whitney_numerator_and_pairs():
    pos = np.array([True, True, False, False, False])
    p = np.array([0.9, 0.4, 0.4, 0.1, 0.95])
    w = np.array([[1, 1, 1, 1, 1], [2, 0, 1, 1, 0]])
    wins, pairs = concordance_counts(pos, p, w)
    # row 1: 0.9 beats 0.4 and 0.1; 0.4 ties 0.4 and beats 0.1: 2 + 1.5 of 6 pairs
    # row 2: 0.9 drawn twice, against 0.4 and 0.1: 4 of 4 pairs
    assert wins == pytest.approx([3.5, 4.0]) and pairs == pytest.approx([6, 4])
    assert wins[0] / pairs[0] == pytest.approx(roc_auc_score(pos, p))


def test_fold_interval_is_describes_t_interval_clipped_only_when_bounded():
    values = [0.92, 0.97, 0.995, 0.95, 0.99]
    ci = describe(values)
    plain = fold_interval(values)
    assert (plain.mean, plain.std, plain.low, plain.high, plain.n) == (
        ci.mean, ci.std, ci.low, ci.high, ci.n,
    )  # fmt: skip
    assert plain.degenerate == "" and ci.high > 1
    bounded = fold_interval(values, bounds=(0.0, 1.0))
    assert bounded.high == 1.0 and bounded.low == ci.low
    # Nadeau-Bengio's corrected interval is wider by sqrt(1 + n·ratio)
    wide = fold_interval(values, ratio=0.25)
    assert wide.high - wide.mean == pytest.approx((ci.high - ci.mean) * math.sqrt(1 + 5 * 0.25))
    # differences are unbounded: nothing is clipped
    assert fold_interval([-0.9, 0.9, 0.1]).low == describe([-0.9, 0.9, 0.1]).low


def test_degenerate_intervals_are_flagged_never_x_x():
    same = fold_interval([0.594] * 5)
    assert same.degenerate == SAME_ON_EVERY_FOLD and math.isnan(same.low) and same.mean == 0.594
    one_class = fold_interval([0.6, 0.55, 0.62], one_class=True)
    assert one_class.degenerate == PREDICTS_ONE_CLASS and math.isnan(one_class.high)
    one = fold_interval([0.8, np.nan])
    assert one.degenerate == ONE_FOLD and one.n == 1 and math.isnan(one.low)
    assert fold_interval([]).n == 0 and math.isnan(fold_interval([]).mean)
    assert predicts_one_class([0.1, 0.3, 0.49]) and predicts_one_class([0.5, 0.9])
    assert not predicts_one_class([0.2, 0.7]) and not predicts_one_class([])


@pytest.mark.parametrize(("rho", "ratio"), [(0.0, 0.0), (0.2, 0.25)])
def test_headline_interval_covers_the_expected_performance(rho, ratio):
    """Generating model: 2000 cross-validations of k = 5 folds whose AUCs are 0.85 plus normal
    noise (sd 0.03), equicorrelated with rho over the folds (0: independent test sets and
    training sets; 1/5: the overlap Nadeau & Bengio's n_test/n_train = 1/4 assumes). The truth
    is 0.85. describe's plain t interval covers it when folds are independent; with overlapping
    training sets only the corrected one does, and the plain one falls to about 86%."""
    rng = np.random.default_rng(31)
    shared = rng.standard_normal((2000, 1))
    values = 0.85 + 0.03 * (
        np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal((2000, 5))
    )
    covered = np.mean(
        [
            fold_interval(v, ratio=ratio).low <= 0.85 <= fold_interval(v, ratio=ratio).high
            for v in values
        ]
    )
    assert 0.93 <= covered <= 0.97
    if rho:
        plain = np.mean([describe(v).low <= 0.85 <= describe(v).high for v in values])
        assert 0.83 <= plain <= 0.89


def test_time_to_target_counts_a_miss_as_never():
    # reached in 1 of 5 runs: the median is never, whatever the one run took
    once = target_summary([10.0, np.nan, np.nan, np.nan, np.nan])
    assert (once.n_runs, once.n_reached, once.share_reached) == (5, 1, 0.2)
    assert math.isinf(once.median) and once.median_of_reached == 10.0
    always = target_summary([20.0, 25.0, 23.0, 21.0, 30.0])
    assert always.median == 23.0 and always.share_reached == 1.0
    # more than half reached: the median is a time; exactly half (even n): never
    assert target_summary([5.0, 7.0, 9.0, np.inf, np.nan]).median == 9.0
    assert math.isinf(target_summary([5.0, 7.0, np.nan, np.nan]).median)
    assert target_summary([5.0, 7.0, 8.0, np.nan]).median == 7.5
    none = target_summary([np.nan, np.nan])
    assert math.isinf(none.median) and math.isnan(none.median_of_reached)
    assert none.share_reached == 0.0 and math.isnan(target_summary([]).median)
