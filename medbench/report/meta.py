"""Combining data sets: random-effects meta-analysis of per-dataset paired differences, and a
Bayesian test across data sets.

Each data set (one experiment) contributes its mean difference B − A over folds and the corrected
standard error of that mean (:class:`~medbench.report.stats.CorrectedTest`'s ``mean_diff`` and
``scale``). Data sets differ in images, sites and difficulty, so the true difference may differ
between them: the random-effects model ``y_i ~ N(mu, v_i + tau²)`` estimates the mean ``mu`` of
the data sets' true differences and their spread ``tau²`` (DerSimonian & Laird 1986; REML as in
Viechtbauer 2005 and metafor). The within-dataset variances ``v_i`` are treated as known, as in
every standard meta-analysis; with 5 folds each they are themselves rough, one more reason to
read a pooled estimate over a few data sets with care.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as sps

from medbench.optional import is_available, lazy_import

# baycomp is pure Python on NumPy/SciPy; lazy so that the report imports without it until the
# cross-dataset comparison is asked for
baycomp = lazy_import("baycomp")

METHODS = ("REML", "DL")


@dataclass(frozen=True)
class MetaAnalysis:
    """Random-effects pooled difference over data sets."""

    method: str  # "REML" or "DL" (the estimator of tau²)
    names: tuple[str, ...]  # the data sets, in the order of ``weights``
    estimate: float  # pooled mean difference mu
    se: float
    ci_low: float
    ci_high: float
    ci_method: str  # "z" or "Knapp-Hartung t"
    tau2: float  # between-dataset variance of the true differences (NaN with one data set)
    i2: float  # share of the total variance due to heterogeneity, in [0, 1]
    q: float  # Cochran's Q (fixed-effect weights)
    q_df: int
    q_p: float
    weights: np.ndarray  # random-effects weights 1/(v_i + tau²), normalised to sum 1
    note: str

    @property
    def n_datasets(self) -> int:
        return len(self.names)


def _fixed(y: np.ndarray, v: np.ndarray) -> tuple[float, float, float]:
    """(mu, Q, sum of weights) of the fixed-effect (inverse-variance) model."""
    w = 1 / v
    mu = float((w * y).sum() / w.sum())
    return mu, float((w * (y - mu) ** 2).sum()), float(w.sum())


def dersimonian_laird_tau2(y: np.ndarray, v: np.ndarray) -> float:
    """Method-of-moments ``tau² = max(0, (Q − (k − 1)) / (Σw − Σw² / Σw))``, ``w = 1/v``."""
    w = 1 / v
    _, q, sw = _fixed(y, v)
    return max(0.0, (q - (len(y) - 1)) / (sw - (w**2).sum() / sw))


def restricted_loglik(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    """Restricted (REML) log-likelihood of ``tau²``, up to a constant:
    ``−½ [Σ log(v_i + tau²) + log Σ w_i + Σ w_i (y_i − mu_w)²]`` with ``w_i = 1/(v_i + tau²)``."""
    w = 1 / (v + tau2)
    mu = (w * y).sum() / w.sum()
    return float(-0.5 * (np.log(v + tau2).sum() + math.log(w.sum()) + (w * (y - mu) ** 2).sum()))


def reml_tau2(y: np.ndarray, v: np.ndarray, tol: float = 1e-12, max_iter: int = 500) -> float:
    """REML estimate of ``tau²`` by Fisher scoring from the DerSimonian–Laird value (metafor's
    algorithm): ``tau² += (Σ w²(y − mu)² − tr P) / tr P²`` with ``P = W − w wᵀ/Σw``, kept at 0 or
    above. Should scoring not settle, the bounded maximum of :func:`restricted_loglik` is used."""
    tau2 = dersimonian_laird_tau2(y, v)
    for _ in range(max_iter):
        w = 1 / (v + tau2)
        sw, sw2 = w.sum(), (w**2).sum()
        mu = (w * y).sum() / sw
        tr_p = sw - sw2 / sw
        tr_pp = sw2 - 2 * (w**3).sum() / sw + (sw2 / sw) ** 2
        new = max(0.0, tau2 + ((w**2 * (y - mu) ** 2).sum() - tr_p) / tr_pp)
        if abs(new - tau2) <= tol * (1 + tau2):
            return float(new)
        tau2 = new
    top = 10 * (float(np.var(y)) + float(v.max()))
    res = optimize.minimize_scalar(
        lambda t: -restricted_loglik(t, y, v), bounds=(0.0, top), method="bounded"
    )
    best = float(res.x)
    return 0.0 if restricted_loglik(0.0, y, v) >= restricted_loglik(best, y, v) else best


def random_effects(
    estimates,
    std_errors,
    method: str = "REML",
    names: Sequence[str] | None = None,
    confidence: float = 0.95,
    knapp_hartung: bool = False,
) -> MetaAnalysis:
    """Random-effects meta-analysis of per-dataset differences.

    Parameters
    ----------
    estimates, std_errors : array-like of float, shape (k,)
        Each data set's mean difference B − A and its standard error (the corrected one of its
        folds); data sets with a non-finite value are left out, a zero standard error is an
        error (a data set without spread cannot be weighted).
    method : {"REML", "DL"}
        Estimator of ``tau²``: restricted maximum likelihood (the default of metafor, less biased)
        or DerSimonian–Laird's method of moments.
    names : sequence of str, optional
        The data sets' names (default ``"1"``, ``"2"``, ...).
    confidence : float
        Coverage of the interval.
    knapp_hartung : bool
        Interval ``mu ± t_{k−1} · se_HK`` with ``se_HK² = Σ w*(y − mu)² / ((k − 1) Σ w*)``
        (Knapp & Hartung 2003) instead of the z interval ``mu ± z · (Σ w*)^(−1/2)``; with few
        data sets the z interval is too narrow (IntHout, Ioannidis & Borm 2014).

    Returns
    -------
    MetaAnalysis
        ``mu = Σ w* y / Σ w*`` with ``w* = 1/(v + tau²)``, its standard error and interval,
        ``tau²``, ``I² = tau² / (tau² + s²)`` with the typical within variance ``s² = (k − 1) Σw /
        ((Σw)² − Σw²)`` (for DerSimonian–Laird this is Higgins & Thompson's ``(Q − (k − 1))/Q``),
        Cochran's Q with its chi-squared p, and the normalised weights. With one data set the
        result is that data set's estimate and interval, and the note says nothing was pooled.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    y = np.asarray(estimates, dtype=float)
    se = np.asarray(std_errors, dtype=float)
    labels = np.asarray([str(i + 1) for i in range(len(y))] if names is None else list(names))
    keep = np.isfinite(y) & np.isfinite(se)
    y, se, labels = y[keep], se[keep], labels[keep]
    if (se <= 0).any():
        raise ValueError("every standard error must be positive")
    k = len(y)
    ci_method = "Knapp-Hartung t" if knapp_hartung and k > 1 else "z"
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    if k == 0:
        nan = math.nan
        return MetaAnalysis(
            method, (), nan, nan, nan, nan, ci_method, nan, nan, nan, 0, nan, np.array([]),
            "No data set to pool.",
        )  # fmt: skip
    if k == 1:
        return MetaAnalysis(
            method=method,
            names=tuple(labels),
            estimate=float(y[0]),
            se=float(se[0]),
            ci_low=float(y[0] - z * se[0]),
            ci_high=float(y[0] + z * se[0]),
            ci_method="z",
            tau2=math.nan,
            i2=math.nan,
            q=0.0,
            q_df=0,
            q_p=math.nan,
            weights=np.array([1.0]),
            note=(
                f"One data set ({labels[0]}): its own estimate; nothing is pooled and the "
                "spread between data sets cannot be estimated."
            ),
        )
    v = se**2
    tau2 = reml_tau2(y, v) if method == "REML" else dersimonian_laird_tau2(y, v)
    w = 1 / (v + tau2)
    mu = float((w * y).sum() / w.sum())
    if knapp_hartung:
        pooled_se = math.sqrt(float((w * (y - mu) ** 2).sum() / ((k - 1) * w.sum())))
        half = float(sps.t.ppf(0.5 + confidence / 2, k - 1)) * pooled_se
    else:
        pooled_se = math.sqrt(1 / float(w.sum()))
        half = z * pooled_se
    _, q, sw = _fixed(y, v)
    typical = (k - 1) * sw / (sw**2 - float((1 / v**2).sum()))
    return MetaAnalysis(
        method=method,
        names=tuple(labels),
        estimate=mu,
        se=pooled_se,
        ci_low=mu - half,
        ci_high=mu + half,
        ci_method=ci_method,
        tau2=float(tau2),
        i2=float(tau2 / (tau2 + typical)),
        q=q,
        q_df=k - 1,
        q_p=float(sps.chi2.sf(q, k - 1)),
        weights=w / w.sum(),
        note=f"{k} data sets pooled ({method} estimate of the spread between them).",
    )


# -- a Bayesian test across data sets ---------------------------------------------------------------

SIGNED_RANK = "Bayesian signed-rank test (Benavoli et al. 2014)"
HIERARCHICAL = "Bayesian hierarchical correlated t-test (Corani et al. 2017)"

#: Strength of the signed-rank test's prior pseudo-observation at 0 (baycomp's default).
SIGNED_RANK_PRIOR = 0.5


@dataclass(frozen=True)
class AcrossDatasets:
    """Posterior probabilities of B − A across data sets, and what that many data sets can say."""

    test: str  # SIGNED_RANK or HIERARCHICAL
    n_datasets: int
    rope: float
    p_a_better: float
    p_equivalent: float
    p_b_better: float
    max_p: float  # the signed-rank test's largest possible P(one optimizer better) with n sets
    note: str


def signed_rank_limits(n_datasets: int, prior: float = SIGNED_RANK_PRIOR) -> tuple[float, float]:
    """What the Bayesian signed-rank test (ROPE > 0) can say with ``n_datasets`` data sets.

    When every data set favours B by more than twice the ROPE, the posterior's weight on the
    prior pseudo-observation at 0 is ``w0 ~ Beta(prior, n)`` and B's region holds ``1 − w0²``.
    Returns ``(max_p, theta_low)``: ``P(B better) = P(w0 < 1/√2)``, the most the test can ever
    report, and the 5% posterior quantile ``1 − q95(w0)²`` of ``theta`` (the probability that B
    beats A by more than the ROPE on new data sets, Benavoli et al.'s theta_r): how little
    that unanimous evidence still guarantees.
    """
    if n_datasets < 1:
        return math.nan, math.nan
    w0 = sps.beta(prior, n_datasets)
    return float(w0.cdf(2**-0.5)), float(1 - w0.ppf(0.95) ** 2)


def _note(test: str, n: int, rope: float) -> str:
    max_p, theta = signed_rank_limits(n)
    few = (
        f"With {n} data set{'s' if n != 1 else ''} even a unanimous result (every data set "
        f"favouring one optimizer by more than {2 * rope:g}) gives at most P = {max_p:.3f}, "
        f"and then only says, with 95% probability, that the optimizer wins by more than the "
        f"ROPE on at least {theta:.0%} of new data sets; "
    )
    if test == SIGNED_RANK:
        return (
            few + "it ignores how uncertain each data set's mean is, so it needs many data sets "
            "(about 8 before that guarantee passes 95%) to say much."
        )
    return (
        "The hierarchical model weighs each data set's folds with their uncertainty and "
        f"shrinks the data sets towards a common mean; with {n} data sets its estimate of the "
        "spread between data sets rests mostly on its prior, so it too needs several to say much."
    )


def bayesian_across_datasets(
    diffs: Sequence,
    rope: float,
    runs: int = 1,
    random_state: int = 0,
    nsamples: int = 50000,
    hierarchical: bool | None = None,
) -> AcrossDatasets:
    """Posterior probabilities that B is worse, equivalent (``|B − A| ≤ rope``) or better across
    data sets.

    Parameters
    ----------
    diffs : sequence of array-like
        Per data set, its per-(repeat, fold) differences B − A.
    rope : float
        Half-width of the region of practical equivalence (> 0).
    runs : int
        Repeats of the cross-validation (the hierarchical test's correlation ``1/k``).
    random_state : int
        Seed of the test's sampling, so that a rebuilt report gives the same numbers.
    nsamples : int
        Posterior samples.
    hierarchical : bool, optional
        ``None`` (default): the hierarchical correlated t-test of Corani et al. (2017,
        ``baycomp.HierarchicalTest``) when pystan (``stan``) is importable and every data set has
        the same number of folds, else the Bayesian signed-rank test of Benavoli et al. (2014,
        ``baycomp.SignedRankTest``) on the data sets' mean differences. ``False`` forces the
        signed-rank test; ``True`` asks for the hierarchical one where it can run. Note that
        baycomp's hierarchical test caches its last sample in ``last-sample.pickle`` in the
        working folder.
    """
    arrays = [np.asarray(d, dtype=float) for d in diffs]
    arrays = [d[np.isfinite(d)] for d in arrays]
    arrays = [d for d in arrays if len(d)]
    n = len(arrays)
    if n == 0 or not rope > 0:
        return AcrossDatasets(SIGNED_RANK, n, rope, *(math.nan,) * 4, "Nothing to compare.")
    same_length = len({len(d) for d in arrays}) == 1
    probs = None
    if hierarchical is not False and same_length and is_available("stan"):
        x = np.vstack(arrays)
        try:
            probs = baycomp.HierarchicalTest.probs(
                np.zeros_like(x), x, rope, runs=runs, nsamples=nsamples, random_state=random_state
            )
        except ImportError:  # pystan found but broken (e.g. without pkg_resources): fall back
            probs = None
    if probs is not None:
        p_a, p_eq, p_b = probs
        test = HIERARCHICAL
    else:
        means = np.array([d.mean() for d in arrays])
        p_a, p_eq, p_b = baycomp.SignedRankTest.probs(
            np.zeros(n), means, rope, prior=SIGNED_RANK_PRIOR, nsamples=nsamples,
            random_state=random_state,
        )  # fmt: skip
        test = SIGNED_RANK
    return AcrossDatasets(
        test=test,
        n_datasets=n,
        rope=rope,
        p_a_better=float(p_a),
        p_equivalent=float(p_eq),
        p_b_better=float(p_b),
        max_p=signed_rank_limits(n)[0] if test == SIGNED_RANK else math.nan,
        note=_note(test, n, rope),
    )
