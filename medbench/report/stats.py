"""Statistics of the report, as pure functions: resampling counts of a stratified bootstrap,
percentile and Wilson intervals, and the comparisons between optimizers.

The unit of a comparison is the fold (seeds are averaged within a fold before anything here is
called). Cross-validation training sets overlap, so the ordinary paired t-test over folds is
anti-conservative; the primary test is the corrected resampled t-test of Nadeau & Bengio (2003),
whose variance ``(1/k + n_test/n_train) · var(d)`` also scales the posterior of the Bayesian
correlated t-test (Benavoli, Corani, Demšar & Zaffalon, JMLR 2017). Holm–Bonferroni adjusts over a
family of comparisons. Every test result carries a plain-language caveat about what that number
of folds can and cannot show.

Repeated cross-validation needs nothing more: given the ``r·k`` per-(repeat, fold) differences,
``k`` in the formulas below is their number ``r·k``, so the variance is ``(1/(r·k) +
n_test/n_train) · var(d)`` with ``r·k − 1`` degrees of freedom, the corrected repeated k-fold
t-test of Bouckaert & Frank (2004), and the Bayesian test equals
``baycomp.CorrelatedTTest(a, b, rope, runs=r)`` (which sets ``n_test/n_train = 1/(k − 1)``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as sps

from medbench.metrics import describe

#: Bootstrap settings: fixed, so that a report rebuilt anywhere gives the same intervals.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


# -- resampling ----------------------------------------------------------------------------------


def stratified_counts(
    strata, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """Counts of a bootstrap that resamples items with replacement within each stratum.

    Parameters
    ----------
    strata : array-like, shape (n,)
        The stratum of each item (e.g. ``"fold|site|label"``); strata are drawn in sorted order
        of their text, the items of one stratum in the given order (sort them, e.g. by id, for
        counts that do not depend on how the items were listed).
    n_resamples : int
        Resamples drawn.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    ndarray of int32, shape (n_resamples, n)
        How often each item is drawn in each resample: per stratum of ``m`` items, a
        multinomial(m, uniform) draw, i.e. ``m`` draws with replacement. Every resample keeps the
        size of every stratum (a fold's class balance stays that of the fold).
    """
    keys = np.asarray([str(s) for s in strata])
    out = np.zeros((n_resamples, len(keys)), dtype=np.int32)
    rng = np.random.default_rng(seed)
    for key in np.unique(keys):
        idx = np.flatnonzero(keys == key)
        out[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=n_resamples)
    return out


def percentile_interval(samples, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite ``samples`` (NaN, NaN when there are none)."""
    v = np.asarray(samples, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(v, [tail, 100 - tail])
    return float(low), float(high)


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n``: always inside [0, 1].

    ``successes`` may be a mean count (e.g. over seeds on the same images). NaN without trials.
    """
    if not n > 0 or not math.isfinite(successes):
        return math.nan, math.nan
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# -- paired comparisons over folds -----------------------------------------------------------------


def wilcoxon_min_p(n_pairs: int) -> float:
    """Smallest two-sided p the exact Wilcoxon signed-rank test can give with ``n_pairs`` non-zero pairs.

    All differences of one sign is the most extreme outcome: probability 2 / 2**n.
    """
    if n_pairs < 1:
        return 1.0
    return min(1.0, 2.0 ** (1 - n_pairs))


def caveat(n_pairs: int, n_nonzero: int, alpha: float = 0.05) -> str:
    """Plain-language limits of paired tests over this many folds ('' when there is nothing to say)."""
    if n_pairs == 0:
        return "No fold finished under both optimizers: nothing to compare."
    if n_pairs == 1:
        return "Only one paired fold: no test is possible and the difference has no interval."
    if n_nonzero == 0:
        return "The two optimizers scored the same on every paired fold: no test is possible."
    notes = []
    min_p = wilcoxon_min_p(n_nonzero)
    if min_p > alpha:
        notes.append(
            f"With {n_nonzero} non-zero paired differences the two-sided Wilcoxon test cannot go "
            f"below p = {min_p:.4g}, so it can never reach p < {alpha:g} whatever the results; "
            "the t-tests and the intervals lean on roughly normal differences."
        )
    if n_pairs < 10:
        notes.append(
            f"With only {n_pairs} folds the tests have little power: p ≥ {alpha:g} does not show "
            "that the optimizers perform alike."
        )
    return " ".join(notes)


#: Spread below which paired differences count as equal: AUCs and rates computed from counts
#: differ by rounding only (about 1e-16) when two optimizers differ by the same amount per fold.
EQUAL_DIFFERENCES_TOLERANCE = 1e-12


@dataclass(frozen=True)
class PairedStatus:
    """Whether a paired comparison over folds can be tested, and if not, why (in words)."""

    kind: str  # "none", "one", "identical", "constant" (no test) or "tested"
    n_pairs: int
    text: str  # '' for "tested"

    @property
    def testable(self) -> bool:
        return self.kind == "tested"


def paired_status(diff) -> PairedStatus:
    """Tell "identical on every paired fold" and "the same difference on every fold" (no spread:
    no test, and no entry in Holm's family) from comparisons a test can judge.

    ``diff`` holds the per-fold differences B − A; non-finite ones are left out. Differences
    within :data:`EQUAL_DIFFERENCES_TOLERANCE` of each other count as equal, so that rounding
    cannot turn a constant difference into a "significant" one.
    """
    d = np.asarray(diff, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return PairedStatus(
            "none", 0, "No fold finished under both optimizers: nothing to compare."
        )
    if n == 1:
        return PairedStatus("one", 1, "Only one paired fold: no test is possible.")
    if np.ptp(d) > EQUAL_DIFFERENCES_TOLERANCE:
        return PairedStatus("tested", n, "")
    if np.abs(d).max() <= EQUAL_DIFFERENCES_TOLERANCE:
        return PairedStatus(
            "identical", n, f"Identical on every one of the {n} paired folds: no test."
        )
    return PairedStatus(
        "constant",
        n,
        f"B − A is {d.mean():+.4g} on every one of the {n} paired folds: "
        "the differences have no spread, so no test is possible.",
    )


@dataclass(frozen=True)
class PairedTest:
    """B − A over paired folds: mean difference, its (uncorrected) t CI and two classical tests."""

    n_pairs: int
    mean_diff: float
    ci_low: float
    ci_high: float
    t_statistic: float
    t_p: float
    wilcoxon_statistic: float
    wilcoxon_p: float
    wilcoxon_min_p: float
    caveat: str


def paired_test(a, b, confidence: float = 0.95, alpha: float = 0.05) -> PairedTest:
    """Paired t-test (``scipy.stats.ttest_rel(b, a)``) and Wilcoxon signed-rank
    (``scipy.stats.wilcoxon(b - a)``, zeros dropped) on pairs where both values are finite."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diff = b - a
    n = len(diff)
    nonzero = int(np.count_nonzero(diff))
    ci = describe(diff, confidence)
    t_stat = t_p = w_stat = w_p = math.nan
    if n >= 2 and nonzero > 0:
        # equal differences (t undefined) and ties (Wilcoxon falls back to its normal
        # approximation) make SciPy warn; the caveat and the NaN say it in the report instead
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_res = sps.ttest_rel(b, a)
            w_res = sps.wilcoxon(diff)
        t_stat, t_p = float(t_res.statistic), float(t_res.pvalue)
        w_stat, w_p = float(w_res.statistic), float(w_res.pvalue)
    return PairedTest(
        n_pairs=n,
        mean_diff=ci.mean,
        ci_low=ci.low,
        ci_high=ci.high,
        t_statistic=t_stat,
        t_p=t_p,
        wilcoxon_statistic=w_stat,
        wilcoxon_p=w_p,
        wilcoxon_min_p=wilcoxon_min_p(nonzero),
        caveat=caveat(n, nonzero, alpha),
    )


@dataclass(frozen=True)
class CorrectedTest:
    """Corrected resampled t-test of B − A over k folds (Nadeau & Bengio 2003)."""

    n_folds: int  # k
    mean_diff: float
    ratio: float  # mean over folds of n_test / n_train
    scale: float  # sqrt((1/k + ratio) · var(d)): the corrected standard error
    t_statistic: float
    df: int
    p: float  # two-sided
    ci_low: float
    ci_high: float


def _corrected_scale(diff, ratio: float) -> tuple[int, float, float]:
    """(k, mean, scale) of the finite per-fold differences: ``scale = sqrt((1/k + ratio) ·
    var(d))``, the corrected standard error both tests below use; NaN scale with fewer than two
    folds or a non-finite ``ratio``."""
    d = np.asarray(diff, dtype=float)
    d = d[np.isfinite(d)]
    k = len(d)
    mean = float(d.mean()) if k else math.nan
    if k < 2 or not math.isfinite(ratio):
        return k, mean, math.nan
    return k, mean, math.sqrt((1 / k + ratio) * float(d.var(ddof=1)))


def corrected_resampled_ttest(diff, ratio: float, confidence: float = 0.95) -> CorrectedTest:
    """Nadeau & Bengio's corrected resampled t-test on per-fold differences ``d = b − a``.

    ``t = mean(d) / sqrt((1/k + ratio) · var(d))`` with ``var`` the sample variance (ddof=1),
    ``df = k − 1``, two-sided ``p = 2 · t.sf(|t|, k − 1)``; the interval is
    ``mean(d) ± t.ppf((1 + confidence) / 2, k − 1) · sqrt((1/k + ratio) · var(d))``. ``ratio`` is
    n_test / n_train (training sets of k folds overlap, so the folds' differences are correlated;
    ``ratio = 0`` gives the ordinary paired t-test). Non-finite differences are left out; with
    fewer than two folds everything is NaN; with equal differences the interval is the point and
    the test is undefined (NaN).

    With ``r`` repeats of k-fold CV, pass the ``r·k`` per-(repeat, fold) differences: the test is
    then the corrected repeated k-fold t-test (Bouckaert & Frank 2004), variance ``(1/(r·k) +
    ratio) · var(d)``, ``df = r·k − 1``; the repeat needs no parameter of its own.
    """
    k, mean, scale = _corrected_scale(diff, ratio)
    if math.isnan(scale):
        return CorrectedTest(
            k, mean, ratio, math.nan, math.nan, max(k - 1, 0), math.nan, *(math.nan,) * 2
        )
    df = k - 1
    if scale == 0:
        return CorrectedTest(k, mean, ratio, 0.0, math.nan, df, math.nan, mean, mean)
    t = mean / scale
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * scale
    p = float(2 * sps.t.sf(abs(t), df))
    return CorrectedTest(k, mean, ratio, scale, t, df, p, mean - half, mean + half)


@dataclass(frozen=True)
class BayesianComparison:
    """Posterior probabilities of the Bayesian correlated t-test with a region of practical
    equivalence (ROPE) ``[-rope, rope]`` on B − A."""

    rope: float
    p_a_better: float  # P(B − A < −rope)
    p_equivalent: float  # P(|B − A| ≤ rope)
    p_b_better: float  # P(B − A > rope)


def bayesian_correlated_ttest(diff, ratio: float, rope: float) -> BayesianComparison:
    """Bayesian correlated t-test (Benavoli et al. 2017) on per-fold differences ``d = b − a``.

    The posterior of the mean difference is Student t with ``k − 1`` degrees of freedom, location
    ``mean(d)`` and scale ``sqrt((1/k + ratio) · var(d))``, the scale of
    :func:`corrected_resampled_ttest`; the probabilities are its mass below ``−rope``, inside
    ``[−rope, rope]`` and above ``rope``, as ``baycomp.CorrelatedTTest`` computes them (it fixes
    ``ratio`` at ``1/(k − 1)``). Equal differences give a point mass; fewer than two folds give NaN.
    With ``r`` repeats, the ``r·k`` per-(repeat, fold) differences and ``ratio = 1/(k − 1)`` give
    exactly ``baycomp.CorrelatedTTest(a, b, rope, runs=r)``.
    """
    k, mean, scale = _corrected_scale(diff, ratio)
    if math.isnan(scale):
        return BayesianComparison(rope, math.nan, math.nan, math.nan)
    if scale == 0:
        if rope == 0 and mean == 0:
            p_a = p_b = 0.5
        else:
            p_a, p_b = float(mean < -rope), float(mean > rope)
    else:
        posterior = sps.t(k - 1, loc=mean, scale=scale)
        p_a, p_b = float(posterior.cdf(-rope)), float(posterior.sf(rope))
    return BayesianComparison(rope, p_a, max(0.0, 1 - p_a - p_b), p_b)


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values of one family (NaN stays NaN and is not counted).

    With the ``m`` finite p-values sorted, ``p_(i)`` becomes ``max_{j ≤ i} (m − j + 1) · p_(j)``,
    capped at 1; rejecting where the adjusted p < alpha is Holm's step-down procedure.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


#: Points of the chi-squared distribution over which :func:`generalized_test` averages.
GENERALIZED_GRID = 4000


@dataclass(frozen=True)
class GeneralizedTest:
    """A difference tested with a variance one part of which is estimated from few folds."""

    estimate: float
    se: float  # plug-in standard error sqrt(scale · max(floor, spread) + offset)
    df: float  # degrees of freedom of ``spread``
    p: float  # two-sided generalized p-value; NaN when nothing varies (no test)
    ci_low: float
    ci_high: float


def generalized_test(
    estimate: float,
    spread: float,
    df: float,
    scale: float = 1.0,
    floor: float = 0.0,
    offset: float = 0.0,
    confidence: float = 0.95,
    grid: int = GENERALIZED_GRID,
) -> GeneralizedTest:
    """Generalized p-value and interval (Tsui & Weerahandi 1989; Weerahandi 1993) of a normal
    ``estimate`` whose variance is ``scale · max(floor, E) + offset``, where ``E`` is estimated
    by ``spread`` with ``df`` degrees of freedom (``df · spread / E ~ chi²_df``) and ``floor``
    and ``offset`` are known (e.g. from a bootstrap over many images).

    The generalized pivot of the variance is ``V(W) = scale · max(floor, df · spread / W) +
    offset`` with ``W ~ chi²_df``; ``p = E_W[2 Φ(−|estimate| / √V(W))]`` and the interval is
    ``estimate ± x`` with ``E_W[2 Φ(x / √V(W)) − 1] = confidence``, the expectations taken over
    ``grid`` quantiles of ``W``. With ``floor = offset = 0`` this is exactly the t-test with
    ``df`` degrees of freedom and standard error ``sqrt(scale · spread)`` (up to the grid); with
    a known part it lies between that t-test and the z-test, as the Welch–Satterthwaite
    approximation does, but it also handles a known part that is subtracted (``offset < 0``
    with ``floor``), where Satterthwaite's degrees of freedom fail.
    """
    nan = math.nan
    values = (estimate, spread, scale, floor, offset)
    if not all(math.isfinite(v) for v in values) or not df > 0:
        return GeneralizedTest(estimate, nan, df, nan, nan, nan)
    w = sps.chi2.ppf((np.arange(grid) + 0.5) / grid, df)
    var = scale * np.maximum(floor, df * spread / w) + offset
    plug_in = scale * max(floor, spread) + offset
    if not plug_in > 0 or not (var > 0).all():
        return GeneralizedTest(estimate, max(plug_in, 0.0) ** 0.5, df, nan, nan, nan)
    sd = np.sqrt(var)
    p = float(np.mean(2 * sps.norm.sf(abs(estimate) / sd)))

    def coverage(x: float) -> float:
        return float(np.mean(2 * sps.norm.cdf(x / sd) - 1)) - confidence

    high = float(sd.max()) * sps.norm.isf((1 - confidence) / 2) * 2
    half = optimize.brentq(coverage, 0.0, high, xtol=1e-14 * high)
    return GeneralizedTest(estimate, math.sqrt(plug_in), df, p, estimate - half, estimate + half)
