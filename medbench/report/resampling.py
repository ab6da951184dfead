"""Intervals of bounded metrics: one stratified bootstrap of each model's test images, shared by
every table (so that intervals of differences are paired), the resampled fold means of each
(model, optimizer), and the summary of metrics in [0, 1] over folds with their percentile
bootstrap interval.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medbench.metrics import METRIC_NAMES, describe, quartiles, resampled_metrics
from medbench.report import stats
from medbench.report.units import REPEAT, fold_keys, fold_means

#: Metrics summarised by median and quartiles over folds rather than a bootstrap interval: the
#: ECE estimate is biased upward on small test sets (each bin's |observed − predicted| gains from
#: noise), so its bootstrap distribution lies above the estimate and a percentile interval can
#: miss it altogether.
QUARTILE_METRICS = ("ece",)
#: Metrics summarised with a bootstrap interval: those in [0, 1] but the quartile ones.
BOUNDED_METRICS = tuple(m for m in METRIC_NAMES if m not in QUARTILE_METRICS)


@dataclass(frozen=True)
class Resampling:
    """One stratified bootstrap of each model's test images, shared by every optimizer of the
    model (so that intervals of differences are paired) and every table of the report."""

    ids: dict[str, pd.Index]  # per model: its test image ids, the columns of ``counts``
    counts: dict[str, np.ndarray]  # per model: (n_resamples, n_images) draws
    n_resamples: int
    seed: int

    def columns(self, model: str, ids) -> np.ndarray:
        """The counts of these images of ``model``, in the given order."""
        return self.counts[model][:, self.ids[model].get_indexer(ids)]


def resampling(
    preds: pd.DataFrame,
    n_resamples: int = stats.BOOTSTRAP_RESAMPLES,
    seed: int = stats.BOOTSTRAP_SEED,
) -> Resampling:
    """Per model, :func:`~medbench.report.stats.stratified_counts` of its test images (sorted by
    id) stratified by fold, site and label: every resample keeps each fold's size, class balance
    and sites, as the cross-validation design fixes them. With repeats an image is drawn once per
    resample for all of them (they test the same images), stratified by its fold of the first
    repeat."""
    ids, counts = {}, {}
    for model, part in preds.groupby("model", sort=True):
        first = part.sort_values(REPEAT, kind="stable") if REPEAT in part else part
        images = first.drop_duplicates("id").sort_values("id")
        site = images["site"] if "site" in images else pd.Series("", index=images.index)
        strata = (
            images["fold"].astype(str)
            + "|"
            + site.fillna("").astype(str)
            + "|"
            + images["label"].astype(str)
        )
        ids[model] = pd.Index(images["id"])
        counts[model] = stats.stratified_counts(strata.to_numpy(), n_resamples, seed)
    return Resampling(ids, counts, n_resamples, seed)


def resampled_fold_mean(
    preds: pd.DataFrame, boot: Resampling, threshold: float, metrics
) -> dict[str, np.ndarray]:
    """Per resample, each metric's mean over (repeat, fold) units of its mean over seeds (the
    estimate the tables show), for the predictions of one (model, optimizer) (optionally one
    site's images only)."""
    per_fold: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for (model, *_), fold_part in preds.groupby(["model", *fold_keys(preds)], sort=True):
        seeds = []
        for _, unit in fold_part.groupby("seed", sort=True):
            w = boot.columns(model, unit["id"])
            seeds.append(resampled_metrics(unit["label"], unit["prob_malignant"], w, threshold))
        for m in metrics:
            per_fold[m].append(np.mean([s[m] for s in seeds], axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a metric undefined on every fold
        return {
            m: np.nanmean(np.vstack(v), axis=0) if v else np.full(boot.n_resamples, math.nan)
            for m, v in per_fold.items()
        }


def bounded_columns(
    values, samples: np.ndarray, name: str, confidence: float = 0.95
) -> dict[str, float]:
    """``name_mean``, ``name_std``, ``name_ci_low``, ``name_ci_high``, ``name_n`` of a metric in
    [0, 1]: mean and std over folds (:func:`medbench.metrics.describe`), percentile bootstrap
    interval of that mean over test images (inside [0, 1] like every resample)."""
    ci = describe(values, confidence)
    low, high = stats.percentile_interval(samples, confidence)
    return {
        f"{name}_mean": ci.mean,
        f"{name}_std": ci.std,
        f"{name}_ci_low": low,
        f"{name}_ci_high": high,
        f"{name}_n": ci.n,
    }


def resampled_arms(
    preds: pd.DataFrame, status: pd.DataFrame, boot: Resampling, threshold: float, metrics
) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """:func:`resampled_fold_mean` of every (model, optimizer) of ``status``, computed once for
    all the tables that draw on it (the bootstrap is the analysis's costliest step)."""
    out = {}
    for st in status.itertuples(index=False):
        mine = preds[(preds["model"] == st.model) & (preds["optimizer"] == st.optimizer)]
        out[st.model, st.optimizer] = (
            resampled_fold_mean(mine, boot, threshold, metrics) if len(mine) else {}
        )
    return out


def summarise(
    per_unit: pd.DataFrame,
    status: pd.DataFrame,
    metrics,
    samples: dict[tuple[str, str], dict[str, np.ndarray]],
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per (model, optimizer): mean and std over folds (seeds averaged within each fold) and a
    percentile bootstrap interval over test images of each metric (:func:`bounded_columns`,
    from the arm's resamples in ``samples``, see :func:`resampled_arms`); metrics of
    :data:`QUARTILE_METRICS` get their median and quartiles over folds instead of the interval
    (``_median``, ``_q25``, ``_q75``)."""
    folds = fold_means(per_unit, metrics)
    rows = []
    for st in status.itertuples(index=False):
        part = folds[(folds["model"] == st.model) & (folds["optimizer"] == st.optimizer)]
        arm = samples.get((st.model, st.optimizer), {})
        row = {
            "model": st.model,
            "optimizer": st.optimizer,
            "n_finished": st.n_finished,
            "n_expected": st.n_expected,
            "complete": st.complete,
            "n_folds": len(part),
            "n_seeds": int(part["n_seeds"].max()) if len(part) else 0,
        }
        for m in metrics:
            if m in QUARTILE_METRICS:
                ci, q = describe(part[m]), quartiles(part[m])
                row.update({f"{m}_mean": ci.mean, f"{m}_std": ci.std, f"{m}_median": q.median})
                row.update({f"{m}_q25": q.q25, f"{m}_q75": q.q75, f"{m}_n": q.n})
            else:
                row.update(bounded_columns(part[m], arm.get(m, np.array([])), m, confidence))
        rows.append(row)
    return pd.DataFrame(rows)
