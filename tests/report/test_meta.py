import math

import numpy as np
import pytest
from scipy import stats as sps

from medbench.report import meta
from medbench.report.meta import (
    HIERARCHICAL,
    SIGNED_RANK,
    bayesian_across_datasets,
    random_effects,
    signed_rank_limits,
)

# three data sets: mean differences and their standard errors
Y = np.array([0.03, 0.0, -0.01])
SE = np.array([0.01, 0.02, 0.01])

# BCG vaccine trials (Colditz et al. 1994; metafor's dat.bcg): tpos, tneg, cpos, cneg
BCG = np.array(
    [
        [4, 119, 11, 128],
        [6, 300, 29, 274],
        [3, 228, 11, 209],
        [62, 13536, 248, 12619],
        [33, 5036, 47, 5761],
        [180, 1361, 372, 1079],
        [8, 2537, 10, 619],
        [505, 87886, 499, 87892],
        [29, 7470, 45, 7232],
        [17, 1699, 65, 1600],
        [186, 50448, 141, 27197],
        [5, 2493, 3, 2338],
        [27, 16886, 29, 17825],
    ],
    dtype=float,
)


def _bcg():
    """Log risk ratios and their variances, as metafor's escalc(measure="RR")."""
    tpos, tneg, cpos, cneg = BCG.T
    y = np.log(tpos / (tpos + tneg)) - np.log(cpos / (cpos + cneg))
    v = 1 / tpos - 1 / (tpos + tneg) + 1 / cpos - 1 / (cpos + cneg)
    return y, np.sqrt(v)


def test_dersimonian_laird_by_hand():
    res = random_effects(Y, SE, method="DL", names=["a", "b", "c"])
    # w = 1/se² = 10000, 2500, 10000 (sum 22500); sum w·y = 300 + 0 − 100 = 200
    # Q = sum w·y² − (sum w·y)² / sum w = 9 + 0 + 1 − 200²/22500 = 74/9
    assert res.q == pytest.approx(74 / 9) and res.q_df == 2
    # chi-squared with 2 df: p = exp(−Q/2)
    assert res.q_p == pytest.approx(math.exp(-37 / 9))
    # C = sum w − sum w² / sum w = 22500 − 206.25e6 / 22500 = 40000/3
    # tau² = (Q − 2) / C = (56/9) / (40000/3) = 7/15000
    assert res.tau2 == pytest.approx(7 / 15000)
    # w* = 1/(v + tau²) = 30000/17, 30000/26, 30000/17; sum = 30000 · 69/442
    assert res.weights == pytest.approx(np.array([26, 17, 26]) / 69)
    # mu = (30000/17 · 0.02) / (30000 · 69/442) = 0.02 · 26/69
    assert res.estimate == pytest.approx(0.02 * 26 / 69)
    se = math.sqrt(442 / (30000 * 69))
    assert res.se == pytest.approx(se)
    z = sps.norm.ppf(0.975)
    assert (res.ci_low, res.ci_high) == pytest.approx(
        (0.02 * 26 / 69 - z * se, 0.02 * 26 / 69 + z * se)
    )
    assert (res.ci_low, res.ci_high) == pytest.approx((-0.021104, 0.036177), abs=1e-6)
    # I² = (Q − df) / Q = 56/74
    assert res.i2 == pytest.approx(28 / 37)
    assert res.names == ("a", "b", "c") and res.n_datasets == 3 and res.method == "DL"


def _restricted_loglik(t, y, v):
    """REML log-likelihood of each tau² in ``t``, written out here (up to a constant)."""
    w = 1 / (v[None, :] + t[:, None])
    mu = (w * y).sum(axis=1) / w.sum(axis=1)
    resid = (w * (y - mu[:, None]) ** 2).sum(axis=1)
    return -0.5 * (np.log(v[None, :] + t[:, None]).sum(axis=1) + np.log(w.sum(axis=1)) + resid)


def _reml_by_grid(y, v):
    """tau² maximising the restricted log-likelihood on a grid, then on a finer one around the
    best point: no scoring, no optimiser."""
    grid = np.linspace(0, 10 * (y.var() + v.max()), 200001)
    best = grid[np.argmax(_restricted_loglik(grid, y, v))]
    step = grid[1] - grid[0]
    fine = np.linspace(max(0.0, best - step), best + step, 200001)
    return fine[np.argmax(_restricted_loglik(fine, y, v))]


@pytest.mark.parametrize("case", ["three", "bcg", "two"])
def test_reml_is_the_maximum_of_the_restricted_likelihood(case):
    y, se = {"three": (Y, SE), "bcg": _bcg(), "two": (Y[:2], SE[:2])}[case]
    res = random_effects(y, se)
    expected = _reml_by_grid(y, se**2)
    # the likelihood is flat at its top: the grid finds it to ~1e-7, and it is no higher there
    assert res.method == "REML" and res.tau2 == pytest.approx(expected, rel=1e-6)
    at = _restricted_loglik(np.array([res.tau2, expected]), y, se**2)
    assert at[0] >= at[1] - 1e-12
    w = 1 / (se**2 + res.tau2)
    assert res.estimate == pytest.approx((w * y).sum() / w.sum())
    assert res.se == pytest.approx(1 / math.sqrt(w.sum()))
    if case == "two":  # two data sets: REML has the closed form ((y1 − y2)² − v1 − v2) / 2
        assert res.tau2 == pytest.approx((0.03**2 - 1e-4 - 4e-4) / 2)


def test_bcg_example_matches_metafor():
    """Viechtbauer (2010, J Stat Softw 36(3)), rma(yi, vi, data = dat.bcg): REML estimate −0.7145
    (se 0.1798, 95% CI −1.0669 to −0.3622), tau² 0.3132, I² 92.22%, Q(12) = 152.2330; DL:
    −0.7141 (se 0.1787), tau² 0.3088, I² 92.12%; test = "knha": se 0.1808, CI −1.1084 to −0.3206."""
    y, se = _bcg()
    reml = random_effects(y, se)
    got = (reml.estimate, reml.se, reml.ci_low, reml.ci_high, reml.tau2, reml.i2)
    assert got == pytest.approx((-0.7145, 0.1798, -1.0669, -0.3622, 0.3132, 0.9222), abs=6e-5)
    assert reml.q == pytest.approx(152.2330, abs=1e-4) and reml.q_df == 12
    dl = random_effects(y, se, method="DL")
    got = (dl.estimate, dl.se, dl.tau2, dl.i2)
    assert got == pytest.approx((-0.7141, 0.1787, 0.3088, 0.9212), abs=6e-5)
    hk = random_effects(y, se, knapp_hartung=True)
    assert (hk.se, hk.ci_low, hk.ci_high) == pytest.approx((0.1808, -1.1084, -0.3206), abs=6e-5)
    assert hk.ci_method == "Knapp-Hartung t" and hk.estimate == reml.estimate


def test_knapp_hartung_by_hand():
    res = random_effects(Y, SE, method="DL", knapp_hartung=True)
    w = np.array([26, 17, 26]) * 30000 / 442  # the DL weights above
    mu = 0.02 * 26 / 69
    se = math.sqrt((w * (Y - mu) ** 2).sum() / (2 * w.sum()))
    assert res.se == pytest.approx(se)
    assert res.ci_high - mu == pytest.approx(sps.t.ppf(0.975, 2) * se)


def test_one_data_set_is_its_own_estimate_and_says_so():
    res = random_effects([0.012, np.nan], [0.008, 0.01], names=["BUSI", "BUS-BRA"])
    assert res.n_datasets == 1 and res.names == ("BUSI",)
    assert (res.estimate, res.se) == (0.012, 0.008) and list(res.weights) == [1.0]
    assert res.ci_low == pytest.approx(0.012 - sps.norm.ppf(0.975) * 0.008)
    assert math.isnan(res.tau2) and math.isnan(res.i2) and math.isnan(res.q_p)
    assert "One data set (BUSI)" in res.note and "nothing is pooled" in res.note


def test_homogeneous_data_sets_have_no_spread_and_bad_input_is_refused():
    for method in ("REML", "DL"):
        res = random_effects([0.01, 0.01, 0.01], [0.01, 0.02, 0.005], method=method)
        assert res.tau2 == 0.0 and res.i2 == 0.0 and res.estimate == pytest.approx(0.01)
    with pytest.raises(ValueError, match="positive"):
        random_effects([0.01, 0.02], [0.01, 0.0])
    with pytest.raises(ValueError, match="method"):
        random_effects([0.01, 0.02], [0.01, 0.01], method="PM")
    assert random_effects([], []).n_datasets == 0


# -- Bayesian test across data sets ---------------------------------------------------------------


def test_signed_rank_across_data_sets_is_baycomps_and_reproducible(monkeypatch):
    baycomp = pytest.importorskip("baycomp")
    monkeypatch.setattr(meta, "is_available", lambda name: False)  # as without pystan
    rng = np.random.default_rng(5)
    diffs = [0.01 + 0.01 * rng.standard_normal(5) for _ in range(4)]
    res = bayesian_across_datasets(diffs, rope=0.01, nsamples=5000)
    means = np.array([d.mean() for d in diffs])
    theirs = baycomp.SignedRankTest.probs(np.zeros(4), means, 0.01, nsamples=5000, random_state=0)
    assert (res.p_a_better, res.p_equivalent, res.p_b_better) == pytest.approx(theirs, abs=1e-12)
    assert res.test == SIGNED_RANK and res.n_datasets == 4
    assert bayesian_across_datasets(diffs, rope=0.01, nsamples=5000) == res
    assert "needs many data sets" in res.note


def test_how_little_two_or_three_data_sets_can_say():
    """The signed-rank test's most decisive outcome with n data sets (all favouring B by more
    than twice the ROPE): analytic limits, checked against the test itself."""
    limits = {n: signed_rank_limits(n) for n in (1, 2, 3, 8)}
    assert limits[2] == pytest.approx((0.9640, 0.567), abs=1e-3)
    assert limits[3] == pytest.approx((0.9911, 0.751), abs=1e-3)
    assert limits[8][1] > 0.95 > signed_rank_limits(7)[1]
    for n in (1, 2, 3):
        res = bayesian_across_datasets([[0.05, 0.06]] * n, rope=0.01, nsamples=20000)
        assert res.p_b_better == pytest.approx(limits[n][0], abs=0.01)
        assert res.max_p == pytest.approx(limits[n][0])
    two = bayesian_across_datasets([[0.05], [0.07]], rope=0.01)
    assert "With 2 data sets" in two.note and "at most P = 0.964" in two.note
    assert "at least 57% of new data sets" in two.note


def test_hierarchical_test_is_used_when_pystan_is_there(monkeypatch):
    baycomp = pytest.importorskip("baycomp")
    calls = {}

    def fake(x, y, rope, **kwargs):
        calls.update(x=x, y=y, rope=rope, **kwargs)
        return 0.1, 0.3, 0.6

    monkeypatch.setattr(meta, "is_available", lambda name: name == "stan")
    monkeypatch.setattr(baycomp.HierarchicalTest, "probs", fake)
    diffs = [np.full(15, 0.01), np.full(15, 0.02)]
    res = bayesian_across_datasets(diffs, rope=0.01, runs=3)
    assert res.test == HIERARCHICAL and (res.p_a_better, res.p_b_better) == (0.1, 0.6)
    assert calls["runs"] == 3 and calls["y"].shape == (2, 15) and (calls["x"] == 0).all()
    assert math.isnan(res.max_p) and "hierarchical" in res.note
    # data sets with different numbers of folds, or asked not to: the signed-rank test
    assert bayesian_across_datasets([np.zeros(5), np.zeros(10)], 0.01).test == SIGNED_RANK
    assert bayesian_across_datasets(diffs, 0.01, hierarchical=False).test == SIGNED_RANK


def test_a_broken_pystan_falls_back_to_the_signed_rank_test(monkeypatch):
    baycomp = pytest.importorskip("baycomp")

    def broken(*args, **kwargs):
        raise ImportError("Hierarchical model requires 'pystan >= 3.4.0'")

    monkeypatch.setattr(meta, "is_available", lambda name: True)  # found, but cannot import
    monkeypatch.setattr(baycomp.HierarchicalTest, "probs", broken)
    res = bayesian_across_datasets([np.full(5, 0.02), np.full(5, 0.03)], 0.01, nsamples=2000)
    assert res.test == SIGNED_RANK and res.p_b_better > 0.5
