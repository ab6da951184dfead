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

#: Assessment categories a reader can give; BI-RADS 0 (incomplete) is not a call and counts as stray.
CATEGORIES = ("1", "2", "3", "4", "4a", "4b", "4c", "5", "6")
POSITIVE = frozenset({"4", "4a", "4b", "4c", "5", "6"})
READERS = ("birads_reader1", "birads_reader2")


def is_missing(value) -> bool:
    """True for an empty cell (None, NaN, empty or blank string)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def normalise_birads(value) -> str | None:
    """The category as one of :data:`CATEGORIES` ("4A" → "4a", 4.0 → "4"), None if it is not one."""
    if is_missing(value):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if not float(value).is_integer():
            return None
        value = str(int(value))
    text = str(value).strip().lower()
    if text.endswith(".0") and text[:-2].isdigit():  # "4.0" from a spreadsheet round trip
        text = text[:-2]
    return text if text in CATEGORIES else None


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
        cat = normalise_birads(value)
        cats.append(cat)
        if cat is None:
            if is_missing(value):
                n_missing += 1
            else:
                n_stray += 1
        else:
            positive[i] = float(cat in POSITIVE)
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
    y = np.asarray(labels).astype(int)
    c = np.asarray(calls).astype(int)
    tp = int(((c == 1) & (y == 1)).sum())
    fn = int(((c == 0) & (y == 1)).sum())
    tn = int(((c == 0) & (y == 0)).sum())
    fp = int(((c == 1) & (y == 0)).sum())
    sens = tp / (tp + fn) if tp + fn else math.nan
    spec = tn / (tn + fp) if tn + fp else math.nan
    return OperatingPoint(sens, spec, tp, fn, tn, fp)


_TOL = 1e-12


def sensitivity_at_specificity(labels, probs, specificity: float) -> tuple[float, float]:
    """Highest model sensitivity among thresholds whose specificity is at least ``specificity``.

    Returns (sensitivity, threshold); the model is called positive at ``prob >= threshold``.
    """
    y = np.asarray(labels).astype(int)
    if len(np.unique(y)) < 2 or not math.isfinite(specificity):
        return math.nan, math.nan
    fpr, tpr, thr = roc_curve(y, np.asarray(probs, dtype=float), drop_intermediate=False)
    spec = 1 - fpr
    cand = np.flatnonzero(spec >= specificity - _TOL)
    best = int(cand[np.lexsort((spec[cand], tpr[cand]))[-1]])  # ties: the more specific
    return float(tpr[best]), float(thr[best])


def specificity_at_sensitivity(labels, probs, sensitivity: float) -> tuple[float, float]:
    """Highest model specificity among thresholds whose sensitivity is at least ``sensitivity``."""
    y = np.asarray(labels).astype(int)
    if len(np.unique(y)) < 2 or not math.isfinite(sensitivity):
        return math.nan, math.nan
    fpr, tpr, thr = roc_curve(y, np.asarray(probs, dtype=float), drop_intermediate=False)
    spec = 1 - fpr
    cand = np.flatnonzero(tpr >= sensitivity - _TOL)
    best = int(cand[np.lexsort((tpr[cand], spec[cand]))[-1]])  # ties: the more sensitive
    return float(spec[best]), float(thr[best])


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
