"""The radiologists' BI-RADS calls as a yardstick: reader operating points, the model at the
readers' specificity and sensitivity, and agreement between the two readers.

A reader calls a lesion malignant at BI-RADS 4a or above (a plain "4" counts as positive). Values
that are empty are *missing*; values that are not a BI-RADS assessment category are *stray* (the
real sheet holds one). Both are left out of the reader's numbers and counted, never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import cohen_kappa_score, roc_curve

from medbench.data import birads
from medbench.data.cells import is_blank
from medbench.metrics import confusion_counts

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


@dataclass(frozen=True)
class Agreement:
    """Cohen's kappa between the two readers on images both assessed."""

    kappa_calls: float  # on the binary calls (≥ 4a)
    kappa_categories: float  # on the categories, unweighted
    n: int
    percent_agreement: float  # share of equal binary calls


def reader_agreement(reader1, reader2) -> Agreement:
    """Cohen's kappa (scikit-learn) on the images where both readers gave a category."""
    r1, r2 = reader_calls(reader1), reader_calls(reader2)
    both = r1.valid & r2.valid
    n = int(both.sum())
    if n == 0:
        return Agreement(math.nan, math.nan, 0, math.nan)
    c1, c2 = r1.positive[both].astype(int), r2.positive[both].astype(int)
    k1 = [c for c, keep in zip(r1.categories, both, strict=True) if keep]
    k2 = [c for c, keep in zip(r2.categories, both, strict=True) if keep]
    return Agreement(
        kappa_calls=_kappa(c1, c2),
        kappa_categories=_kappa(k1, k2),
        n=n,
        percent_agreement=float((c1 == c2).mean()),
    )


def _kappa(a, b) -> float:
    # sklearn gives NaN (with a warning) when both raters use one value only
    if len(set(a) | set(b)) < 2:
        return math.nan
    return float(cohen_kappa_score(a, b))
