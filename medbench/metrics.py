"""Classification metrics for binary benign (0) / malignant (1) predictions.

Undefined values are NaN, never an exception: a test fold with a single class has no AUC, and
the report must show it as undefined rather than crash or average it away.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score

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
    """ROC AUC, NaN when only one class is present."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return math.nan
    return float(roc_auc_score(labels, probs))


def confusion_counts(labels: np.ndarray, calls: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fn, tn, fp) of binary ``calls`` (1 = malignant) against ``labels``."""
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
    """Per equal-width bin of P(malignant): (count, mean predicted, observed rate); NaN when empty."""
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
    """ECE of P(malignant): |observed rate - mean predicted| per equal-width bin, weighted by bin size."""
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
    """Every metric of :data:`METRIC_NAMES` for labels in {0, 1} and P(malignant)."""
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


# PROVISIONAL (replaced by the report engineer's helper on merge)
from dataclasses import dataclass  # noqa: E402


@dataclass(frozen=True)
class Interval:
    mean: float
    std: float
    low: float
    high: float
    n: int


def describe(values, confidence: float = 0.95) -> Interval:
    from scipy import stats as sps

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
