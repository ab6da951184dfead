"""What a comparison can detect: the minimum detectable difference of the corrected t-test, the
most the Bayesian correlated t-test can say for equivalence, and how many repeats of k-fold
cross-validation a target difference needs.

A test that cannot reach significance, or a region of practical equivalence (ROPE) that the
posterior cannot fill, says nothing by failing; the report states both limits beside every
comparison so that "no significant difference" is never read as "no difference".

The planning functions follow the corrected repeated k-fold t-test (Nadeau & Bengio 2003;
Bouckaert & Frank 2004): with ``r`` repeats of ``k`` folds the ``r·k`` per-fold differences have
variance ``(1/(r·k) + n_test/n_train) · var(d)`` and ``r·k − 1`` degrees of freedom. The second
term does not shrink with repeats: it is the share of the variance that comes from the one data
set every repeat re-partitions, so repeats alone can never detect less than its floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

from medbench.report.stats import corrected_resampled_ttest, paired_status

#: Posterior probability of the ROPE at which the report calls two optimizers equivalent.
EQUIVALENCE_THRESHOLD = 0.95

#: Repeats :func:`repeats_needed` searches before it gives up.
MAX_REPEATS = 100


def _power(nc: float, df: float, crit: float) -> float:
    """Rejection rate of the two-sided test ``|T| > crit`` when ``T`` is noncentral t (df, nc);
    the normal distribution stands in for ``df = inf``."""
    if math.isinf(df):
        return float(sps.norm.sf(crit - nc) + sps.norm.cdf(-crit - nc))
    # SciPy's noncentral t gives NaN for some far tails (df = 1, nc near 14): that tail is below
    # 1e-15 there, so it counts as 0
    far = float(sps.nct.cdf(-crit, df, nc))
    return float(sps.nct.sf(crit, df, nc)) + (far if math.isfinite(far) else 0.0)


def noncentrality(df: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The noncentrality ``δ / scale`` at which the two-sided t-test with ``df`` degrees of freedom
    rejects at level ``alpha`` with probability ``power`` (``df = inf``: the z-test).

    Solved exactly on the noncentral t distribution (``scipy.stats.nct``) with ``brentq``; both
    tails count, although the far one is negligible at useful powers.
    """
    if not df > 0 or not 0 < alpha < 1 or not alpha < power < 1:
        return math.nan
    crit = float(sps.norm.isf(alpha / 2) if math.isinf(df) else sps.t.isf(alpha / 2, df))
    # power rises with nc from alpha (nc = 0); the normal approximation brackets the root
    high = crit + float(sps.norm.ppf(power)) + 1.0
    while _power(high, df, crit) < power:
        high *= 2
    return float(optimize.brentq(lambda nc: _power(nc, df, crit) - power, 0.0, high, xtol=1e-12))


def minimum_detectable_difference(
    scale: float, df: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest true difference the two-sided corrected t-test detects with probability ``power``.

    Parameters
    ----------
    scale : float
        Standard error of the mean difference (:class:`~medbench.report.stats.CorrectedTest`'s
        ``scale``, ``sqrt((1/k + n_test/n_train) · var(d))``).
    df : float
        Degrees of freedom of the test (``k − 1``; ``inf`` for a z-test).
    alpha, power : float
        Two-sided level and the power wanted.

    Returns
    -------
    float
        ``scale · nc`` where ``nc`` is the noncentrality at which ``P(|T| > t_{1−α/2, df}) =
        power`` for ``T ~ nct(df, nc)`` (the exact power of the t-test when the differences are
        normal and ``scale`` is the true standard error; with the observed variance in ``scale``
        it is the usual plug-in). Close to ``(z_{1−α/2} + z_power) · scale`` for large ``df``,
        larger for few folds (4 df: 1.34 times). NaN when ``scale`` or ``df`` is undefined.
    """
    if not math.isfinite(scale) or scale < 0:
        return math.nan
    return scale * noncentrality(df, alpha, power)


@dataclass(frozen=True)
class EquivalenceReach:
    """How far the Bayesian correlated t-test can go towards "equivalent within the ROPE"."""

    rope: float
    max_p_equivalent: float  # P(|B − A| ≤ rope) if the observed mean difference were exactly 0
    threshold: float  # the posterior probability that counts as equivalent
    reachable: bool  # max_p_equivalent >= threshold


def max_p_equivalent(
    scale: float, df: float, rope: float, threshold: float = EQUIVALENCE_THRESHOLD
) -> EquivalenceReach:
    """The largest ``P(|B − A| ≤ rope)`` the Bayesian correlated t-test can give with this scale.

    The posterior of the mean difference is Student t (``df``, location the observed mean,
    ``scale``); a symmetric unimodal density puts the most mass on ``[−rope, rope]`` when it is
    centred on 0, so ``2 · t.cdf(rope / scale, df) − 1`` bounds every outcome with this spread.
    Below ``threshold`` equivalence cannot be shown, however close the optimizers really are.
    A zero scale (equal differences) gives 1; an undefined one NaN and not reachable.
    """
    if not math.isfinite(scale) or scale < 0 or not df > 0 or not rope >= 0:
        return EquivalenceReach(rope, math.nan, threshold, False)
    top = 1.0 if scale == 0 else float(2 * sps.t.cdf(rope / scale, df) - 1)
    return EquivalenceReach(rope, top, threshold, top >= threshold)


@dataclass(frozen=True)
class ComparisonPower:
    """What one paired comparison over folds can detect (report columns ``mdd``, ...)."""

    n_folds: int
    df: int
    scale: float  # corrected standard error of the mean difference
    mdd: float  # minimum detectable difference at ``power``; NaN without a test
    alpha: float
    power: float
    equivalence: EquivalenceReach


def comparison_power(
    diff, ratio: float, rope: float, alpha: float = 0.05, power: float = 0.8
) -> ComparisonPower:
    """:func:`minimum_detectable_difference` and :func:`max_p_equivalent` of per-fold differences.

    ``diff`` and ``ratio`` are those of :func:`~medbench.report.stats.corrected_resampled_ttest`
    (with ``r`` repeats: the ``r·k`` per-(repeat, fold) differences). Fewer than two folds, or
    equal differences (no test: see :func:`~medbench.report.stats.paired_status`), leave the
    minimum detectable difference undefined (NaN).
    """
    test = corrected_resampled_ttest(diff, ratio)
    scale = test.scale if paired_status(diff).testable else math.nan
    return ComparisonPower(
        n_folds=test.n_folds,
        df=test.df,
        scale=test.scale,
        mdd=minimum_detectable_difference(scale, test.df, alpha, power),
        alpha=alpha,
        power=power,
        equivalence=max_p_equivalent(test.scale, test.df, rope),
    )


# -- planning repeated cross-validation -------------------------------------------------------------


def repeated_scale(var_d: float, k: int, ratio: float, repeats: float) -> float:
    """Standard error of the corrected repeated k-fold test: ``sqrt((1/(r·k) + ratio) · var_d)``
    (``repeats = inf``: the floor ``sqrt(ratio · var_d)``)."""
    inverse = 0.0 if math.isinf(repeats) else 1 / (repeats * k)
    return math.sqrt((inverse + ratio) * var_d)


def repeated_mdd(
    var_d: float, k: int, ratio: float, repeats: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Minimum detectable difference of ``repeats`` × ``k``-fold cross-validation, given the
    per-fold variance ``var_d`` of the differences (e.g. a pilot's ``var(d, ddof=1)``) and
    ``ratio = n_test / n_train``; ``repeats = inf`` gives the floor no number of repeats passes."""
    df = math.inf if math.isinf(repeats) else repeats * k - 1
    return minimum_detectable_difference(repeated_scale(var_d, k, ratio, repeats), df, alpha, power)


@dataclass(frozen=True)
class RepeatPlan:
    """How many repeats of k-fold cross-validation detect ``delta`` with the given power."""

    delta: float
    k: int
    repeats: int | None  # smallest r with mdd <= delta; None: not within max_repeats or never
    mdd: float  # minimum detectable difference with ``repeats`` (NaN when None)
    floor: float  # minimum detectable difference as r -> infinity
    note: str  # one plain sentence for the report or the CLI


def repeats_needed(
    var_d: float,
    k: int,
    ratio: float,
    delta: float,
    alpha: float = 0.05,
    power: float = 0.8,
    max_repeats: int = MAX_REPEATS,
) -> RepeatPlan:
    """The smallest number of repeats ``r`` of ``k``-fold CV whose corrected test detects
    ``delta`` with probability ``power``.

    The minimum detectable difference falls with ``r`` (the ``1/(r·k)`` term shrinks and the
    degrees of freedom grow) towards the floor ``≈ (z_{1−α/2} + z_power) · sqrt(ratio · var_d)``:
    the ``ratio · var_d`` term is the variation between training sets drawn from one data set,
    which re-partitioning the same images cannot average away. A ``delta`` at or below the floor
    is never reached (``repeats`` None, and the note says more data sets are needed); one that
    needs more than ``max_repeats`` is reported as such (``repeats`` None).
    """
    floor = repeated_mdd(var_d, k, ratio, math.inf, alpha, power)
    if not (math.isfinite(floor) and delta > 0 and k >= 2):
        return RepeatPlan(delta, k, None, math.nan, floor, "No variance to plan from.")
    if delta <= floor:
        note = (
            f"No number of repeats of {k}-fold cross-validation detects {delta:.3g}: repeats "
            f"re-partition the same images, so the detectable difference cannot fall below "
            f"{floor:.3g} (power {power:.0%}, two-sided alpha {alpha:g}); more data sets are needed."
        )
        return RepeatPlan(delta, k, None, math.nan, floor, note)
    if repeated_mdd(var_d, k, ratio, max_repeats, alpha, power) > delta:
        note = (
            f"Detecting {delta:.3g} needs more than {max_repeats} repeats of {k}-fold "
            f"cross-validation (the floor is {floor:.3g})."
        )
        return RepeatPlan(delta, k, None, math.nan, floor, note)
    low, high = 0, max_repeats  # mdd(low) > delta >= mdd(high); mdd falls with r
    while high - low > 1:
        mid = (low + high) // 2
        if repeated_mdd(var_d, k, ratio, mid, alpha, power) <= delta:
            high = mid
        else:
            low = mid
    mdd = repeated_mdd(var_d, k, ratio, high, alpha, power)
    note = (
        f"{high} × {k}-fold cross-validation detects {delta:.3g} with {power:.0%} power "
        f"(minimum detectable difference {mdd:.3g}; no number of repeats goes below {floor:.3g})."
    )
    return RepeatPlan(delta, k, high, mdd, floor, note)


def mdd_by_repeats(
    var_d: float,
    k: int,
    ratio: float,
    repeats=(1, 2, 3, 5, 10, 20),
    alpha: float = 0.05,
    power: float = 0.8,
) -> pd.DataFrame:
    """The planning table: per number of repeats, ``n_folds`` (r·k), ``df``, ``scale`` and the
    minimum detectable difference ``mdd``; a last row ``repeats = inf`` holds the floor."""
    rows = [*repeats, math.inf]
    return pd.DataFrame(
        {
            "repeats": np.array(rows, dtype=float),
            "n_folds": [r * k for r in rows],
            "df": [math.inf if math.isinf(r) else r * k - 1 for r in rows],
            "scale": [repeated_scale(var_d, k, ratio, r) for r in rows],
            "mdd": [repeated_mdd(var_d, k, ratio, r, alpha, power) for r in rows],
        }
    )
