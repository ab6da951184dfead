"""Paired differences per (repeat, fold) unit, read straight from an experiment's record: what the
cross-experiment comparison (:mod:`medbench.report.compare`) and the planning of repeats
(:mod:`medbench.report.plan`) need, without the bootstrap and figures of a whole report.

A unit is one (repeat, fold) of a (repeated) cross-validation; its score is the test metric
recomputed from each finished fold run's ``predictions.csv`` (as the report does), averaged over
the seeds both optimizers finished in it. The difference B − A of a unit, with its
``n_test / n_train``, is what the corrected repeated k-fold t-test takes
(:func:`~medbench.report.stats.corrected_resampled_ttest`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medbench.metrics import auc
from medbench.report.stats import CorrectedTest, corrected_resampled_ttest
from medbench.tracking import ExperimentRecord
from medbench.tracking.reader import param_column

#: A unit of analysis: one fold of one repeat of the cross-validation.
UNIT = ["repeat", "fold"]
_JOB = ["model", "optimizer", *UNIT, "seed"]
_SCORE_COLUMNS = [*_JOB, "run_id", "score", "n_test", "n_train", "seconds"]


def _metric(record: ExperimentRecord, name: str) -> pd.Series:
    folds = record.folds
    return pd.to_numeric(folds.get(name, pd.Series(math.nan, index=folds.index)), errors="coerce")


def unit_scores(record: ExperimentRecord) -> pd.DataFrame:
    """One row per finished fold run with test predictions: its job (model, optimizer, repeat,
    fold, seed), ``run_id``, ``score`` (the test AUC recomputed from its predictions), ``n_test``,
    ``n_train`` (its param; NaN when not logged) and ``seconds`` (the compute it took:
    ``train_time_s``, plus ``tuning_time_s`` and ``flatness_time_s`` when logged; loading data
    and writing to the store come on top). A job run twice counts once (its latest finished
    run)."""
    folds, preds = record.folds, record.predictions
    if folds.empty or preds.empty or "run_id" not in preds:
        return pd.DataFrame(columns=_SCORE_COLUMNS)
    runs = folds.assign(
        repeat=folds.get("repeat", 1),  # a record read without repeats
        n_train=pd.to_numeric(folds.get(param_column("n_train")), errors="coerce"),
        seconds=_metric(record, "train_time_s")
        + _metric(record, "tuning_time_s").fillna(0.0)
        + _metric(record, "flatness_time_s").fillna(0.0),
    )
    runs = runs[(runs["status"] == "FINISHED") & runs["run_id"].isin(set(preds["run_id"]))]
    runs = runs.sort_values("end_time").drop_duplicates(_JOB, keep="last")
    scored = {
        run_id: (
            auc(part["label"].to_numpy(int), part["prob_malignant"].to_numpy(float)),
            len(part),
        )
        for run_id, part in preds.groupby("run_id", sort=False)
    }
    runs = runs.assign(
        score=[scored[r][0] for r in runs["run_id"]],
        n_test=[scored[r][1] for r in runs["run_id"]],
        seed=runs["seed"].fillna(0).astype(int),
    )
    return runs[_SCORE_COLUMNS].sort_values(_JOB).reset_index(drop=True)


def pairs(optimizers: Sequence[str]) -> list[tuple[str, str]]:
    """Every later optimizer (B) against every earlier one (A), in the given order (the
    report's pairs)."""
    return [(a, b) for i, a in enumerate(optimizers) for b in optimizers[i + 1 :]]


def paired_units(scores: pd.DataFrame, model: str, opt_a: str, opt_b: str) -> pd.DataFrame:
    """Per (repeat, fold) unit that both optimizers finished: ``a``, ``b`` (scores averaged over
    the seeds both finished there), ``diff`` = b − a, ``ratio`` = n_test / n_train (mean over
    those runs; without a logged ``n_train``, the repeat's other test images stand in) and
    ``n_seeds``."""
    columns = [*UNIT, "a", "b", "diff", "ratio", "n_seeds"]
    mine = scores[scores["model"] == model]
    sides = [mine[mine["optimizer"] == o].set_index([*UNIT, "seed"]) for o in (opt_a, opt_b)]
    common = sides[0].index.intersection(sides[1].index)
    if common.empty:
        return pd.DataFrame(columns=columns)
    a, b = (s.loc[common] for s in sides)
    both = pd.concat([a, b])
    # the images of a repeat's other folds: what the model could have been fit on
    per_fold = both.groupby(["repeat", "seed", "fold"])["n_test"].first()
    total = per_fold.groupby(level=["repeat", "seed"]).sum()
    where = pd.MultiIndex.from_arrays(
        [both.index.get_level_values(k) for k in ("repeat", "seed")], names=["repeat", "seed"]
    )
    fallback = total.reindex(where).to_numpy() - both["n_test"].to_numpy()
    n_train = both["n_train"].fillna(pd.Series(fallback, index=both.index))
    ratio = (both["n_test"] / n_train).groupby(level=UNIT).mean()
    out = pd.DataFrame(
        {
            "a": a["score"].groupby(level=UNIT).mean(),
            "b": b["score"].groupby(level=UNIT).mean(),
            "ratio": ratio,
            "n_seeds": a.groupby(level=UNIT).size(),
        }
    )
    out["diff"] = out["b"] - out["a"]
    return out.reset_index()[columns]


@dataclass(frozen=True)
class PairedDifference:
    """B − A of one model over the (repeat, fold) units of one experiment, with its corrected
    repeated k-fold t-test."""

    model: str
    optimizer_a: str
    optimizer_b: str
    units: pd.DataFrame  # paired_units
    n_repeats: int
    k: int  # folds per repeat (the most any repeat has)
    ratio: float  # mean n_test / n_train over the units
    test: CorrectedTest

    @property
    def var_d(self) -> float:
        """Sample variance (ddof 1) of the finite unit differences; NaN with fewer than two."""
        d = self.units["diff"].to_numpy(float)
        d = d[np.isfinite(d)]
        return float(d.var(ddof=1)) if len(d) > 1 else math.nan


def paired_difference(scores: pd.DataFrame, model: str, opt_a: str, opt_b: str) -> PairedDifference:
    """:func:`paired_units` of one pair, tested with the corrected repeated k-fold t-test (the
    mean ratio over its units)."""
    units = paired_units(scores, model, opt_a, opt_b)
    finite = units[np.isfinite(units["diff"].to_numpy(float))]
    ratio = float(finite["ratio"].mean()) if len(finite) else math.nan
    per_repeat = finite.groupby("repeat").size()
    return PairedDifference(
        model=model,
        optimizer_a=opt_a,
        optimizer_b=opt_b,
        units=units,
        n_repeats=int(finite["repeat"].nunique()),
        k=int(per_repeat.max()) if len(per_repeat) else 0,
        ratio=ratio,
        test=corrected_resampled_ttest(finite["diff"].to_numpy(float), ratio),
    )
