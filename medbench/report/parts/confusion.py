"""Confusion matrices: the test calls at the config's threshold against the truth, pooled over
folds and seeds, as counts and as shares of each true class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medbench.report import document as d
from medbench.report.clinical import operating_point
from medbench.report.figures import FigureFiles, rows_where, safe_name, save, styled, subplots
from medbench.report.part import Analysis, Part, Writer


@dataclass
class Confusion:
    confusion: pd.DataFrame  # counts per (model, optimizer)
    shares: pd.DataFrame  # the counts with each cell's share of its true class, for the figures


def analyse(a: Analysis) -> Confusion:
    i = a.inputs
    counts = confusion(i.predictions, i.threshold)
    return Confusion(i.in_order(counts), i.in_order(confusion_shares(counts)))


def tables(c: Confusion) -> dict[str, pd.DataFrame]:
    return {"confusion": c.confusion}


def figures(c: Confusion, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    """The confusion matrices of each model (``confusion/{model}``)."""
    i = a.inputs
    if i.per_unit.empty:
        return {}
    return {
        f"confusion/{model}": save(
            confusion_figure(c.shares, model, i.tested_optimizers),
            out,
            f"fig_confusion_{safe_name(model)}",
        )
        for model in i.tested_models
    }


def sections(c: Confusion, w: Writer) -> None:
    a = w.inputs
    if c.confusion.empty:
        return
    w.doc.add(d.Heading("Confusion matrices"))
    for model in a.models:
        w.image(
            f"confusion/{model}",
            f"{model}: test confusion matrices pooled over folds, P(malignant) ≥ {a.threshold:g} called malignant; percentages per true class.",
        )
    w.table(
        c.confusion.rename(
            columns={
                "model": "Model",
                "optimizer": "Optimizer",
                "threshold": "Threshold",
                "tn": "TN",
                "fp": "FP",
                "fn": "FN",
                "tp": "TP",
            }
        ),
        "Pooled over folds (and seeds).",
        "confusion",
    )


PART = Part("confusion", analyse, tables, figures, sections)


def confusion(preds: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Test confusion counts per (model, optimizer), pooled over every fold and seed."""
    rows = []
    for (model, opt), part in preds.groupby(["model", "optimizer"], sort=False):
        y = part["label"].to_numpy().astype(int)
        c = (part["prob_malignant"].to_numpy() >= threshold).astype(int)
        point = operating_point(y, c)
        rows.append(
            {
                "model": model,
                "optimizer": opt,
                "threshold": threshold,
                "tn": point.tn,
                "fp": point.fp,
                "fn": point.fn,
                "tp": point.tp,
            }
        )
    return pd.DataFrame(rows, columns=["model", "optimizer", "threshold", "tn", "fp", "fn", "tp"])


def confusion_shares(confusion: pd.DataFrame) -> pd.DataFrame:
    """The confusion counts with each cell's share of its true class (the matrix's row): ``tn`` and
    ``fp`` over the benign images, ``fn`` and ``tp`` over the malignant ones; 0 for an empty row."""
    out = confusion.copy()
    benign = (out["tn"] + out["fp"]).to_numpy(dtype=float)
    malignant = (out["fn"] + out["tp"]).to_numpy(dtype=float)
    for cell, total in (("tn", benign), ("fp", benign), ("fn", malignant), ("tp", malignant)):
        count = out[cell].to_numpy(dtype=float)
        out[f"{cell}_share"] = np.divide(count, total, out=np.zeros_like(count), where=total > 0)
    return out


def confusion_figure(table: pd.DataFrame, model: str, optimizers: Sequence[str]) -> Figure:
    """Test confusion matrix per optimizer, pooled over folds: counts and row percentages;
    ``table`` is :attr:`Confusion.shares`."""
    opts = [o for o in optimizers if not rows_where(table, model=model, optimizer=o).empty]
    fig, axes = subplots(1, max(len(opts), 1), 2.6 * max(len(opts), 1) + 0.4, 2.9)
    with styled():
        for ax, opt in zip(axes[0], opts, strict=False):
            r = rows_where(table, model=model, optimizer=opt).iloc[0]
            cells = [["tn", "fp"], ["fn", "tp"]]
            m = np.array([[r[c] for c in row] for row in cells], dtype=float)
            share = np.array([[r[f"{c}_share"] for c in row] for row in cells], dtype=float)
            ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
            for (a, b), count in np.ndenumerate(m):
                ax.text(
                    b,
                    a,
                    f"{int(count)}\n{share[a, b]:.0%}",
                    ha="center",
                    va="center",
                    color="white" if share[a, b] > 0.6 else "black",
                    fontsize=9,
                )
            ax.set_xticks([0, 1], ["benign", "malignant"])
            ax.set_yticks([0, 1], ["benign", "malignant"])
            ax.set_xlabel("Predicted class")
            ax.set_ylabel("True class")
            ax.grid(False)
            ax.set_title(f"{model} / {opt}")
    return fig
