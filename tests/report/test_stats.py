import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from medbench.metrics import describe
from medbench.report.stats import (
    bootstrap_auc,
    caveat,
    paired_test,
    wilcoxon_min_p,
)


def test_bootstrap_matches_a_sklearn_loop_and_is_deterministic():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    p = np.round(np.clip(0.3 * y + rng.random(60) * 0.7, 0, 1), 2)  # rounded: ties
    ci = bootstrap_auc(y, p, n_resamples=300, seed=5)
    assert ci.estimate == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    idx = np.random.default_rng(5).integers(0, 60, (300, 60))
    aucs = [roc_auc_score(y[i], p[i]) for i in idx if len(np.unique(y[i])) == 2]
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    assert (ci.low, ci.high) == pytest.approx((lo, hi), abs=1e-12)
    assert ci.n_valid == len(aucs) and ci.n_resamples == 300
    assert bootstrap_auc(y, p, n_resamples=300, seed=5) == ci
    assert bootstrap_auc(y, p, n_resamples=300, seed=6) != ci


def test_bootstrap_skips_single_class_resamples():
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    p = np.linspace(0, 1, 8)
    ci = bootstrap_auc(y, p, n_resamples=200, seed=0)
    assert 0 < ci.n_valid < 200 and math.isfinite(ci.low)
    assert math.isnan(bootstrap_auc([1, 1], [0.2, 0.3]).estimate)


def test_paired_test_matches_scipy():
    a = np.array([0.80, 0.82, 0.78, 0.85, 0.81, 0.79, 0.83])
    b = np.array([0.83, 0.84, 0.77, 0.88, 0.86, 0.82, 0.85])
    res = paired_test(a, b)
    t = sps.ttest_rel(b, a)
    w = sps.wilcoxon(b - a)
    assert (res.t_statistic, res.t_p) == pytest.approx((t.statistic, t.pvalue))
    assert (res.wilcoxon_statistic, res.wilcoxon_p) == pytest.approx((w.statistic, w.pvalue))
    ci = describe(b - a)
    assert (res.mean_diff, res.ci_low, res.ci_high) == pytest.approx((ci.mean, ci.low, ci.high))
    assert res.n_pairs == 7 and res.wilcoxon_min_p == pytest.approx(2**-6)


def test_paired_test_drops_pairs_with_a_missing_value():
    res = paired_test([0.8, np.nan, 0.7, 0.9], [0.85, 0.9, np.nan, 0.97])
    assert res.n_pairs == 2


def test_wilcoxon_floor_is_the_exact_minimum():
    for n in range(1, 9):
        w = sps.wilcoxon(np.arange(1, n + 1, dtype=float), method="exact")
        assert wilcoxon_min_p(n) == pytest.approx(w.pvalue)
    assert wilcoxon_min_p(5) == 0.0625


def test_caveats_in_plain_language():
    assert "nothing to compare" in caveat(0, 0)
    assert "no test is possible" in caveat(1, 1)
    assert "same on every paired fold" in caveat(5, 0)
    five = caveat(5, 5)
    assert "cannot go below p = 0.0625" in five and "little power" in five
    six = caveat(6, 6)
    assert "cannot go below" not in six and "little power" in six
    assert caveat(12, 12) == ""
    # zeros are dropped by the Wilcoxon test: 6 pairs with one tie behave like 5
    assert "0.0625" in caveat(6, 5)
    res = paired_test([0.8] * 5, [0.8] * 5)
    assert math.isnan(res.t_p) and math.isnan(res.wilcoxon_p) and "same" in res.caveat
