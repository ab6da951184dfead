import math

import numpy as np
import pytest
from scipy import stats as sps

from medbench.metrics import describe
from medbench.report.stats import (
    bayesian_correlated_ttest,
    caveat,
    corrected_resampled_ttest,
    generalized_test,
    holm,
    paired_status,
    paired_test,
    percentile_interval,
    stratified_counts,
    wilcoxon_min_p,
    wilson_interval,
)
from tests.report.simulated import equicorrelated

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


# -- repeated cross-validation ------------------------------------------------------------------


@pytest.mark.parametrize("runs", [1, 3, 10])
def test_repeated_cv_is_baycomps_correlated_ttest_with_runs(runs):
    """The r·k per-(repeat, fold) differences with n_test/n_train = 1/(k − 1) give the corrected
    repeated k-fold test: variance (1/(r·k) + 1/(k − 1))·var(d), df r·k − 1, as baycomp."""
    baycomp = pytest.importorskip("baycomp")
    k = 5
    rng = np.random.default_rng(runs)
    for case in range(3):
        a = 0.85 + 0.02 * rng.standard_normal(runs * k)
        b = a + 0.004 * case + 0.015 * rng.standard_normal(runs * k)
        d = b - a
        mean, var, df = baycomp.CorrelatedTTest.compute_statistics(a, b, runs=runs)
        test = corrected_resampled_ttest(d, 1 / (k - 1))
        assert test.df == df == runs * k - 1
        assert test.scale**2 == pytest.approx(var, rel=1e-12)
        assert test.scale**2 == pytest.approx((1 / (runs * k) + 1 / (k - 1)) * d.var(ddof=1))
        for rope in (0.0, 0.01):
            ours = bayesian_correlated_ttest(d, 1 / (k - 1), rope)
            theirs = baycomp.CorrelatedTTest.probs(a, b, rope=rope, runs=runs)
            if rope:
                got = (ours.p_a_better, ours.p_equivalent, ours.p_b_better)
            else:
                got = (ours.p_a_better, ours.p_b_better)
            assert got == pytest.approx(theirs, abs=1e-9)


def test_corrected_repeated_cv_test_covers_and_keeps_its_level():
    """Generating model: 400 experiments of r = 3 repeats × k = 5 folds; the 15 per-(repeat,
    fold) differences are normal with mean delta (0 or 0.01) and sd 0.02, equicorrelated with
    rho = 1/k (the correlation Nadeau & Bengio's and Bouckaert & Frank's correction assumes,
    ratio = rho / (1 − rho) = 1/(k − 1)); the truth is delta."""
    r, k, n = 3, 5, 400
    rng = np.random.default_rng(23)
    for delta in (0.0, 0.01):
        d = delta + equicorrelated(rng, (n, r * k), 1 / k, 0.02)
        tests = [corrected_resampled_ttest(row, 1 / (k - 1)) for row in d]
        covered = np.mean([t.ci_low <= delta <= t.ci_high for t in tests])
        assert 0.92 <= covered <= 0.98
        if delta == 0:
            assert np.mean([t.p < 0.05 for t in tests]) <= 0.07
    # the uncorrected t-test (ratio 0) on the same data does not keep its level
    d = equicorrelated(rng, (n, r * k), 1 / k, 0.02)
    assert np.mean([corrected_resampled_ttest(row, 0.0).p < 0.05 for row in d]) > 0.2


# -- zero variance and the family of Holm -------------------------------------------------------


def test_paired_status_tells_no_spread_from_a_test():
    assert paired_status([]).kind == "none" and "nothing to compare" in paired_status([]).text
    assert paired_status([0.01, np.nan]).kind == "one"
    same = paired_status([0.0, 0.0, 0.0, 0.0])
    assert same.kind == "identical" and same.text.startswith("Identical on every one of the 4")
    # the same amount on every fold, up to rounding: no test (the corrected t-test would see a
    # spread of 1e-17 and call it significant)
    b = np.array([0.7, 0.3, 0.9, 0.1])
    d = b - (b - 0.1)
    assert d.var() > 0 and corrected_resampled_ttest(d, RATIO).p < 1e-6
    constant = paired_status(d)
    assert constant.kind == "constant" and not constant.testable
    assert constant.text == (
        "B − A is +0.1 on every one of the 4 paired folds: the differences have no spread, "
        "so no test is possible."
    )
    assert paired_status(DIFF).testable and paired_status(DIFF).text == ""


def test_holm_family_is_the_comparisons_actually_tested():
    # three comparisons, one of them identical on every fold (no test: NaN p): a family of two
    diffs = [DIFF, np.zeros(5), DIFF / 2]
    p = np.array([corrected_resampled_ttest(d, RATIO).p for d in diffs])
    assert math.isnan(p[1]) and [paired_status(d).testable for d in diffs] == [True, False, True]
    adjusted = holm(p)
    assert math.isnan(adjusted[1])
    assert adjusted[[0, 2]] == pytest.approx(holm(p[[0, 2]]))
    assert adjusted[0] == pytest.approx(2 * p[0])  # the smaller p, times a family of 2


# -- generalized test of a two-level variance ---------------------------------------------------


def test_generalized_test_is_the_t_test_without_a_known_part():
    g = generalized_test(0.02, 1e-4, 4)
    assert g.se == pytest.approx(0.01) and g.df == 4
    assert g.p == pytest.approx(2 * sps.t.sf(2.0, 4), abs=1e-5)
    half = sps.t.ppf(0.975, 4) * 0.01
    assert (g.ci_low, g.ci_high) == pytest.approx((0.02 - half, 0.02 + half), abs=1e-5)
    # the corrected t-test is the scaled case
    nb = corrected_resampled_ttest(DIFF, RATIO)
    g = generalized_test(DIFF.mean(), DIFF.var(ddof=1), 4, 1 / 5 + RATIO)
    assert (g.p, g.ci_low, g.ci_high) == pytest.approx((nb.p, nb.ci_low, nb.ci_high), abs=1e-5)


def test_generalized_test_lies_between_the_t_and_z_tests():
    # spread 1e-4 (4 df) plus a known 1e-4: wider than z on 2e-4, narrower than t_4 on it
    g = generalized_test(0.02, 1e-4, 4, offset=1e-4)
    se = math.sqrt(2e-4)
    assert g.se == pytest.approx(se)
    assert 2 * sps.norm.sf(0.02 / se) < g.p < 2 * sps.t.sf(0.02 / se, 4)
    # a known part that dominates: the z-test
    z = generalized_test(0.02, 1e-9, 4, offset=1e-4)
    assert z.p == pytest.approx(2 * sps.norm.sf(2.0), abs=1e-4)
    # a subtracted known part with its floor: the variance never falls below the known part
    sub = generalized_test(0.02, 0.5e-4, 4, scale=2.25, floor=1e-4, offset=-1.25e-4)
    assert sub.se == pytest.approx(0.01) and sub.p > 2 * sps.norm.sf(2.0)
    # nothing varies: no test
    none = generalized_test(0.0, 0.0, 4)
    assert none.se == 0.0 and math.isnan(none.p) and math.isnan(none.ci_low)
    assert math.isnan(generalized_test(0.01, math.nan, 4).p)
