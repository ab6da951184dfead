import math

import numpy as np
import pytest
from scipy import stats as sps

from medbench.metrics import describe
from medbench.report.stats import (
    bayesian_correlated_ttest,
    caveat,
    corrected_resampled_ttest,
    holm,
    paired_test,
    percentile_interval,
    stratified_counts,
    wilcoxon_min_p,
    wilson_interval,
)

# differences of 5 folds, and a ratio n_test / n_train of a 5-fold CV with a 20% validation split
DIFF = np.array([0.012, -0.004, 0.021, 0.008, 0.015])
RATIO = 120 / 384


def test_stratified_counts_keep_every_stratum_size_and_are_reproducible():
    strata = np.array(["1|0", "1|1", "2|0", "1|0", "2|0", "2|1", "1|1", "2|0"])
    counts = stratified_counts(strata, 500, seed=3)
    assert counts.shape == (500, 8) and counts.dtype == np.int32
    for key in set(strata):
        assert (counts[:, strata == key].sum(axis=1) == (strata == key).sum()).all()
    assert np.array_equal(counts, stratified_counts(strata, 500, seed=3))
    assert not np.array_equal(counts, stratified_counts(strata, 500, seed=4))
    # strata are drawn in sorted order, wherever their items stand
    first = stratified_counts(np.array(["b", "b", "a", "a", "a"]), 50, seed=1)
    second = stratified_counts(np.array(["a", "a", "a", "b", "b"]), 50, seed=1)
    assert np.array_equal(first[:, [2, 3, 4, 0, 1]], second)
    # each item is drawn once per resample on average, as with drawing with replacement
    assert counts.mean() == pytest.approx(1.0, abs=0.05)


def test_percentile_interval_is_numpys_and_skips_undefined_resamples():
    v = np.random.default_rng(0).normal(size=400)
    assert percentile_interval(v) == pytest.approx(tuple(np.percentile(v, [2.5, 97.5])))
    assert percentile_interval(np.r_[v, np.nan]) == percentile_interval(v)
    assert all(math.isnan(x) for x in percentile_interval([np.nan]))


@pytest.mark.parametrize(("k", "n"), [(0, 20), (3, 20), (19, 20), (20, 20), (57, 60)])
def test_wilson_interval_matches_scipy_and_stays_in_0_1(k, n):
    ci = sps.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert 0 <= wilson_interval(k, n)[0] <= wilson_interval(k, n)[1] <= 1
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


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


def test_corrected_ttest_is_nadeau_bengio_by_hand():
    res = corrected_resampled_ttest(DIFF, RATIO)
    k = len(DIFF)
    scale = math.sqrt((1 / k + RATIO) * DIFF.var(ddof=1))
    t = DIFF.mean() / scale
    assert res.n_folds == 5 and res.df == 4 and res.scale == pytest.approx(scale)
    assert res.t_statistic == pytest.approx(t)
    assert res.p == pytest.approx(2 * sps.t.sf(abs(t), 4))
    low, high = sps.t.interval(0.95, 4, loc=DIFF.mean(), scale=scale)
    assert (res.ci_low, res.ci_high) == pytest.approx((low, high))
    # wider than the paired t-test, which it becomes with ratio 0
    plain = sps.ttest_rel(DIFF, np.zeros(5))
    zero = corrected_resampled_ttest(DIFF, 0.0)
    assert (zero.t_statistic, zero.p) == pytest.approx((plain.statistic, plain.pvalue))
    assert res.p > zero.p and res.ci_high - res.ci_low > zero.ci_high - zero.ci_low


def test_corrected_ttest_degenerate_cases():
    one = corrected_resampled_ttest([0.01], RATIO)
    assert one.n_folds == 1 and math.isnan(one.p) and math.isnan(one.ci_low)
    same = corrected_resampled_ttest([0.02, 0.02, 0.02], RATIO)
    assert math.isnan(same.p) and (same.ci_low, same.ci_high) == (0.02, 0.02)
    assert corrected_resampled_ttest([0.01, np.nan, 0.03, 0.02], RATIO).n_folds == 3


def test_bayesian_correlated_ttest_matches_baycomp():
    baycomp = pytest.importorskip("baycomp")
    rng = np.random.default_rng(2)
    a = 0.85 + 0.02 * rng.standard_normal(5)
    b = a + DIFF
    # baycomp fixes n_test / n_train at 1 / (k - 1), the plain k-fold ratio
    for rope in (0.0, 0.005, 0.01, 0.05):
        ours = bayesian_correlated_ttest(b - a, 1 / 4, rope)
        theirs = baycomp.CorrelatedTTest.probs(a, b, rope=rope)
        if rope == 0:
            assert (ours.p_a_better, ours.p_b_better) == pytest.approx(theirs, abs=1e-12)
            assert ours.p_equivalent == pytest.approx(0.0, abs=1e-12)
        else:
            got = (ours.p_a_better, ours.p_equivalent, ours.p_b_better)
            assert got == pytest.approx(theirs, abs=1e-12)
    # any other ratio: baycomp's posterior with the corrected variance
    var = (1 / 5 + RATIO) * DIFF.var(ddof=1)
    theirs = baycomp.single.Posterior(DIFF.mean(), var, 4, rope=0.01).probs()
    ours = bayesian_correlated_ttest(DIFF, RATIO, 0.01)
    assert (ours.p_a_better, ours.p_equivalent, ours.p_b_better) == pytest.approx(theirs)


def test_bayesian_correlated_ttest_is_the_student_posterior_of_scipy():
    res = bayesian_correlated_ttest(DIFF, RATIO, 0.01)
    scale = math.sqrt((1 / 5 + RATIO) * DIFF.var(ddof=1))
    posterior = sps.t(4, loc=DIFF.mean(), scale=scale)
    assert res.p_a_better == pytest.approx(posterior.cdf(-0.01))
    assert res.p_b_better == pytest.approx(1 - posterior.cdf(0.01))
    assert res.p_equivalent == pytest.approx(posterior.cdf(0.01) - posterior.cdf(-0.01))
    assert res.p_a_better + res.p_equivalent + res.p_b_better == pytest.approx(1.0)
    # equal differences: all the mass at their value
    point = bayesian_correlated_ttest([0.02] * 4, RATIO, 0.01)
    assert (point.p_a_better, point.p_equivalent, point.p_b_better) == (0.0, 0.0, 1.0)
    inside = bayesian_correlated_ttest([0.005] * 4, RATIO, 0.01)
    assert inside.p_equivalent == 1.0
    assert math.isnan(bayesian_correlated_ttest([0.01], RATIO, 0.01).p_b_better)


def test_holm_by_hand_and_undefined_p_values_left_out_of_the_family():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm([0.2, np.nan, 0.01])
    assert out[0] == pytest.approx(0.2) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]).shape == (0,)


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
