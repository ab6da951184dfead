"""Every figure of the report, drawn from the numbers of the analysis (PNG at print resolution +
SVG). Figures draw only: every curve, band, mean and count they show is a column of a table of
:class:`~medbench.report.analysis.Analysis`.

Figures are plain ``matplotlib.figure.Figure`` objects on the Agg canvas: no pyplot, no global
state, no GUI backend, whatever process builds the report. Each optimizer keeps one colour in
every figure (Okabe–Ito, colour-blind safe); the readers are drawn in black and grey.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medbench.report.formatting import fnum
from medbench.report.vocab import metric_label, reader_style

PNG_DPI = 200
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "medbench",  # stable ids: a rebuilt report diffs cleanly
}


@dataclass(frozen=True)
class FigureFiles:
    stem: str
    png: Path
    svg: Path


def new_figure(width: float, height: float) -> Figure:
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, out_dir: Path, stem: str) -> FigureFiles:
    """Write ``stem.png`` (print resolution) and ``stem.svg``; metadata without dates."""
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    with mpl.rc_context(STYLE):
        fig.savefig(png, dpi=PNG_DPI, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return FigureFiles(stem, png, svg)


def _subplots(nrows: int, ncols: int, width: float, height: float, **kw):
    fig = new_figure(width, height)
    with mpl.rc_context(STYLE):
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _time_unit(seconds: Sequence[float]) -> tuple[float, str]:
    finite = [s for s in seconds if isinstance(s, float | int) and math.isfinite(s)]
    top = max(finite, default=0.0)
    if top >= 2 * 3600:
        return 3600.0, "h"
    if top >= 2 * 60:
        return 60.0, "min"
    return 1.0, "s"


def _spread(std) -> np.ndarray:
    """The std as drawn: an undefined one (a single fold) is a band or error bar of no width."""
    return np.nan_to_num(np.asarray(std, dtype=float), nan=0.0)


def _band(mean, std) -> tuple[np.ndarray, np.ndarray]:
    """``mean ± std``, the edges of a band."""
    m, s = np.asarray(mean, dtype=float), _spread(std)
    return m - s, m + s


def _rows(table: pd.DataFrame, **where) -> pd.DataFrame:
    """The rows of ``table`` whose columns equal the given values."""
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= (table[column] == value).to_numpy()
    return table[mask]


def roc(
    curves: pd.DataFrame,
    performance: pd.DataFrame,
    readers: pd.DataFrame,
    model: str,
    optimizers: Sequence[str],
    colours: Mapping[str, str],
    title: str | None = None,
) -> Figure:
    """Mean ROC over folds per optimizer (±1 std band, AUC mean ± std in the legend) and the
    readers' operating points; ``curves``, ``performance`` and ``readers`` are the analysis'
    ``roc``, ``performance`` and ``readers_by_model`` tables (or their external twins)."""
    fig, axes = _subplots(1, 1, 4.6, 4.4)
    ax = axes[0, 0]
    with mpl.rc_context(STYLE):
        for opt in optimizers:
            part = _rows(curves, model=model, optimizer=opt)
            if part.empty:
                continue
            r = _rows(performance, model=model, optimizer=opt).iloc[0]
            label = f"{opt} (AUC {r['auc_mean']:.3f} ± {fnum(r['auc_std'])}, {r['auc_n']} folds)"
            ax.plot(part["fpr"], part["tpr_mean"], color=colours[opt], lw=1.8, label=label)
            low, high = _band(part["tpr_mean"], part["tpr_std"])
            ax.fill_between(
                part["fpr"],
                np.clip(low, 0, 1),
                np.clip(high, 0, 1),
                color=colours[opt],
                alpha=0.15,
                lw=0,
            )
        mine = _rows(readers, model=model) if not readers.empty else readers
        for point in mine.itertuples(index=False):
            if not point.n_used:
                continue
            style = reader_style(point.reader)
            ax.plot(
                1 - point.specificity,
                point.sensitivity,
                ls="none",
                marker=style.marker,
                color=style.colour,
                ms=7,
                mec="white",
                label=f"{style.name} (BI-RADS ≥ 4a, n={point.n_used})",
            )
        ax.plot([0, 1], [0, 1], color="#999999", ls=":", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("False positive rate (1 − specificity)")
        ax.set_ylabel("True positive rate (sensitivity)")
        ax.set_title(title or f"{model}: test ROC (mean ± 1 std over folds)")
        ax.legend(loc="lower right", frameon=True)
    return fig


def intervals(
    summary: pd.DataFrame,
    per_unit: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
    metrics: Sequence[str] = ("auc", "accuracy"),
) -> Figure:
    """Mean and 95% t CI over folds per model × optimizer, the folds' own values as faint dots."""
    width = max(5.5, 1.2 + 1.4 * len(models) * len(metrics))
    fig, axes = _subplots(1, len(metrics), width, 3.8)
    n_opt = len(optimizers)
    offsets = (np.arange(n_opt) - (n_opt - 1) / 2) * (0.7 / max(n_opt, 1))
    with mpl.rc_context(STYLE):
        for ax, metric in zip(axes[0], metrics, strict=True):
            for j, opt in enumerate(optimizers):
                for i, model in enumerate(models):
                    row = _rows(summary, model=model, optimizer=opt)
                    if row.empty:
                        continue
                    r = row.iloc[0]
                    x = i + offsets[j]
                    vals = _rows(per_unit, model=model, optimizer=opt)[metric]
                    ax.plot(
                        np.full(len(vals), x),
                        vals,
                        ls="none",
                        marker="o",
                        ms=3,
                        alpha=0.35,
                        color=colours[opt],
                    )
                    lo, hi = r[f"{metric}_ci_low"], r[f"{metric}_ci_high"]
                    yerr = None
                    if math.isfinite(lo) and math.isfinite(hi):
                        yerr = [[r[f"{metric}_mean"] - lo], [hi - r[f"{metric}_mean"]]]
                    ax.errorbar(
                        x,
                        r[f"{metric}_mean"],
                        yerr=yerr,
                        fmt="D",
                        ms=5,
                        capsize=4,
                        color=colours[opt],
                        mfc="white" if not r["complete"] else colours[opt],
                        label=opt if i == 0 else None,
                    )
            ax.set_xticks(range(len(models)), models)
            ax.set_xlim(-0.6, len(models) - 0.4)
            ax.set_ylabel(
                f"Test {metric_label(metric)} (fraction)" if metric != "auc" else "Test ROC AUC"
            )
            ax.set_title(f"Test {metric_label(metric)}")
        fig.suptitle("Mean and 95% t CI over folds (dots: single folds)")
        fig.legend(
            *axes[0, 0].get_legend_handles_labels(),
            loc="outside lower center",
            ncols=min(len(optimizers), 6),
            title="optimizer (hollow marker: incomplete, some folds failed)",
        )
    return fig


def paired_folds(
    wide: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
    metric: str = "auc",
) -> Figure:
    """Each fold's value per optimizer; grey lines join the same (fold, seed) across optimizers.
    ``wide`` is the analysis' ``paired_folds`` table."""
    fig, axes = _subplots(1, len(models), max(4.0, 1.0 + 1.1 * len(optimizers)) * len(models), 3.6)
    with mpl.rc_context(STYLE):
        for ax, model in zip(axes[0], models, strict=True):
            mine = _rows(wide, model=model)
            cols = [o for o in optimizers if o in mine and mine[o].notna().any()]
            for _, row in mine.iterrows():
                values = row[cols].astype(float)
                ax.plot(range(len(cols)), values.to_numpy(), color="#888888", lw=0.9, alpha=0.8)
                last = values.last_valid_index()
                if last is not None:
                    ax.annotate(
                        row["label"],
                        (cols.index(last), values[last]),
                        xytext=(6, 0),
                        textcoords="offset points",
                        fontsize=7,
                        va="center",
                        color="#555555",
                    )
            for j, opt in enumerate(cols):
                ax.plot(
                    np.full(len(mine), j),
                    mine[opt].to_numpy(),
                    ls="none",
                    marker="o",
                    ms=6,
                    color=colours[opt],
                    mec="white",
                    zorder=3,
                )
            ax.set_xticks(range(len(cols)), cols)
            ax.set_xlim(-0.4, len(cols) - 0.4)
            ax.set_xlabel("Optimizer")
            ax.set_ylabel(f"Test {metric_label(metric)} per fold")
            ax.set_title(f"{model}: paired folds")
    return fig


def learning(
    curves: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Training loss and validation AUC against epoch, mean ± std over folds."""
    panels = [("train_loss", "Training loss (cross-entropy)"), ("val_auc", "Validation ROC AUC")]
    fig, axes = _subplots(len(models), 2, 7.0, 3.0 * len(models))
    with mpl.rc_context(STYLE):
        for i, model in enumerate(models):
            for k, (metric, label) in enumerate(panels):
                ax = axes[i, k]
                for opt in optimizers:
                    part = _rows(curves, model=model, optimizer=opt, metric=metric)
                    if part.empty:
                        continue
                    ax.plot(part["step"], part["mean"], color=colours[opt], lw=1.6, label=opt)
                    low, high = _band(part["mean"], part["std"])
                    ax.fill_between(part["step"], low, high, color=colours[opt], alpha=0.15, lw=0)
                ax.set_xlabel("Epoch")
                ax.set_ylabel(label)
                ax.set_title(f"{model}: {label.split(' (')[0]}")
            axes[i, 0].legend(title="optimizer")
        fig.suptitle("Mean ± std over folds")
    return fig


def cost(
    summary: pd.DataFrame,
    per_unit: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Time per epoch, total training time and time to the best validation AUC (mean ± std);
    ``summary`` is the analysis' ``cost`` table, ``per_unit`` (``cost_per_unit``) sets the unit."""
    panels = [
        ("epoch_time_s", "Time per epoch"),
        ("train_time_s", "Total training time"),
        ("time_to_best_val_auc_s", "Time to best validation AUC"),
    ]
    fig, axes = _subplots(1, 3, 9.0, 3.2)
    n_opt = len(optimizers)
    width = 0.8 / max(n_opt, 1)
    with mpl.rc_context(STYLE):
        for ax, (key, title) in zip(axes[0], panels, strict=True):
            scale, unit = _time_unit(per_unit[key].tolist() if key in per_unit else [])
            for j, opt in enumerate(optimizers):
                xs, means, stds = [], [], []
                for i, model in enumerate(models):
                    row = _rows(summary, model=model, optimizer=opt)
                    if row.empty or not row.iloc[0][f"{key}_n"]:
                        continue
                    xs.append(i + (j - (n_opt - 1) / 2) * width)
                    means.append(row.iloc[0][f"{key}_mean"] / scale)
                    stds.append(row.iloc[0][f"{key}_std"] / scale)
                if xs:
                    ax.bar(
                        xs,
                        means,
                        width=width * 0.9,
                        yerr=_spread(stds),
                        capsize=3,
                        color=colours[opt],
                        label=opt,
                    )
            ax.set_xticks(range(len(models)), models)
            ax.set_ylabel(f"{title} ({unit})")
            ax.set_title(title)
        axes[0, 0].legend(title="optimizer")
        fig.suptitle("Training cost, mean ± std over folds")
    return fig


def confusion(table: pd.DataFrame, model: str, optimizers: Sequence[str]) -> Figure:
    """Test confusion matrix per optimizer, pooled over folds: counts and row percentages;
    ``table`` is the analysis' ``confusion_shares``."""
    opts = [o for o in optimizers if not _rows(table, model=model, optimizer=o).empty]
    fig, axes = _subplots(1, max(len(opts), 1), 2.6 * max(len(opts), 1) + 0.4, 2.9)
    with mpl.rc_context(STYLE):
        for ax, opt in zip(axes[0], opts, strict=False):
            r = _rows(table, model=model, optimizer=opt).iloc[0]
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


def reliability(
    bins: pd.DataFrame,
    model: str,
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Observed malignant rate against mean predicted probability per bin, pooled over folds,
    with the distribution of the predictions below; ``bins`` is the analysis' ``reliability``."""
    mine = _rows(bins, model=model)
    fig = new_figure(4.6, 5.2)
    with mpl.rc_context(STYLE):
        top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
        top.plot([0, 1], [0, 1], color="#999999", ls=":", lw=1, label="perfect calibration")
        for opt in optimizers:
            part = _rows(mine, optimizer=opt)
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


def flatness(
    landscape: pd.DataFrame,
    per_unit: pd.DataFrame,
    summary: pd.DataFrame,
    model: str,
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """1-D loss landscape along a filter-normalised random direction (mean ± std over folds),
    and each fold's largest Hessian eigenvalue with their mean; the tables are the analysis'
    ``landscape``, ``flatness_per_unit`` and ``flatness``."""
    fig, axes = _subplots(1, 2, 8.0, 3.4, width_ratios=[2, 1])
    ax, ax2 = axes[0]
    key = "hessian_top_eigenvalue"
    with mpl.rc_context(STYLE):
        for opt in optimizers:
            part = _rows(landscape, model=model, optimizer=opt)
            if part.empty:
                continue
            ax.plot(part["alpha"], part["loss_mean"], color=colours[opt], lw=1.6, label=opt)
            low, high = _band(part["loss_mean"], part["loss_std"])
            ax.fill_between(part["alpha"], low, high, color=colours[opt], alpha=0.15, lw=0)
        ax.set_xlabel("Step along the direction (α, filter-normalised units)")
        ax.set_ylabel("Training loss (cross-entropy)")
        ax.set_title(f"{model}: 1-D loss landscape, best checkpoint")
        ax.legend(title="optimizer")
        mine = _rows(per_unit, model=model)
        cols = [o for o in optimizers if (mine["optimizer"] == o).any()]
        for j, opt in enumerate(cols):
            vals = _rows(mine, optimizer=opt)[key].dropna()
            ax2.plot(np.full(len(vals), j), vals, ls="none", marker="o", ms=5, color=colours[opt])
            r = _rows(summary, model=model, optimizer=opt).iloc[0]
            if r[f"{key}_n"]:
                ax2.plot([j - 0.25, j + 0.25], [r[f"{key}_mean"]] * 2, color=colours[opt], lw=2)
        ax2.set_xticks(range(len(cols)), cols)
        ax2.set_xlim(-0.5, len(cols) - 0.5)
        ax2.set_ylabel("Largest Hessian eigenvalue")
        ax2.set_title("Per fold (lower: flatter)")
    return fig
