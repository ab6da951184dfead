"""The report's vocabulary: metric labels, the optimizer order, optimizer colours and reader styles.

One home for every name a reader sees, so that a table header, a figure axis and a legend say the
same thing, and an optimizer has the same place and colour in every table and figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medbench.optim.registry import list_optimizers

# the colour table lives with the tracking layer, which gives runs the same colours in MLflow

#: How a metric is named inside a sentence or an axis label ("Test accuracy per fold").
METRIC_LABELS = {
    "auc": "AUC",
    "accuracy": "accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "f1": "F1",
    "balanced_accuracy": "balanced accuracy",
    "ece": "ECE",
    "brier": "Brier",
}


def metric_label(metric: str, capitalised: bool = False) -> str:
    """The metric's label; ``capitalised`` for a table header ("Accuracy", "AUC")."""
    label = METRIC_LABELS.get(metric, metric)
    return label[:1].upper() + label[1:] if capitalised else label


def ordered(found: Iterable, preferred: Iterable[str] = ()) -> list[str]:
    """``found`` names in ``preferred`` order first, then the rest sorted."""
    found = [str(x) for x in dict.fromkeys(found) if isinstance(x, str) or pd.notna(x)]
    first = [p for p in dict.fromkeys(preferred) if p in found]
    return first + sorted(x for x in found if x not in first)


#: The order a reader expects: the baseline, the SAM family, then the other plain optimizers.
READING_ORDER = ("adam", "sam", "gcsam", "asam", "sgd", "adamw")
#: Every optimizer of the registry, in :data:`READING_ORDER` (one registered later follows, in
#: alphabetical order): the order of optimizers the config does not list.
KNOWN_OPTIMIZERS = tuple(ordered(list_optimizers(), READING_ORDER))


def in_order(frame: pd.DataFrame, models: Iterable[str], optimizers: Iterable[str]) -> pd.DataFrame:
    """``frame``'s rows with models and optimizers in the report's order (the config's), in every
    column that names one (``model``, ``optimizer``, ``optimizer_a``, ``optimizer_b``); the order
    of rows is otherwise kept. Names outside the order go last."""
    if frame is None or frame.empty:
        return frame
    ranks = {"model": list(models)} | {
        c: list(optimizers) for c in ("optimizer", "optimizer_a", "optimizer_b")
    }
    keys = [c for c in ranks if c in frame.columns]
    if not keys:
        return frame
    rank = [
        frame[c].map(lambda v, names=ranks[c]: names.index(v) if v in names else len(names))
        for c in keys
    ]
    # np.lexsort sorts by its last key first: models, then optimizers, then the row as it was
    return frame.iloc[np.lexsort([np.arange(len(frame)), *rank[::-1]])].reset_index(drop=True)


@dataclass(frozen=True)
class ReaderStyle:
    """How a radiologist is named and drawn: readers are black and grey, never an optimizer colour."""

    name: str
    marker: str
    colour: str


READER_STYLES = {
    "birads_reader1": ReaderStyle("Reader 1", "s", "#000000"),
    "birads_reader2": ReaderStyle("Reader 2", "D", "#777777"),
}


def reader_style(reader: str) -> ReaderStyle:
    """The reader's style; a reader column without one is named by the column, a black circle."""
    return READER_STYLES.get(reader, ReaderStyle(reader, "o", "#000000"))
