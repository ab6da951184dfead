"""How training went: the learning curves (training loss and validation AUC per epoch), under the
"Training" heading that the fidelity and cost parts continue.

Read from the per-epoch metrics (``step`` = epoch) of the usable units; seeds are averaged within
each fold first, as for the test metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from medbench.metrics import describe_by
from medbench.report import document as d
from medbench.report.figures import FigureFiles, quartile_band, rows_where, save, styled, subplots
from medbench.report.part import Analysis, Part, Writer
from medbench.report.units import fold_average, unit_curves


def analyse(a: Analysis) -> pd.DataFrame:
    """The learning curves (:func:`learning_curves`) of the usable units."""
    i = a.inputs
    return i.in_order(learning_curves(i.record.curves, i.inventory.units))


def tables(curves: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"learning_curves": curves}


def figures(curves: pd.DataFrame, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    i = a.inputs
    if i.per_unit.empty or curves.empty:
        return {}
    fig = learning_figure(curves, i.tested_models, i.tested_optimizers, i.colours)
    return {"learning": save(fig, out, "fig_learning_curves")}


def sections(curves: pd.DataFrame, w: Writer) -> None:
    if curves.empty and w.a.result("cost").cost.empty:
        return
    w.doc.add(d.Heading("Training"))
    w.image(
        "learning",
        "Training loss and validation AUC against epoch: mean over folds, band from the lower to "
        "the upper quartile (early-stopped runs leave the later epochs to fewer folds).",
    )


PART = Part("training", analyse, tables, figures, sections)


def learning_curves(curves: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, quartiles and number of folds of each per-epoch metric, per (model, optimizer,
    epoch), seeds averaged within each fold first (:func:`medbench.metrics.describe_by`).

    Early stopping ends runs at different epochs: later epochs average over fewer folds (``n``).
    """
    per_fold = fold_average(
        unit_curves(curves, units), ["model", "optimizer", "fold", "metric", "step"]
    )
    return describe_by(per_fold, ["model", "optimizer", "metric", "step"])


def learning_figure(
    curves: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Training loss and validation AUC against epoch: mean over folds, interquartile band."""
    panels = [("train_loss", "Training loss (cross-entropy)"), ("val_auc", "Validation ROC AUC")]
    fig, axes = subplots(len(models), 2, 7.0, 3.0 * len(models))
    with styled():
        for i, model in enumerate(models):
            for k, (metric, label) in enumerate(panels):
                ax = axes[i, k]
                for opt in optimizers:
                    part = rows_where(curves, model=model, optimizer=opt, metric=metric)
                    if part.empty:
                        continue
                    ax.plot(part["step"], part["mean"], color=colours[opt], lw=1.6, label=opt)
                    low, high = quartile_band(part)
                    ax.fill_between(part["step"], low, high, color=colours[opt], alpha=0.15, lw=0)
                ax.set_xlabel("Epoch")
                ax.set_ylabel(label)
                ax.set_title(f"{model}: {label.split(' (')[0]}")
            if axes[i, 0].get_legend_handles_labels()[0]:
                axes[i, 0].legend(title="optimizer")
        fig.suptitle("Mean over folds (band: interquartile range)")
    return fig
