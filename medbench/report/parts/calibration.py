"""Calibration: the positive-class expected calibration error (median and quartiles over folds)
and the Brier score (with its bootstrap interval), and the reliability diagram of each model with
the distribution of its predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from medbench.metrics import calibration_bins
from medbench.report import document as d
from medbench.report.figures import FigureFiles, new_figure, rows_where, safe_name, save, styled
from medbench.report.formatting import fcell, fnum, fquartile_cell, fruns
from medbench.report.part import Analysis, Part, Writer
from medbench.report.resampling import summarise

CALIBRATION_METRICS = ("ece", "brier")


@dataclass
class Calibration:
    calibration: pd.DataFrame  # CALIBRATION_METRICS over folds per (model, optimizer)
    reliability: pd.DataFrame  # reliability bins per (model, optimizer)


def analyse(a: Analysis) -> Calibration:
    i = a.inputs
    table = summarise(i.per_unit, i.inventory.status, CALIBRATION_METRICS, i.samples)
    return Calibration(i.in_order(table), i.in_order(reliability_bins(i.predictions)))


def tables(c: Calibration) -> dict[str, pd.DataFrame]:
    return {"calibration": c.calibration}


def figures(c: Calibration, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    """The reliability diagram of each model (``reliability/{model}``)."""
    i = a.inputs
    if i.per_unit.empty:
        return {}
    return {
        f"reliability/{model}": save(
            reliability_figure(c.reliability, model, i.tested_optimizers, i.colours),
            out,
            f"fig_reliability_{safe_name(model)}",
        )
        for model in i.tested_models
    }


def sections(c: Calibration, w: Writer) -> None:
    a = w.inputs
    if a.per_unit.empty:
        return
    w.doc.add(d.Heading("Calibration"))
    for model in a.models:
        w.image(
            f"reliability/{model}",
            f"{model}: reliability diagram of the test predictions pooled over folds, and their distribution.",
        )
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Runs": fruns(r),
            "ECE, median (quartiles)": fquartile_cell(r, "ece", fnum),
            "Brier": fcell(r, "brier"),
        }
        for r in c.calibration.to_dict("records")
    ]
    w.table(
        pd.DataFrame(rows),
        "Positive-class expected calibration error (P(malignant), 10 equal-width bins), median "
        "and quartiles over folds (the ECE of a small test set is biased upward, so its bootstrap "
        "interval would lie above it); Brier score, mean ± std over folds [95% bootstrap CI]. "
        "Lower is better.",
        "calibration",
    )


PART = Part("calibration", analyse, tables, figures, sections)


#: Equal-width bins of P(malignant) of the reliability diagrams (those of the ECE).
RELIABILITY_BINS = 10


def reliability(labels, probs, n_bins: int = RELIABILITY_BINS) -> pd.DataFrame:
    """Equal-width bins of P(malignant), the bins of ``expected_calibration_error``."""
    rows = [
        {
            "bin": b,
            "lower": b / n_bins,
            "upper": (b + 1) / n_bins,
            "n": n,
            "mean_predicted": predicted,
            "observed_rate": observed,
        }
        for b, (n, predicted, observed) in enumerate(calibration_bins(labels, probs, n_bins))
    ]
    return pd.DataFrame(rows)


def reliability_bins(preds: pd.DataFrame, n_bins: int = RELIABILITY_BINS) -> pd.DataFrame:
    """:func:`reliability` per (model, optimizer), test predictions pooled over folds."""
    frames = []
    for (model, opt), part in preds.groupby(["model", "optimizer"], sort=False):
        bins = reliability(part["label"], part["prob_malignant"], n_bins)
        frames.append(bins.assign(model=model, optimizer=opt))
    cols = ["model", "optimizer", "bin", "lower", "upper", "n", "mean_predicted", "observed_rate"]
    return pd.concat(frames)[cols].reset_index(drop=True) if frames else pd.DataFrame(columns=cols)


def reliability_figure(
    bins: pd.DataFrame,
    model: str,
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Observed malignant rate against mean predicted probability per bin, pooled over folds,
    with the distribution of the predictions below; ``bins`` is :attr:`Calibration.reliability`."""
    mine = rows_where(bins, model=model)
    fig = new_figure(4.6, 5.2)
    with styled():
        top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
        top.plot([0, 1], [0, 1], color="#999999", ls=":", lw=1, label="perfect calibration")
        for opt in optimizers:
            part = rows_where(mine, optimizer=opt)
            if part.empty:
                continue
            used = part[part["n"] > 0]
            top.plot(
                used["mean_predicted"],
                used["observed_rate"],
                marker="o",
                ms=4,
                color=colours[opt],
                label=opt,
            )
            # the counts are drawn as given: one weighted entry at the lower edge of each bin
            edges = [*part["lower"], part["upper"].iloc[-1]]
            bottom.hist(
                part["lower"],
                bins=edges,
                weights=part["n"],
                histtype="step",
                color=colours[opt],
                lw=1.4,
            )
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("Observed malignant fraction")
        top.set_title(f"{model}: reliability, {mine['bin'].nunique()} equal-width bins")
        top.legend(loc="upper left")
        bottom.set_xlabel("Predicted P(malignant)")
        bottom.set_ylabel("Test images")
    return fig
