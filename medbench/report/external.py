"""External validation: every fold's selected checkpoint tested on datasets it never saw, with the
training data's preprocessing (``predictions_external_{dataset}.csv`` of each fold run).

A unit is one finished fold run, as for the test folds; on an external dataset every unit sees
the same images, so folds compare checkpoints, not test sets. Per (model, optimizer, dataset)
the tables give the internal test AUC beside the external one, the gap between them on the same
checkpoints, and the AUC of the checkpoints' mean probability. As everywhere in the report,
seeds are averaged within a fold first, and the intervals of metrics in [0, 1] are percentile
bootstrap intervals over (here: external) images, so they never leave [0, 1]; the gap, a
difference, has a t interval over folds. Optimizers are compared on the external set with the
tests of the test folds (:func:`results.paired`: corrected t-test, Holm over this dataset's
comparisons, Bayesian correlated t-test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from medbench.metrics import describe, resampled_metrics
from medbench.report import results, stats
from medbench.tracking import ExperimentRecord

#: External metrics of the summary table (mean over folds and its bootstrap interval).
SUMMARY_METRICS = ("auc", "accuracy", "sensitivity", "specificity")


@dataclass
class ExternalAnalysis:
    """The numbers of the report's External validation section (empty without external data)."""

    datasets: list[str]
    #: per (unit, dataset): n_test, n_malignant, every metric, and the unit's internal test AUC
    per_unit: pd.DataFrame
    #: per (model, optimizer, dataset): internal_auc_*, {metric}_*, gap_auc_*, mean_prob_auc
    #: with its bootstrap interval, n_images, n_malignant
    summary: pd.DataFrame
    paired: pd.DataFrame  # results.paired on each external dataset, with a dataset column
    roc: pd.DataFrame  # results.mean_roc on each external dataset, with a dataset column
    readers: pd.DataFrame  # results.readers_by_model per external dataset, with a dataset column

    @property
    def empty(self) -> bool:
        return self.per_unit.empty


def tested_runs(record: ExperimentRecord) -> pd.DataFrame:
    """The ``run_id`` of every run with test predictions, internal or external: a run trained with
    ``data.folds: none`` is tested on external data only, and still counts."""
    frames = [f[["run_id"]] for f in (record.predictions, record.external) if "run_id" in f]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run_id"])


def analyse_external(
    record: ExperimentRecord,
    units: pd.DataFrame,
    internal: pd.DataFrame,
    models: list[str],
    optimizers: list[str],
    threshold: float,
    rope: float,
    n_resamples: int = stats.BOOTSTRAP_RESAMPLES,
) -> ExternalAnalysis:
    """The external-validation numbers.

    Parameters
    ----------
    record : ExperimentRecord
        Its ``external`` predictions (with a ``dataset`` column) and ``folds`` (split sizes).
    units : DataFrame
        The usable units (``Inventory.units``).
    internal : DataFrame
        The units' metrics on their test folds (``Analysis.per_unit``).
    models, optimizers : list of str
        In report order.
    threshold : float
        P(malignant) called malignant.
    rope : float
        Half-width of the region of practical equivalence of the Bayesian comparison.
    n_resamples : int
        Bootstrap resamples of the external images.
    """
    external = record.external
    preds = results.unit_predictions(external, units) if not external.empty else pd.DataFrame()
    if preds.empty or "dataset" not in preds:
        empty = pd.DataFrame()
        return ExternalAnalysis([], empty, empty, empty, empty, empty)
    datasets = sorted(preds["dataset"].unique())
    per_unit, summary, paired, roc, readers = [], [], [], [], []
    own = internal[["run_id", "auc"]].rename(columns={"auc": "internal_auc"})
    for name in datasets:
        part = preds[preds["dataset"] == name]
        metrics = results.unit_metrics(part, threshold, record.folds).merge(
            own, on="run_id", how="left"
        )
        per_unit.append(metrics.assign(dataset=name))
        diffs = results.fold_differences(metrics, models, optimizers)
        paired.append(results.paired(metrics, diffs, models, optimizers, rope).assign(dataset=name))
        roc.append(results.mean_roc(part).assign(dataset=name))
        readers.append(results.readers_by_model(part).assign(dataset=name))
        boot = results.resampling(part, n_resamples)
        summary.append(_summary(name, metrics, part, boot, models, optimizers, threshold))
    return ExternalAnalysis(
        datasets=datasets,
        per_unit=pd.concat(per_unit, ignore_index=True),
        summary=pd.concat(summary, ignore_index=True),
        paired=pd.concat(paired, ignore_index=True),
        roc=pd.concat(roc, ignore_index=True),
        readers=pd.concat(readers, ignore_index=True),
    )


def _summary(
    name: str,
    per_unit: pd.DataFrame,
    preds: pd.DataFrame,
    boot: results.Resampling,
    models: list[str],
    optimizers: list[str],
    threshold: float,
) -> pd.DataFrame:
    folds = results.fold_means(per_unit, ["internal_auc", *SUMMARY_METRICS])
    rows = []
    for model in models:
        for opt in optimizers:
            mine = folds[(folds["model"] == model) & (folds["optimizer"] == opt)]
            if mine.empty:
                continue
            seen = preds[(preds["model"] == model) & (preds["optimizer"] == opt)]
            samples = results.resampled_fold_mean(seen, boot, threshold, SUMMARY_METRICS)
            # each image's probability averaged over the checkpoints (folds and seeds)
            mean = seen.groupby("id").agg(label=("label", "first"), p=("prob_malignant", "mean"))
            y, p = mean["label"].to_numpy(), mean["p"].to_numpy()
            counts = stats.stratified_counts(y.astype(str), boot.n_resamples, boot.seed)
            aucs = resampled_metrics(y, p, counts, threshold)["auc"]
            low, high = stats.percentile_interval(aucs)
            gap = describe(mine["auc"] - mine["internal_auc"])
            row = {
                "model": model,
                "optimizer": opt,
                "dataset": name,
                "n_units": int(mine["n_seeds"].sum()),
                "n_folds": len(mine),
                "n_images": len(mean),
                "n_malignant": int(mean["label"].sum()),
                **results.bounded_columns(mine["internal_auc"], np.array([]), "internal_auc"),
                "gap_auc_mean": gap.mean,
                "gap_auc_std": gap.std,
                "gap_auc_ci_low": gap.low,
                "gap_auc_ci_high": gap.high,
                "gap_auc_n": gap.n,
                "mean_prob_auc": resampled_metrics(y, p, np.ones(len(y)), threshold)["auc"][0],
                "mean_prob_auc_ci_low": low,
                "mean_prob_auc_ci_high": high,
            }
            for metric in SUMMARY_METRICS:
                row.update(results.bounded_columns(mine[metric], samples[metric], metric))
            rows.append(row)
    return pd.DataFrame(rows)
