"""The common inputs of the report's parts, computed once (:func:`gather`): the typed config the
runs were made with, the report's order of models and optimizers, which runs count, their test
predictions and metrics, the fold means, and the bootstrap of the test images with the
resampled fold means of every (model, optimizer).

Every part reads these; none recomputes them, so that every table and figure of the report rests
on the same units, the same resamples and the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from medbench.config import Config, config_from_logged
from medbench.metrics import METRIC_NAMES
from medbench.report import stats, vocab
from medbench.report.clinical import images
from medbench.report.resampling import BOUNDED_METRICS, Resampling, resampled_arms, resampling
from medbench.report.units import (
    Inventory,
    fold_means,
    inventory,
    mark_small_folds,
    tested_runs,
    unit_metrics,
    unit_predictions,
)
from medbench.tracking import ExperimentRecord, schema
from medbench.tracking.colours import optimizer_colours
from medbench.tracking.reader import tag_column


@dataclass
class Inputs:
    """What several parts of the report read. A unit is one finished (model, optimizer, fold,
    seed) run; the unit of analysis is the fold: seeds are averaged within a fold before any
    interval or test."""

    record: ExperimentRecord
    config: Config  # rebuilt typed from the logged config (its defaults where a key is missing)
    models: list[str]  # in the report's order: the config's, then the others sorted
    optimizers: list[str]
    threshold: float  # P(malignant) called malignant (``train.threshold``)
    rope: float  # half-width of the region of practical equivalence of the Bayesian test
    inventory: Inventory
    predictions: pd.DataFrame  # test predictions of the usable units
    per_unit: pd.DataFrame  # metrics per unit, recomputed from predictions, in report order
    fold_means: pd.DataFrame  # metrics per fold: the mean over its seeds (the unit of analysis)
    images: pd.DataFrame  # one row per test image, with the readers' calls
    boot: Resampling  # the stratified bootstrap of each model's test images
    #: per (model, optimizer): per resample, the fold mean of each of BOUNDED_METRICS
    samples: dict[tuple[str, str], dict[str, np.ndarray]]

    @property
    def n_resamples(self) -> int:
        return self.boot.n_resamples

    @property
    def bootstrap_seed(self) -> int:
        return self.boot.seed

    @property
    def colours(self) -> dict[str, str]:
        """Each optimizer's colour, the same in every figure."""
        return optimizer_colours(self.optimizers)

    @property
    def tested_models(self) -> list[str]:
        """The models with a test result, in report order (those the figures draw)."""
        return [m for m in self.models if (self.per_unit["model"] == m).any()]

    @property
    def tested_optimizers(self) -> list[str]:
        """The optimizers with a test result, in report order."""
        return [o for o in self.optimizers if (self.per_unit["optimizer"] == o).any()]

    @property
    def folds(self) -> list:
        """The folds in order: the order of the folds' markers in the figures."""
        return sorted(self.fold_means["fold"].unique())

    @property
    def cards(self) -> list[str]:
        """The data cards the parent runs name (tag ``medbench.dataset_card``), sorted."""
        parents = self.record.parents
        col = tag_column(schema.TAG_DATASET_CARD)
        return sorted(set(parents[col].dropna())) if col in parents else []

    @property
    def synthetic_tag(self) -> bool:
        """Whether the parent runs say their data were generated (tag ``medbench.synthetic``:
        the data folder held the generator's marker, whatever its layout)."""
        parents = self.record.parents
        col = tag_column(schema.TAG_SYNTHETIC)
        return col in parents and bool((parents[col] == "true").any())

    def in_order(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame``'s rows with models and optimizers in the report's order
        (:func:`~medbench.report.vocab.in_order`)."""
        return vocab.in_order(frame, self.models, self.optimizers)


def gather(
    record: ExperimentRecord,
    rope: float | None = None,
    n_resamples: int = stats.BOOTSTRAP_RESAMPLES,
) -> Inputs:
    """The common inputs of the report of ``record``.

    Parameters
    ----------
    record : ExperimentRecord
        The runs, metrics, predictions and artifacts of one experiment, as read by
        :func:`medbench.tracking.load_experiment`.
    rope : float, optional
        Half-width of the region of practical equivalence of the Bayesian correlated t-test, in
        the metric's units; by default the config's ``report.rope``.
    n_resamples : int
        Resamples of the stratified bootstrap over test images (seed
        :data:`~medbench.report.stats.BOOTSTRAP_SEED`).

    Returns
    -------
    Inputs
        Metrics are recomputed from the runs' ``predictions.csv``, never taken from the metrics
        the runs logged.
    """
    config = config_from_logged(record.config)
    folds = record.folds
    models = vocab.ordered(list(folds.get("model", pd.Series(dtype=str)).dropna()), config.models)
    optimizers = vocab.ordered(
        list(folds.get("optimizer", pd.Series(dtype=str)).dropna()),
        [*config.optimizers, *vocab.KNOWN_OPTIMIZERS],
    )
    threshold = float(config.train.threshold)
    inv = inventory(folds, tested_runs(record), models, optimizers)
    preds = unit_predictions(record.predictions, inv.units)
    per_unit = mark_small_folds(unit_metrics(preds, threshold, folds))
    boot = resampling(preds, n_resamples)
    return Inputs(
        record=record,
        config=config,
        models=models,
        optimizers=optimizers,
        threshold=threshold,
        rope=float(config.report.rope if rope is None else rope),
        inventory=inv,
        predictions=preds,
        per_unit=vocab.in_order(per_unit, models, optimizers),
        fold_means=vocab.in_order(fold_means(per_unit, METRIC_NAMES), models, optimizers),
        images=images(preds),
        boot=boot,
        samples=resampled_arms(preds, inv.status, boot, threshold, BOUNDED_METRICS),
    )
