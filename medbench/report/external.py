"""External validation: every fold's selected checkpoint tested on datasets it never saw, with the
training data's preprocessing (``predictions_external_{dataset}.csv`` of each fold run).

A unit is one finished fold run, as for the test folds; on an external dataset every unit sees
the same images, so units compare checkpoints, not test sets. Per (model, optimizer, dataset)
the tables give the internal test AUC beside the external one (mean over the fold checkpoints
with a t interval), the gap between them on the same checkpoints, and the AUC of the
checkpoints' mean probability with a bootstrap interval over the external images (the only
interval when there is a single checkpoint, as with ``data.folds: none``). Optimizers are
compared on the external set exactly as on the test folds (:func:`results.paired`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from medbench.report import results, stats
from medbench.tracking import ExperimentRecord

#: External metrics of the summary table, each as mean, std and t interval over checkpoints.
SUMMARY_METRICS = ("auc", "accuracy", "sensitivity", "specificity")


@dataclass
class ExternalAnalysis:
    """The numbers of the report's External validation section (empty without external data)."""

    datasets: list[str]
    #: per (unit, dataset): n_test, n_malignant, every metric, and the unit's internal test AUC
    per_unit: pd.DataFrame
    #: per (model, optimizer, dataset): internal_auc_*, {metric}_* over checkpoints, gap_auc_*,
    #: mean_prob_auc with its bootstrap interval, n_images, n_malignant
    summary: pd.DataFrame
    paired: pd.DataFrame  # results.paired on each external dataset, with a dataset column
    roc: pd.DataFrame  # results.mean_roc on each external dataset, with a dataset column
    readers: (
        pd.DataFrame
    )  # results.readers_by_model on each external dataset, with a dataset column

    @property
    def empty(self) -> bool:
        return self.per_unit.empty


def tested_runs(record: ExperimentRecord) -> pd.DataFrame:
    """The ``run_id`` of every run with test predictions, internal or external: a run trained with
    ``data.folds: none`` is tested on external data only, and still counts."""
    frames = [f[["run_id"]] for f in (record.predictions, record.external) if "run_id" in f]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run_id"])


def analyse_external(
    external: pd.DataFrame,
    units: pd.DataFrame,
    internal: pd.DataFrame,
    models: list[str],
    optimizers: list[str],
    threshold: float,
) -> ExternalAnalysis:
    """The external-validation numbers.

    Parameters
    ----------
    external : DataFrame
        :attr:`ExperimentRecord.external`: predictions on external datasets, with ``dataset``.
    units : DataFrame
        The usable units (``Inventory.units``).
    internal : DataFrame
        The units' metrics on their test folds (``Analysis.per_unit``).
    models, optimizers : list of str
        In report order.
    threshold : float
        P(malignant) called malignant.
    """
    preds = results.unit_predictions(external, units) if not external.empty else pd.DataFrame()
    if preds.empty or "dataset" not in preds:
        empty = pd.DataFrame()
        return ExternalAnalysis([], empty, empty, empty, empty, empty)
    datasets = sorted(preds["dataset"].unique())
    per_unit, paired, roc, readers = [], [], [], []
    for name in datasets:
        part = preds[preds["dataset"] == name]
        metrics = results.unit_metrics(part, threshold).assign(dataset=name)
        per_unit.append(metrics)
        paired.append(results.paired(metrics, models, optimizers).assign(dataset=name))
        roc.append(results.mean_roc(part).assign(dataset=name))
        readers.append(results.readers_by_model(part).assign(dataset=name))
    per_unit_df = pd.concat(per_unit, ignore_index=True)
    own = internal[["run_id", "auc"]].rename(columns={"auc": "internal_auc"})
    per_unit_df = per_unit_df.merge(own, on="run_id", how="left")
    return ExternalAnalysis(
        datasets=datasets,
        per_unit=per_unit_df,
        summary=_summary(per_unit_df, preds, models, optimizers),
        paired=pd.concat(paired, ignore_index=True),
        roc=pd.concat(roc, ignore_index=True),
        readers=pd.concat(readers, ignore_index=True),
    )


def _summary(
    per_unit: pd.DataFrame, preds: pd.DataFrame, models: list[str], optimizers: list[str]
) -> pd.DataFrame:
    rows = []
    for name in sorted(per_unit["dataset"].unique()):
        for model in models:
            for opt in optimizers:
                mine = per_unit[
                    (per_unit["dataset"] == name)
                    & (per_unit["model"] == model)
                    & (per_unit["optimizer"] == opt)
                ]
                if mine.empty:
                    continue
                seen = preds[
                    (preds["dataset"] == name)
                    & (preds["model"] == model)
                    & (preds["optimizer"] == opt)
                ]
                # each image's probability averaged over the checkpoints (folds and seeds)
                mean = seen.groupby("id").agg(
                    label=("label", "first"), p=("prob_malignant", "mean")
                )
                ci = stats.bootstrap_auc(mean["label"].to_numpy(), mean["p"].to_numpy())
                row = {
                    "model": model,
                    "optimizer": opt,
                    "dataset": name,
                    "n_units": len(mine),
                    "n_images": len(mean),
                    "n_malignant": int(mean["label"].sum()),
                    **stats.interval_columns(mine["internal_auc"], "internal_auc"),
                    **stats.interval_columns(mine["auc"] - mine["internal_auc"], "gap_auc"),
                    "mean_prob_auc": ci.estimate,
                    "mean_prob_auc_ci_low": ci.low,
                    "mean_prob_auc_ci_high": ci.high,
                }
                for metric in SUMMARY_METRICS:
                    row.update(stats.interval_columns(mine[metric], metric))
                rows.append(row)
    return pd.DataFrame(rows)
