"""The radiologists' BI-RADS calls as a yardstick: reader operating points, the model at the
readers' specificity and sensitivity, and agreement between the two readers.

A reader calls a lesion malignant at BI-RADS 4a or above (a plain "4" counts as positive). Values
that are empty are *missing*; values that are not a BI-RADS assessment category are *stray* (the
real sheet holds one). Both are left out of the reader's numbers and counted, never guessed.
The tables here (:func:`images`, :func:`readers_table`, :func:`readers_by_model`) serve several
parts of the report: the readers' section, the ROC figures and external validation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from medbench.data.read import birads
from medbench.data.read.cells import is_blank
from medbench.metrics import confusion_counts, counts_by_score
from medbench.report.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    percentile_interval,
    stratified_counts,
    wilson_interval,
)

READERS = ("birads_reader1", "birads_reader2")


@dataclass(frozen=True)
class ReaderCalls:
    """One reader's calls on a list of images: category, positive flag and what was left out."""

    categories: list[str | None]
    positive: np.ndarray  # float: 1.0 positive, 0.0 negative, NaN left out
    n_missing: int
    n_stray: int

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.positive)


def reader_calls(values) -> ReaderCalls:
    """Normalise a reader's column and count missing and stray values."""
    cats: list[str | None] = []
    positive = np.full(len(values), np.nan)
    n_missing = n_stray = 0
    for i, value in enumerate(values):
        cat = birads.category(value)
        cats.append(cat)
        call = birads.call(cat)
        if call is None:
            if is_blank(value):
                n_missing += 1
            else:
                n_stray += 1
        else:
            positive[i] = float(call)
    return ReaderCalls(cats, positive, n_missing, n_stray)


@dataclass(frozen=True)
class OperatingPoint:
    """Sensitivity and specificity of binary calls, with the confusion counts."""

    sensitivity: float
    specificity: float
    tp: int
    fn: int
    tn: int
    fp: int

    @property
    def n(self) -> int:
        return self.tp + self.fn + self.tn + self.fp


def operating_point(labels, calls) -> OperatingPoint:
    """Operating point of binary ``calls`` (1 = malignant) against ``labels``."""
    tp, fn, tn, fp = confusion_counts(labels, calls)
    sens = tp / (tp + fn) if tp + fn else math.nan
    spec = tn / (tn + fp) if tn + fp else math.nan
    return OperatingPoint(sens, spec, tp, fn, tn, fp)


_TOL = 1e-12


def _best_given_floor(
    labels, probs, floor: float, floor_on_specificity: bool
) -> tuple[float, float]:
    """Best sensitivity (or specificity) among thresholds that keep the other at least ``floor``;
    ties go to the threshold better on the floored measure. Returns (value, threshold)."""
    y = np.asarray(labels).astype(int)
    if len(np.unique(y)) < 2 or not math.isfinite(floor):
        return math.nan, math.nan
    fpr, tpr, thr = roc_curve(y, np.asarray(probs, dtype=float), drop_intermediate=False)
    spec = 1 - fpr
    kept, gain = (spec, tpr) if floor_on_specificity else (tpr, spec)
    cand = np.flatnonzero(kept >= floor - _TOL)
    best = int(cand[np.lexsort((kept[cand], gain[cand]))[-1]])
    return float(gain[best]), float(thr[best])


def sensitivity_at_specificity(labels, probs, specificity: float) -> tuple[float, float]:
    """Highest model sensitivity among thresholds whose specificity is at least ``specificity``.

    Returns (sensitivity, threshold); the model is called positive at ``prob >= threshold``.
    """
    return _best_given_floor(labels, probs, specificity, floor_on_specificity=True)


def specificity_at_sensitivity(labels, probs, sensitivity: float) -> tuple[float, float]:
    """Highest model specificity among thresholds whose sensitivity is at least ``sensitivity``."""
    return _best_given_floor(labels, probs, sensitivity, floor_on_specificity=False)


def sensitivity_at_specificity_resampled(labels, probs, calls, counts) -> np.ndarray:
    """:func:`sensitivity_at_specificity` at the reader's own specificity, on many resamples.

    Parameters
    ----------
    labels, probs : array-like, shape (n,)
        True classes and the model's P(malignant).
    calls : array-like of int, shape (n,)
        The reader's calls (1 = malignant) on the same images.
    counts : array-like of int, shape (n_resamples, n)
        How often each image is drawn in each resample (:func:`~medbench.report.stats.stratified_counts`).

    Returns
    -------
    ndarray, shape (n_resamples,)
        Per resample, the model's best sensitivity among thresholds whose specificity is at least
        the reader's specificity in that resample: both vary with the images drawn.
    """
    y = np.asarray(labels).astype(int)
    p = np.asarray(probs, dtype=float)
    w = np.atleast_2d(np.asarray(counts, dtype=float))
    pos, negative_call = y == 1, np.asarray(calls).astype(int) == 0
    pos_at, neg_at = counts_by_score(pos, p, w)
    n_pos, n_neg = pos_at.sum(axis=1, keepdims=True), neg_at.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        # threshold at each distinct score (called positive at >= it), then +inf (no positive)
        spec = np.hstack([(np.cumsum(neg_at, axis=1) - neg_at) / n_neg, np.ones_like(n_neg)])
        sens = np.hstack(
            [(n_pos - np.cumsum(pos_at, axis=1) + pos_at) / n_pos, np.zeros_like(n_pos)]
        )
        floor = (w @ (~pos & negative_call))[:, None] / n_neg
    first = np.argmax(spec >= floor - _TOL, axis=1)  # sens falls as the threshold rises
    out = sens[np.arange(len(w)), first]
    out[(n_pos[:, 0] == 0) | (n_neg[:, 0] == 0)] = math.nan
    return out


#: Positions of the BI-RADS assessment categories on their ordinal scale, for weighted kappa; a
#: plain "4" (no subcategory given) sits with 4b, the middle of category 4.
ORDINAL = {"1": 0, "2": 1, "3": 2, "4a": 3, "4": 4, "4b": 4, "4c": 5, "5": 6, "6": 7}
#: The kappas of reader agreement: on the calls, on the categories unweighted, and on the ordinal
#: categories with linear and quadratic weights.
KAPPAS = ("kappa_calls", "kappa_categories", "kappa_linear", "kappa_quadratic")


def kappa_from_confusion(confusion, weights: str = "none") -> np.ndarray:
    """Cohen's kappa of confusion matrices ``(..., K, K)`` as scikit-learn computes it:
    ``1 − Σ w·O / Σ w·E`` with ``E`` the product of the margins over ``n`` and ``w`` the
    disagreement weights (``none``: 0 on the diagonal, 1 elsewhere; ``linear``: |i − j|;
    ``quadratic``: (i − j)²). NaN where the expected disagreement is 0 (one category only)."""
    o = np.asarray(confusion, dtype=float)
    i, j = np.indices(o.shape[-2:])
    w = {"none": (i != j).astype(float), "linear": np.abs(i - j), "quadratic": (i - j) ** 2.0}[
        weights
    ]
    n = o.sum(axis=(-2, -1))[..., None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = o.sum(axis=-1)[..., :, None] * o.sum(axis=-2)[..., None, :] / n
        observed_w, expected_w = (w * o).sum(axis=(-2, -1)), (w * expected).sum(axis=(-2, -1))
        return np.where(expected_w > 0, 1 - observed_w / expected_w, math.nan)


@dataclass(frozen=True)
class Agreement:
    """Agreement between the two readers on the images both assessed; every kappa of
    :data:`KAPPAS` with its percentile bootstrap interval over those images."""

    n: int
    percent_agreement: float  # share of equal binary calls
    kappa: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]

    @property
    def kappa_calls(self) -> float:  # on the binary calls (>= 4a)
        return self.kappa["kappa_calls"]

    @property
    def kappa_categories(self) -> float:  # on the categories, unweighted
        return self.kappa["kappa_categories"]


def _codes(values: list) -> tuple[np.ndarray, int]:
    levels = sorted(set(values))
    index = {v: k for k, v in enumerate(levels)}
    return np.array([index[v] for v in values], dtype=int), len(levels)


def reader_agreement(
    reader1,
    reader2,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = 0.95,
) -> Agreement:
    """Cohen's kappas on the images where both readers gave a category, with a percentile
    bootstrap over those images (``stratified_counts`` with one stratum)."""
    r1, r2 = reader_calls(reader1), reader_calls(reader2)
    both = r1.valid & r2.valid
    n = int(both.sum())
    nan = dict.fromkeys(KAPPAS, math.nan)
    if n == 0:
        return Agreement(0, math.nan, nan, nan, nan)
    k1 = [c for c, keep in zip(r1.categories, both, strict=True) if keep]
    k2 = [c for c, keep in zip(r2.categories, both, strict=True) if keep]
    calls = (r1.positive[both].astype(int), r2.positive[both].astype(int), 2)
    cats, n_cats = _codes(k1 + k2)
    ordinal = np.array([ORDINAL[c] for c in k1 + k2])
    scales = {
        "kappa_calls": (calls, "none"),
        "kappa_categories": ((cats[:n], cats[n:], n_cats), "none"),
        "kappa_linear": ((ordinal[:n], ordinal[n:], len(set(ORDINAL.values()))), "linear"),
        "kappa_quadratic": ((ordinal[:n], ordinal[n:], len(set(ORDINAL.values()))), "quadratic"),
    }
    counts = np.vstack(
        [np.ones(n, dtype=np.int32), stratified_counts(np.zeros(n), n_resamples, seed)]
    )
    kappa, low, high = {}, {}, {}
    for name, ((a, b, levels), weights) in scales.items():
        pairs = np.zeros((n, levels * levels))
        pairs[np.arange(n), a * levels + b] = 1
        values = kappa_from_confusion((counts @ pairs).reshape(-1, levels, levels), weights)
        kappa[name] = float(values[0])
        low[name], high[name] = percentile_interval(values[1:], confidence)
    return Agreement(n, float((calls[0] == calls[1]).mean()), kappa, low, high)


# -- tables of the readers ----------------------------------------------------------------------


def images(preds: pd.DataFrame) -> pd.DataFrame:
    """One row per test image (the readers' calls do not depend on the model)."""
    cols = [c for c in ("id", "site", "label", *READERS) if c in preds]
    return preds[cols].drop_duplicates("id").sort_values("id").reset_index(drop=True)


def readers_in(frame: pd.DataFrame) -> list[str]:
    """The readers the data has: those of :data:`READERS` with a column holding at least one
    value (BUS-BRA has one reader: its empty second column is no reader)."""
    return [r for r in READERS if r in frame and not frame[r].map(is_blank).all()]


def readers_table(imgs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per reader the data has (:func:`readers_in`): images, calls used, missing and stray values
    left out, operating point with Wilson intervals of its sensitivity and specificity."""
    rows = []
    for reader in readers_in(imgs):
        values = imgs[reader].tolist()
        calls = reader_calls(values)
        valid = calls.valid
        point = operating_point(imgs["label"].to_numpy()[valid], calls.positive[valid].astype(int))
        sens_ci = wilson_interval(point.tp, point.tp + point.fn, confidence)
        spec_ci = wilson_interval(point.tn, point.tn + point.fp, confidence)
        rows.append(
            {
                "reader": reader,
                "n_images": len(imgs),
                "n_used": int(valid.sum()),
                "n_missing": calls.n_missing,
                "n_stray": calls.n_stray,
                "sensitivity": point.sensitivity,
                "sensitivity_ci_low": sens_ci[0],
                "sensitivity_ci_high": sens_ci[1],
                "specificity": point.specificity,
                "specificity_ci_low": spec_ci[0],
                "specificity_ci_high": spec_ci[1],
                "tp": point.tp,
                "fn": point.fn,
                "tn": point.tn,
                "fp": point.fp,
            }
        )
    return pd.DataFrame(rows)


def readers_by_model(preds: pd.DataFrame) -> pd.DataFrame:
    """:func:`readers_table` on the test images of each model (the points of its ROC figure)."""
    frames = []
    for model, part in preds.groupby("model", sort=False):
        table = readers_table(images(part))
        table.insert(0, "model", model)
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
