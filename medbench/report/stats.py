"""Statistics over folds: interval cells of a table, a seeded AUC bootstrap and paired tests
between optimizers. Means, standard deviations and t intervals come from
:func:`medbench.metrics.describe`, shared with the engine.

Cross-validation gives few paired units (5 folds, times the seeds), so every test result carries
a plain-language caveat about what that number of pairs can and cannot show.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from medbench.metrics import describe

#: Bootstrap settings of the pooled AUC: fixed, so that a report rebuilt anywhere gives the same CI.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def interval_columns(values, name: str, confidence: float = 0.95) -> dict[str, float]:
    """``name_mean``, ``name_std``, ``name_ci_low``, ``name_ci_high``, ``name_n``: a table row's cells
    (:func:`medbench.metrics.describe`)."""
    ci = describe(values, confidence)
    return {
        f"{name}_mean": ci.mean,
        f"{name}_std": ci.std,
        f"{name}_ci_low": ci.low,
        f"{name}_ci_high": ci.high,
        f"{name}_n": ci.n,
    }


@dataclass(frozen=True)
class BootstrapCI:
    """A statistic on the full sample and its percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    n_resamples: int  # resamples drawn
    n_valid: int  # resamples with both classes (the others have no AUC and are skipped)
    seed: int


def _rank_auc(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Row-wise ROC AUC by the Mann-Whitney rank sum (ties get average ranks, as in sklearn)."""
    ranks = sps.rankdata(probs, axis=1)
    pos = labels == 1
    n_pos = pos.sum(axis=1)
    n_neg = labels.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * pos).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def bootstrap_auc(
    labels,
    probs,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = 0.95,
    chunk: int = 250,
) -> BootstrapCI:
    """AUC with a percentile bootstrap CI over images.

    Resample ``i`` takes the indices ``numpy.random.default_rng(seed).integers(0, n, (n_resamples,
    n))[i]``; resamples holding a single class are skipped; the bounds are
    ``numpy.percentile(aucs, [2.5, 97.5])`` for 95%. Anyone can redo it with scikit-learn.
    """
    y = np.asarray(labels).astype(int)
    p = np.asarray(probs, dtype=float)
    n = len(y)
    if n == 0 or len(np.unique(y)) < 2:
        return BootstrapCI(math.nan, math.nan, math.nan, n_resamples, 0, seed)
    estimate = float(_rank_auc(y[None, :], p[None, :])[0])
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    aucs = np.concatenate(
        [
            _rank_auc(y[idx[s : s + chunk]], p[idx[s : s + chunk]])
            for s in range(0, n_resamples, chunk)
        ]
    )
    aucs = aucs[np.isfinite(aucs)]
    if len(aucs) == 0:
        return BootstrapCI(estimate, math.nan, math.nan, n_resamples, 0, seed)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return BootstrapCI(estimate, float(low), float(high), n_resamples, len(aucs), seed)


def wilcoxon_min_p(n_pairs: int) -> float:
    """Smallest two-sided p the exact Wilcoxon signed-rank test can give with ``n_pairs`` non-zero pairs.

    All differences of one sign is the most extreme outcome: probability 2 / 2**n.
    """
    if n_pairs < 1:
        return 1.0
    return min(1.0, 2.0 ** (1 - n_pairs))


def caveat(n_pairs: int, n_nonzero: int, alpha: float = 0.05) -> str:
    """Plain-language limits of paired tests with this many pairs ('' when there is nothing to say)."""
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
            "the t-test and the interval lean on roughly normal differences."
        )
    if n_pairs < 10:
        notes.append(
            f"With only {n_pairs} pairs the tests have little power: p ≥ {alpha:g} does not show "
            "that the optimizers perform alike."
        )
    return " ".join(notes)


@dataclass(frozen=True)
class PairedTest:
    """B − A over paired units (fold, seed): mean difference, its t CI and two tests."""

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
