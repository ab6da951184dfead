import math

import numpy as np
import pytest
from scipy import stats as sps

from medbench.report.power import (
    comparison_power,
    max_p_equivalent,
    mdd_by_repeats,
    minimum_detectable_difference,
    noncentrality,
    repeated_mdd,
    repeats_needed,
)
from medbench.report.stats import bayesian_correlated_ttest, corrected_resampled_ttest
from tests.report.simulated import equicorrelated

Z = sps.norm.isf(0.025) + sps.norm.ppf(0.8)  # normal approximation of the noncentrality


@pytest.mark.parametrize("df", [500, 5000, math.inf])
def test_mdd_is_the_normal_approximation_for_large_df(df):
    assert minimum_detectable_difference(0.01, df) == pytest.approx(0.01 * Z, rel=0.01)


def test_mdd_grows_with_few_folds_and_is_the_exact_noncentral_t_root():
    # 5 folds: the t critical value and the noncentral t's heavier tails cost 34% over z
    nc = noncentrality(4)
    assert nc / Z == pytest.approx(1.3425, abs=1e-3)
    crit = sps.t.isf(0.025, 4)
    assert sps.nct.sf(crit, 4, nc) + sps.nct.cdf(-crit, 4, nc) == pytest.approx(0.8, abs=1e-10)
    assert minimum_detectable_difference(0.02, 4) == pytest.approx(0.02 * nc)
    assert noncentrality(4, power=0.9) > nc > noncentrality(14) > noncentrality(math.inf)
    assert noncentrality(4, alpha=0.01) > nc
    assert math.isnan(minimum_detectable_difference(math.nan, 4))
    assert math.isnan(minimum_detectable_difference(0.01, 0))


def test_two_folds_give_a_finite_noncentrality():
    """One degree of freedom (one repeat of 2 folds): SciPy's noncentral t returns NaN for the
    far tail near the root; that tail is negligible and must not stop the search."""
    nc = noncentrality(1)
    crit = sps.t.isf(0.025, 1)
    assert math.isfinite(nc) and sps.nct.sf(crit, 1, nc) == pytest.approx(0.8, abs=1e-9)
    assert math.isfinite(repeated_mdd(0.01, 2, 1.0, 1)) and repeated_mdd(0.01, 2, 1.0, 1) > 0


def test_the_corrected_test_at_the_mdd_rejects_80_percent_of_the_time():
    """Generating model: 2000 cross-validations of k = 5 folds; per-fold differences normal with
    mean delta and sd 0.02, equicorrelated with rho = 1/5 (training sets overlap); the corrected
    test uses n_test/n_train = 1/4, so that its scale is exact in expectation. delta is the MDD
    of the true corrected standard error."""
    k, rho, sd = 5, 1 / 5, 0.02
    true_scale = math.sqrt(sd**2 * ((1 - rho) / k + rho))
    delta = minimum_detectable_difference(true_scale, k - 1)
    d = delta + equicorrelated(np.random.default_rng(11), (2000, k), rho, sd)
    p = np.array([corrected_resampled_ttest(row, 1 / (k - 1)).p for row in d])
    assert 0.77 <= (p < 0.05).mean() <= 0.83


def test_max_p_equivalent_is_the_centred_posterior():
    # the demo's limit: 5 folds whose spread gives a posterior scale of 0.01 cannot pass 0.63
    reach = max_p_equivalent(0.01, 4, 0.01)
    assert reach.max_p_equivalent == pytest.approx(2 * sps.t.cdf(1.0, 4) - 1)
    assert reach.max_p_equivalent == pytest.approx(0.6261, abs=1e-4) and not reach.reachable
    # it is the Bayesian test's P(equivalent) for differences of mean 0, and any shift lowers it
    diff = np.array([-0.02, -0.01, 0.0, 0.01, 0.02])
    ratio = 1 / 4
    scale = corrected_resampled_ttest(diff, ratio).scale
    top = max_p_equivalent(scale, 4, 0.01).max_p_equivalent
    assert bayesian_correlated_ttest(diff, ratio, 0.01).p_equivalent == pytest.approx(top)
    for shift in (0.001, -0.004, 0.01):
        assert bayesian_correlated_ttest(diff + shift, ratio, 0.01).p_equivalent < top
    assert max_p_equivalent(0.002, 9, 0.01).reachable
    assert max_p_equivalent(0.0, 4, 0.01).max_p_equivalent == 1.0
    assert math.isnan(max_p_equivalent(math.nan, 4, 0.01).max_p_equivalent)


def test_comparison_power_of_fold_differences():
    diff = np.array([0.012, -0.004, 0.021, 0.008, 0.015])
    ratio = 120 / 384
    res = comparison_power(diff, ratio, rope=0.01)
    scale = math.sqrt((1 / 5 + ratio) * diff.var(ddof=1))
    assert (res.n_folds, res.df, res.scale) == (5, 4, pytest.approx(scale))
    assert res.mdd == pytest.approx(scale * noncentrality(4))
    assert res.equivalence.max_p_equivalent == pytest.approx(2 * sps.t.cdf(0.01 / scale, 4) - 1)
    # no spread, no test: nothing is detectable, and rounding does not make it so
    same = comparison_power(np.array([0.87, 0.85, 0.9]) - np.array([0.85, 0.83, 0.88]), ratio, 0.01)
    assert math.isnan(same.mdd)
    assert math.isnan(comparison_power([0.01], ratio, 0.01).mdd)


def test_repeats_lower_the_mdd_towards_a_floor():
    var_d, k, ratio = 0.02**2, 5, 1 / 4
    table = mdd_by_repeats(var_d, k, ratio)
    assert list(table["repeats"][:-1]) == [1, 2, 3, 5, 10, 20] and math.isinf(
        table["repeats"].iat[-1]
    )
    assert (np.diff(table["mdd"]) < 0).all()
    # r = 1 is the pilot's own test; the floor is the z-test on the ratio term alone
    pilot = comparison_power([0.0, 0.02, 0.04, 0.01, 0.03], ratio, 0.01)
    assert repeated_mdd(pilot.scale**2 / (1 / 5 + ratio), k, ratio, 1) == pytest.approx(pilot.mdd)
    assert table["mdd"].iat[-1] == pytest.approx(Z * math.sqrt(ratio * var_d), rel=1e-5)
    assert table["n_folds"].iat[2] == 15 and table["df"].iat[2] == 14


def test_repeats_needed_is_the_smallest_sufficient_r():
    var_d, k, ratio = 0.02**2, 5, 1 / 4
    plan = repeats_needed(var_d, k, ratio, 0.03)
    r = plan.repeats
    assert r == 9 and plan.mdd <= 0.03 < repeated_mdd(var_d, k, ratio, r - 1)
    assert plan.floor == pytest.approx(Z * 0.01, rel=1e-5) and "9 × 5-fold" in plan.note
    # below the floor no number of repeats helps, and the note says why
    never = repeats_needed(var_d, k, ratio, 0.02)
    assert never.repeats is None and "cannot fall below 0.028" in never.note
    assert "more data sets" in never.note
    # just above the floor: more repeats than the search allows
    far = repeats_needed(var_d, k, ratio, 0.0281, max_repeats=50)
    assert far.repeats is None and "more than 50 repeats" in far.note
    assert repeats_needed(var_d, k, ratio, 1.0).repeats == 1


def test_two_folds_have_a_minimum_detectable_difference():
    # one degree of freedom: scipy's noncentral t gives NaN for a far tail on the way
    nc = noncentrality(1)
    crit = sps.t.isf(0.025, 1)
    assert math.isfinite(nc) and sps.nct.sf(crit, 1, nc) == pytest.approx(0.8, abs=1e-6)
