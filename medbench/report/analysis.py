"""Every number of the report, computed once from an :class:`~medbench.tracking.ExperimentRecord`:
the tables, what each figure draws, and the command line's closing summary. Figures, documents and
the summary only format and draw these numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from medbench.report import results, training, vocab
from medbench.report.external import ExternalAnalysis, analyse_external, tested_runs
from medbench.tracking import ExperimentRecord


def config_value(config: dict[str, Any], dotted: str, default=None):
    """``config["a"]["b"]`` for ``"a.b"``, ``default`` when any level is missing."""
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node or node[key] is None:
            return default
        node = node[key]
    return node


@dataclass
class Analysis:
    """The report's numbers; a unit is one finished (model, optimizer, fold, seed) run."""

    models: list[str]
    optimizers: list[str]
    threshold: float
    inventory: results.Inventory
    predictions: pd.DataFrame  # predictions of usable units
    per_unit: pd.DataFrame  # metrics per unit, recomputed from predictions
    performance: pd.DataFrame
    calibration: pd.DataFrame
    pooled: pd.DataFrame
    paired: pd.DataFrame
    paired_folds: pd.DataFrame  # wide per-fold AUC of the paired plot
    confusion: pd.DataFrame
    confusion_shares: pd.DataFrame  # counts and shares of the true class, for the figures
    reliability: pd.DataFrame  # reliability bins per (model, optimizer)
    roc: pd.DataFrame  # mean ROC per (model, optimizer) on a fixed FPR grid
    sites: pd.DataFrame
    images: pd.DataFrame
    readers: pd.DataFrame
    readers_by_model: pd.DataFrame  # reader operating points on each model's test images
    agreement: pd.DataFrame
    vs_readers: pd.DataFrame
    curves: pd.DataFrame
    cost_per_unit: pd.DataFrame
    cost: pd.DataFrame
    flatness_per_unit: pd.DataFrame
    flatness: pd.DataFrame
    landscape: pd.DataFrame
    external: ExternalAnalysis | None = None  # external validation, when there is any


def analyse(record: ExperimentRecord) -> Analysis:
    """Compute every number of the report of ``record``.

    Parameters
    ----------
    record : ExperimentRecord
        The runs, metrics, predictions and artifacts of one experiment, as read by
        :func:`medbench.tracking.load_experiment`.

    Returns
    -------
    Analysis
        Every table, figure input and summary number; metrics are recomputed from the runs'
        ``predictions.csv``, never taken from the metrics the runs logged.
    """
    folds = record.folds
    models = vocab.ordered(
        list(folds.get("model", pd.Series(dtype=str)).dropna()),
        config_value(record.config, "models", []),
    )
    optimizers = vocab.ordered(
        list(folds.get("optimizer", pd.Series(dtype=str)).dropna()),
        [*config_value(record.config, "optimizers", []), *vocab.KNOWN_OPTIMIZERS],
    )
    threshold = float(config_value(record.config, "train.threshold", 0.5))
    inv = results.inventory(folds, tested_runs(record), models, optimizers)
    preds = results.unit_predictions(record.predictions, inv.units)
    per_unit = results.unit_metrics(preds, threshold)
    imgs = results.images(preds)
    confusion = results.confusion(preds, threshold)
    cost_units = training.unit_costs(record.curves, inv.units, folds)
    flat_units = training.flatness_units(record.artifacts, inv.units, folds)
    return Analysis(
        models=models,
        optimizers=optimizers,
        threshold=threshold,
        inventory=inv,
        predictions=preds,
        per_unit=per_unit,
        performance=results.summarise(per_unit, inv.status, results.SUMMARY_METRICS),
        calibration=results.summarise(per_unit, inv.status, results.CALIBRATION_METRICS),
        pooled=results.pooled_auc(preds),
        paired=results.paired(per_unit, models, optimizers),
        paired_folds=results.paired_folds(per_unit, models, optimizers),
        confusion=confusion,
        confusion_shares=results.confusion_shares(confusion),
        reliability=results.reliability_bins(preds),
        roc=results.mean_roc(preds),
        sites=results.sites(preds, threshold),
        images=imgs,
        readers=results.readers_table(imgs),
        readers_by_model=results.readers_by_model(preds),
        agreement=results.agreement_table(imgs),
        vs_readers=results.model_vs_readers(preds),
        curves=training.learning_curves(record.curves, inv.units),
        cost_per_unit=cost_units,
        cost=training.summarise(cost_units, training.COST_KEYS),
        flatness_per_unit=flat_units,
        flatness=training.summarise(flat_units, training.FLATNESS_KEYS),
        landscape=training.landscape(record.artifacts, inv.units),
        external=analyse_external(
            record.external, inv.units, per_unit, models, optimizers, threshold
        ),
    )
