"""Every number of the report, computed once from an :class:`~medbench.tracking.ExperimentRecord`:
the tables, what each figure draws, and the command line's closing summary. Figures, documents and
the summary only format and draw these numbers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from medbench.config import ReportConfig
from medbench.metrics import METRIC_NAMES
from medbench.report import results, stats, training, tuning, vocab
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


#: Default half-width of the region of practical equivalence (``report.rope``).
DEFAULT_ROPE = ReportConfig().rope


@dataclass
class Analysis:
    """The report's numbers. A unit is one finished (model, optimizer, fold, seed) run; the unit
    of analysis is the fold: seeds are averaged within a fold before any interval or test."""

    models: list[str]
    optimizers: list[str]
    threshold: float
    rope: float  # half-width of the region of practical equivalence of the Bayesian test
    n_resamples: int  # of the stratified bootstrap over test images
    bootstrap_seed: int
    inventory: results.Inventory
    predictions: pd.DataFrame  # predictions of usable units
    per_unit: pd.DataFrame  # metrics per unit, recomputed from predictions
    fold_means: pd.DataFrame  # metrics per fold: the mean over its seeds (the unit of analysis)
    performance: pd.DataFrame
    seed_spread: pd.DataFrame  # seed-to-seed vs fold-to-fold spread (empty with one seed)
    calibration: pd.DataFrame
    pooled: pd.DataFrame
    fold_differences: pd.DataFrame  # B − A per fold, what the comparisons test
    paired: pd.DataFrame
    paired_pooled: pd.DataFrame  # paired bootstrap of the out-of-fold AUC
    verdict: pd.DataFrame  # per model and optimizer: mean AUC and difference from the baseline
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
    fidelity: pd.DataFrame  # SAM perturbation fidelity per (model, optimizer), when logged
    cost_per_unit: pd.DataFrame
    cost: pd.DataFrame
    flatness_per_unit: pd.DataFrame
    flatness_folds: pd.DataFrame  # flatness per fold (mean over its seeds)
    flatness: pd.DataFrame
    landscape: pd.DataFrame
    protocol: tuning.Protocol  # tuning, compute at equal budgets, time to target
    external: ExternalAnalysis | None = None  # external validation, when there is any


def analyse(
    record: ExperimentRecord,
    rope: float | None = None,
    n_resamples: int = stats.BOOTSTRAP_RESAMPLES,
) -> Analysis:
    """Compute every number of the report of ``record``.

    Parameters
    ----------
    record : ExperimentRecord
        The runs, metrics, predictions and artifacts of one experiment, as read by
        :func:`medbench.tracking.load_experiment`.
    rope : float, optional
        Half-width of the region of practical equivalence of the Bayesian correlated t-test, in
        the metric's units; by default the config's ``report.rope`` (0.01).
    n_resamples : int
        Resamples of the stratified bootstrap over test images (seed
        :data:`~medbench.report.stats.BOOTSTRAP_SEED`).

    Returns
    -------
    Analysis
        Every table, figure input and summary number; metrics are recomputed from the runs'
        ``predictions.csv``, never taken from the metrics the runs logged. Rows follow the
        config's order of models and optimizers.
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
    rope = float(config_value(record.config, "report.rope", DEFAULT_ROPE) if rope is None else rope)
    inv = results.inventory(folds, tested_runs(record), models, optimizers)
    preds = results.unit_predictions(record.predictions, inv.units)
    per_unit = results.mark_small_folds(results.unit_metrics(preds, threshold, folds))
    boot = results.resampling(preds, n_resamples)
    imgs = results.images(preds)
    confusion = results.confusion(preds, threshold)
    cost_units = training.unit_costs(record.curves, inv.units, folds)
    flat_units = training.flatness_units(record.artifacts, inv.units, folds)
    bounded = [
        m
        for m in (*results.SUMMARY_METRICS, *results.CALIBRATION_METRICS)
        if m not in results.QUARTILE_METRICS
    ]
    samples = results.resampled_arms(preds, inv.status, boot, threshold, bounded)
    performance = results.summarise(per_unit, inv.status, results.SUMMARY_METRICS, samples)
    diffs = results.fold_differences(per_unit, models, optimizers)
    paired = results.paired(per_unit, diffs, models, optimizers, rope)
    tables = dict(
        per_unit=per_unit,
        fold_means=results.fold_means(per_unit, METRIC_NAMES),
        performance=performance,
        seed_spread=results.seed_spread(
            per_unit, [*results.SUMMARY_METRICS, *results.CALIBRATION_METRICS]
        ),
        calibration=results.summarise(per_unit, inv.status, results.CALIBRATION_METRICS, samples),
        pooled=results.pooled_auc(preds, boot),
        fold_differences=diffs,
        paired=paired,
        paired_pooled=results.paired_pooled(preds, boot, models, optimizers),
        verdict=results.against_baseline(performance, paired, optimizers),
        paired_folds=results.paired_folds(per_unit, models, optimizers),
        confusion=confusion,
        confusion_shares=results.confusion_shares(confusion),
        reliability=results.reliability_bins(preds),
        roc=results.mean_roc(preds),
        sites=results.sites(preds, threshold, boot),
        readers_by_model=results.readers_by_model(preds),
        vs_readers=results.model_vs_readers(preds, boot),
        curves=training.learning_curves(record.curves, inv.units),
        fidelity=training.fidelity(record.curves, inv.units),
        cost_per_unit=cost_units,
        cost=training.summarise(cost_units, training.COST_KEYS),
        flatness_per_unit=flat_units,
        flatness_folds=results.fold_means(flat_units, training.FLATNESS_KEYS),
        flatness=training.summarise(flat_units, training.FLATNESS_KEYS),
        landscape=training.landscape(record.artifacts, inv.units),
    )
    external = analyse_external(
        record, inv.units, per_unit, models, optimizers, threshold, rope, boot.n_resamples
    )
    protocol = tuning.protocol(record, inv.units, per_unit, models, optimizers)
    protocol = dataclasses.replace(
        protocol,
        **{
            f.name: vocab.in_order(getattr(protocol, f.name), models, optimizers)
            for f in dataclasses.fields(protocol)
            if isinstance(getattr(protocol, f.name), pd.DataFrame)
        },
    )
    return Analysis(
        models=models,
        optimizers=optimizers,
        threshold=threshold,
        rope=rope,
        n_resamples=boot.n_resamples,
        bootstrap_seed=boot.seed,
        inventory=inv,
        predictions=preds,
        images=imgs,
        readers=results.readers_table(imgs),
        agreement=results.agreement_table(imgs),
        protocol=protocol,
        external=external,
        **{k: vocab.in_order(v, models, optimizers) for k, v in tables.items()},
    )
