"""Classification metrics for binary benign (0) / malignant (1) predictions, and the one summary
of a metric over folds (mean, standard deviation, t interval) that the engine and the report share.

Undefined values are NaN, never an exception: a test fold with a single class has no AUC, and
the report must show it as undefined rather than crash or average it away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

#: Names of the metrics :func:`binary_metrics` returns, in the report's order.
METRIC_NAMES = (
    "auc",
    "accuracy",
    "sensitivity",
    "specificity",
    "f1",
    "balanced_accuracy",
    "ece",
    "brier",
)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else math.nan


def auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Area under the ROC curve of P(malignant).

    Parameters
    ----------
    labels : array-like of int, shape (n,)
        True classes, 0 benign and 1 malignant.
    probs : array-like of float, shape (n,)
        Predicted P(malignant).

    Returns
    -------
    float
        ``sklearn.metrics.roc_auc_score``; NaN when only one class is present (a test fold
        without benign or malignant images has no AUC).
    """
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return math.nan
    return float(roc_auc_score(labels, probs))


def confusion_counts(labels: np.ndarray, calls: np.ndarray) -> tuple[int, int, int, int]:
    """Confusion counts of binary calls.

    Parameters
    ----------
    labels : array-like of int, shape (n,)
        True classes, 0 benign and 1 malignant.
    calls : array-like of int or bool, shape (n,)
        Calls, 1 (or True) malignant; a model's ``probs >= threshold`` or a reader's BI-RADS call.

    Returns
    -------
    tuple of int
        ``(tp, fn, tn, fp)``.
    """
    y = np.asarray(labels).astype(int)
    c = np.asarray(calls).astype(int)
    return (
        int(((c == 1) & (y == 1)).sum()),
        int(((c == 0) & (y == 1)).sum()),
        int(((c == 0) & (y == 0)).sum()),
        int(((c == 1) & (y == 0)).sum()),
    )


def calibration_bins(
    labels: np.ndarray, probs: np.ndarray, n_bins: int = 10
) -> list[tuple[int, float, float]]:
    """Predictions grouped into equal-width bins of P(malignant), as a reliability diagram shows.

    Parameters
    ----------
    labels : array-like of int, shape (n,)
        True classes, 0 benign and 1 malignant.
    probs : array-like of float, shape (n,)
        Predicted P(malignant) in [0, 1]; bin ``b`` holds the ``p`` with
        ``floor(p * n_bins) == b``, and ``p == 1`` goes to the last bin.
    n_bins : int, default=10
        Number of bins.

    Returns
    -------
    list of (int, float, float)
        Per bin, in order: count, mean predicted probability and observed malignant rate; the
        two means are NaN for an empty bin.
    """
    labels = np.asarray(labels, dtype=float)
    probs = np.asarray(probs, dtype=float)
    bins = np.clip((probs * n_bins).astype(int), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            out.append((int(mask.sum()), float(probs[mask].mean()), float(labels[mask].mean())))
        else:
            out.append((0, math.nan, math.nan))
    return out


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error of P(malignant).

    Parameters
    ----------
    labels : array-like of int, shape (n,)
        True classes, 0 benign and 1 malignant.
    probs : array-like of float, shape (n,)
        Predicted P(malignant) in [0, 1].
    n_bins : int, default=10
        Number of equal-width bins (those of :func:`calibration_bins`).

    Returns
    -------
    float
        ``|observed rate - mean predicted|`` per bin, weighted by the bin's share of the
        predictions; NaN without predictions.
    """
    if len(probs) == 0:
        return math.nan
    total = 0.0
    for n, predicted, observed in calibration_bins(labels, probs, n_bins):
        if n:
            total += n * abs(observed - predicted)
    return float(total / len(probs))


def binary_metrics(
    labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Every metric of :data:`METRIC_NAMES` on one test set.

    Parameters
    ----------
    labels : array-like of int, shape (n,)
        True classes, 0 benign and 1 malignant.
    probs : array-like of float, shape (n,)
        Predicted P(malignant).
    threshold : float, default=0.5
        ``probs >= threshold`` is called malignant for the threshold metrics (accuracy,
        sensitivity, specificity, F1, balanced accuracy); AUC, ECE and Brier use ``probs``.

    Returns
    -------
    dict of str to float
        One value per name of :data:`METRIC_NAMES`; a metric that is undefined on this test set
        (AUC or specificity without benign images, anything without images) is NaN.
    """
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, dtype=float)
    tp, fn, tn, fp = confusion_counts(labels, probs >= threshold)
    sens = _ratio(tp, tp + fn)
    spec = _ratio(tn, tn + fp)
    return {
        "auc": auc(labels, probs),
        "accuracy": _ratio(tp + tn, len(labels)),
        "sensitivity": sens,
        "specificity": spec,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "balanced_accuracy": float(np.nanmean([sens, spec]))
        if not (math.isnan(sens) and math.isnan(spec))
        else math.nan,
        "ece": expected_calibration_error(labels, probs),
        "brier": float(np.mean((probs - labels) ** 2)) if len(labels) else math.nan,
    }


def resampled_metrics(
    labels: np.ndarray, probs: np.ndarray, weights: np.ndarray, threshold: float = 0.5
) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRIC_NAMES` on many resamples of one test set at once.

    Parameters
    ----------
    labels : array-like of int, shape (n,)
        True classes, 0 benign and 1 malignant.
    probs : array-like of float, shape (n,)
        Predicted P(malignant).
    weights : array-like of int, shape (n_resamples, n) or (n,)
        How many times each image is drawn in each resample (a bootstrap's counts).
    threshold : float, default=0.5
        As in :func:`binary_metrics`.

    Returns
    -------
    dict of str to ndarray, shape (n_resamples,)
        Per resample, what :func:`binary_metrics` gives on ``np.repeat(labels, w)``,
        ``np.repeat(probs, w)`` (tied scores count one half in the AUC, as in scikit-learn);
        NaN where that metric is undefined.
    """
    y = np.asarray(labels).astype(int)
    p = np.asarray(probs, dtype=float)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    total = w.sum(axis=1)
    if len(y) == 0:
        return {name: np.full(len(w), math.nan) for name in METRIC_NAMES}
    pos, calls = y == 1, p >= threshold
    tp, fn = w @ (pos & calls), w @ (pos & ~calls)
    tn, fp = w @ (~pos & ~calls), w @ (~pos & calls)
    with np.errstate(invalid="ignore", divide="ignore"):
        sens, spec = tp / (tp + fn), tn / (tn + fp)
        balanced = np.where(np.isnan(sens), spec, np.where(np.isnan(spec), sens, (sens + spec) / 2))
        # calibration: per equal-width bin |sum(y - p)| / n is |observed - predicted| * n_b / n
        bins = np.clip((p * 10).astype(int), 0, 9)
        residual = np.zeros((len(y), 10))
        residual[np.arange(len(y)), bins] = y - p
        return {
            "auc": _resampled_auc(pos, p, w),
            "accuracy": (tp + tn) / total,
            "sensitivity": sens,
            "specificity": spec,
            "f1": 2 * tp / (2 * tp + fp + fn),
            "balanced_accuracy": balanced,
            "ece": np.abs(w @ residual).sum(axis=1) / total,
            "brier": w @ (p - y) ** 2 / total,
        }


def counts_by_score(pos: np.ndarray, p: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of counts ``w`` (resamples x images), the weight of positive and of negative
    images at each distinct score of ``p``, in rising score order: ties form one group."""
    order = np.argsort(p, kind="stable")
    sorted_p = p[order]
    starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
    ws, is_pos = w[:, order], pos[order]
    pos_at = np.add.reduceat(ws * is_pos, starts, axis=1)
    neg_at = np.add.reduceat(ws * ~is_pos, starts, axis=1)
    return pos_at, neg_at


def concordance_counts(
    pos: np.ndarray, p: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of counts ``w`` (resamples x images): the weighted number of malignant-benign pairs
    the scores ``p`` order correctly (ties count one half) and the number of such pairs; their
    ratio is the Mann-Whitney AUC, and sums of both over folds give a fold-stratified AUC."""
    pos_at, neg_at = counts_by_score(pos, p, w)
    neg_below = np.cumsum(neg_at, axis=1) - neg_at
    pairs = pos_at.sum(axis=1) * neg_at.sum(axis=1)
    wins = (pos_at * (neg_below + 0.5 * neg_at)).sum(axis=1)
    return wins, pairs


def _resampled_auc(pos: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC per row of counts ``w``: scores grouped by value, ties count one half."""
    wins, pairs = concordance_counts(pos, p, w)
    return np.divide(wins, pairs, out=np.full(len(w), math.nan), where=pairs > 0)


# -- along training ------------------------------------------------------------------------------


def time_to_target(
    val_auc: Sequence[float], costs: dict[str, Sequence[float]], target: float
) -> dict[str, float]:
    """What training spent until the first epoch whose validation AUC reaches ``target``.

    Parameters
    ----------
    val_auc : sequence of float
        Validation AUC per epoch, in epoch order (NaN: undefined, never reaches the target).
    costs : dict of str to sequence of float
        Per-epoch costs by name (e.g. seconds, forward-backward passes), aligned with ``val_auc``.
    target : float
        The validation AUC to reach (``>=``).

    Returns
    -------
    dict of str to float
        Each cost summed over the epochs up to and including the first one at the target; empty
        when no epoch reaches it (time to target is then undefined, not infinite).
    """
    for i, value in enumerate(val_auc):
        if math.isfinite(value) and value >= target:
            return {
                name: float(np.sum(np.asarray(c[: i + 1], dtype=float)))
                for name, c in costs.items()
            }
    return {}


@dataclass(frozen=True)
class TargetSummary:
    """Time to target over runs, where a run that never reached the target counts as never."""

    n_runs: int
    n_reached: int
    share_reached: float
    median: float  # misses count as infinite: inf unless more than half of the runs reached it
    median_of_reached: float  # over the runs that reached it only: for the CSV, never a verdict


def target_summary(times) -> TargetSummary:
    """Share of runs that reached the target and the median time, a miss counting as never.

    Parameters
    ----------
    times : array-like of float
        Per run, its time (or cost) to the target; NaN (or inf) when it never reached it.

    Returns
    -------
    TargetSummary
        ``median`` is the median with every miss set to infinity, as AlgoPerf scores a
        submission that misses a target (Dahl et al. 2023): it is infinite unless more than
        half of the runs reached the target, so an optimizer that reached it once in five runs
        cannot show a shorter time than one that always did. ``median_of_reached`` is the median
        over the runs that reached it (NaN if none), a descriptive column only. No runs: NaN.
    """
    t = np.asarray(times, dtype=float).ravel()
    n = len(t)
    if n == 0:
        return TargetSummary(0, 0, math.nan, math.nan, math.nan)
    reached = t[np.isfinite(t)]
    never = np.where(np.isfinite(t), t, math.inf)
    return TargetSummary(
        n_runs=n,
        n_reached=len(reached),
        share_reached=len(reached) / n,
        median=float(np.median(never)),
        median_of_reached=float(np.median(reached)) if len(reached) else math.nan,
    )


# -- over folds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """Mean, sample standard deviation (ddof=1) and Student-t confidence interval of the mean."""

    mean: float
    std: float
    low: float
    high: float
    n: int  # finite values summarised


def describe(values, confidence: float = 0.95) -> Interval:
    """Summarise a metric over units (folds): mean, sample std and a t interval of the mean.

    Parameters
    ----------
    values : array-like of float
        One value per unit; NaN and infinite values (an undefined AUC) are left out.
    confidence : float, default=0.95
        Coverage of the interval ``mean ± t_{(1 + confidence) / 2, n - 1} * std / sqrt(n)``.

    Returns
    -------
    Interval
        With ``n`` finite values: ``n == 0`` gives NaN everywhere; ``n == 1`` gives the value as
        mean and NaN std and bounds (one value has no spread to estimate); ``n >= 2`` gives
        ``numpy.mean``, ``numpy.std(ddof=1)`` and the t bounds.
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(v.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, math.nan, 1)
    std = float(v.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Interval(mean, std, mean - half, mean + half, n)


#: Why a headline interval is not shown (``FoldInterval.degenerate``); never print "[x, x]".
SAME_ON_EVERY_FOLD = "the same value on every fold"
PREDICTS_ONE_CLASS = "the model predicts one class"
ONE_FOLD = "one fold"


@dataclass(frozen=True)
class FoldInterval:
    """Headline mean over folds with its t interval, or the reason there is none."""

    mean: float
    std: float
    low: float  # NaN when degenerate
    high: float
    n: int
    degenerate: str  # '' or why there is no interval (SAME_ON_EVERY_FOLD, ...)


def fold_interval(
    values,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
    ratio: float = 0.0,
    one_class: bool = False,
) -> FoldInterval:
    """The headline interval of a metric's mean over folds: it reflects retraining, unlike an
    interval over the test images of fixed models.

    Parameters
    ----------
    values : array-like of float
        One value per fold (seeds averaged); non-finite values are left out.
    confidence : float
        Coverage of the interval.
    bounds : (float, float), optional
        What the metric can take (``(0, 1)`` for AUC and rates); the interval is clipped to it.
        ``None`` for unbounded quantities (differences, losses): no clipping.
    ratio : float
        ``0`` (default): :func:`describe`'s t interval ``mean ± t_{n−1} · s / √n``. ``n_test /
        n_train``: Nadeau & Bengio's corrected interval ``mean ± t_{n−1} · sqrt((1/n + ratio) ·
        s²)`` of the expected performance of a model trained on this much data; folds share
        training images, so the plain interval is too narrow for that (a coverage test shows
        it: about 86% at 95% with 5 folds).
    one_class : bool
        The model predicts one class on every fold (``predicts_one_class``): its threshold
        metrics are the class shares, and their interval says nothing about the model.

    Returns
    -------
    FoldInterval
        ``mean`` and ``std`` as :func:`describe`; ``low``/``high`` NaN with a ``degenerate``
        reason when every fold has the same value, the model predicts one class, or there is one
        fold.
    """
    ci = describe(values, confidence)
    reason = ""
    if one_class:
        reason = PREDICTS_ONE_CLASS
    elif ci.n == 1:
        reason = ONE_FOLD
    elif ci.n >= 2 and ci.std == 0:
        reason = SAME_ON_EVERY_FOLD
    if reason or ci.n < 2:
        return FoldInterval(ci.mean, ci.std, math.nan, math.nan, ci.n, reason)
    half = float(sps.t.ppf(0.5 + confidence / 2, ci.n - 1)) * ci.std * math.sqrt(1 / ci.n + ratio)
    low, high = ci.mean - half, ci.mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return FoldInterval(ci.mean, ci.std, low, high, ci.n, "")


def predicts_one_class(probs, threshold: float = 0.5) -> bool:
    """Whether every P(malignant) falls on the same side of ``threshold`` (one predicted class)."""
    calls = np.asarray(probs, dtype=float) >= threshold
    return bool(len(calls)) and bool(calls.all() or not calls.any())


@dataclass(frozen=True)
class Quartiles:
    """Median and interquartile range: how positive quantities (times, curvatures) are summarised,
    so that no bound falls below zero when every value is positive."""

    median: float
    q25: float
    q75: float
    n: int  # finite values summarised


def quartiles(values) -> Quartiles:
    """``numpy.quantile`` (linear interpolation) at 0.25, 0.5, 0.75 of the finite values."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return Quartiles(math.nan, math.nan, math.nan, 0)
    q25, median, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    return Quartiles(float(median), float(q25), float(q75), len(v))


def describe_by(frame: pd.DataFrame, by: Sequence[str], value: str = "value") -> pd.DataFrame:
    """Mean, sample std, quartiles and count of ``frame[value]`` per group: curves summarised over
    units.

    Parameters
    ----------
    frame : DataFrame
        Long table, one row per (unit, point of the curve), e.g. per (run, epoch).
    by : sequence of str
        Columns that name one point of one curve, e.g. ``["model", "optimizer", "step"]``.
    value : str, default="value"
        Column summarised; non-finite values are left out.

    Returns
    -------
    DataFrame
        Columns ``*by, mean, std, q25, q75, n``, sorted by ``by``; ``std`` follows
        :func:`describe` (NaN below two values), ``q25``/``q75`` :func:`quartiles` (the band a
        figure draws: inside the values' range, so never below zero for a loss). ``mean`` is
        pandas' grouped mean, whose compensated summation can differ from :func:`describe`'s in
        the last digit.
    """
    values = pd.to_numeric(frame[value], errors="coerce")
    values = values.where(np.isfinite(values))
    groups = frame.assign(**{value: values}).groupby(list(by), sort=True)[value]
    out = groups.agg(
        mean="mean",
        std=lambda v: describe(v).std,
        q25=lambda v: quartiles(v).q25,
        q75=lambda v: quartiles(v).q75,
        n="count",
    )
    return out.reset_index()
