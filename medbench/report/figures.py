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
import matplotlib.lines
import matplotlib.patches
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medbench.report.formatting import fnum, fp
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


def _quartile_band(table: pd.DataFrame, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """The interquartile band of a curve (``{prefix}q25``/``{prefix}q75`` columns): inside the
    values' range, so a loss band never falls below zero; no width where undefined."""
    mid = table[f"{prefix}mean"].to_numpy(dtype=float)
    low = table[f"{prefix}q25"].to_numpy(dtype=float)
    high = table[f"{prefix}q75"].to_numpy(dtype=float)
    return np.where(np.isfinite(low), low, mid), np.where(np.isfinite(high), high, mid)


#: One marker per fold (in fold order), the same in the paired plot and the difference plot.
FOLD_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
FOLD_GREYS = ("#222222", "#555555", "#888888")


def fold_marker(i: int) -> str:
    return FOLD_MARKERS[i % len(FOLD_MARKERS)]


def _label_points(ax, points: list[tuple[float, float, str, str]], dx: float) -> None:
    """Label points ``(x, y, text, colour)`` at ``x + dx`` (right-aligned when ``dx`` < 0), the
    labels of one column at least 5% of the final y-range apart, so coinciding folds stay
    readable. Call it after everything else is drawn."""
    low, high = ax.get_ylim()
    for x in dict.fromkeys(p[0] for p in points):
        column = [p for p in points if p[0] == x and math.isfinite(p[1])]
        heights = _spread_labels([p[1] for p in column], 0.05 * (high - low))
        for (_, y, text, colour), y_label in zip(column, heights, strict=True):
            ax.annotate(
                text,
                (x, y),
                xytext=(x + dx, y_label),
                textcoords="data",
                fontsize=7,
                va="center",
                ha="right" if dx < 0 else "left",
                color=colour,
            )


def _spread_labels(ys: Sequence[float], gap: float) -> np.ndarray:
    """Label heights near ``ys`` at least ``gap`` apart (coinciding folds stay readable)."""
    ys = np.asarray(ys, dtype=float)
    order = np.argsort(ys, kind="stable")
    placed = ys[order].copy()
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    placed -= (placed - ys[order]).mean()  # keep them centred on the points
    out = np.empty_like(placed)
    out[order] = placed
    return out


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
    """Mean ROC over folds per optimizer (interquartile band over folds, AUC mean ± std in the
    legend) and the readers' operating points; ``curves``, ``performance`` and ``readers`` are the
    analysis' ``roc``, ``performance`` and ``readers_by_model`` tables (or their external twins)."""
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
            low, high = _quartile_band(part, "tpr_")
            ax.fill_between(part["fpr"], low, high, color=colours[opt], alpha=0.15, lw=0)
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
        ax.set_title(title or f"{model}: test ROC, mean over folds (band: IQR)")
        ax.legend(loc="lower right", frameon=True)
    return fig


def intervals(
    summary: pd.DataFrame,
    per_fold: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
    metrics: Sequence[str] = ("auc", "accuracy"),
) -> Figure:
    """Mean over folds and its 95% bootstrap CI per model × optimizer, each fold's value (mean over
    its seeds) as a faint dot; ``summary`` is the analysis' ``performance``, ``per_fold`` its
    ``fold_means``."""
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
                    vals = _rows(per_fold, model=model, optimizer=opt)[metric]
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
        fig.suptitle("Mean over folds with 95% bootstrap CI (dots: folds)")
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
    folds: Sequence,
    metric: str = "auc",
) -> Figure:
    """Each fold's value per optimizer (mean over its seeds), one line per fold across optimizers;
    each fold keeps its own marker (its place in ``folds``) and line style and is labelled on both
    sides, so that folds with equal values stay traceable. ``wide`` is the analysis'
    ``paired_folds`` table."""
    fig, axes = _subplots(1, len(models), max(4.4, 1.6 + 1.1 * len(optimizers)) * len(models), 3.8)
    with mpl.rc_context(STYLE):
        for ax, model in zip(axes[0], models, strict=True):
            mine = _rows(wide, model=model).reset_index(drop=True)
            cols = [o for o in optimizers if o in mine and mine[o].notna().any()]
            values = mine[cols].astype(float).to_numpy() if cols else np.empty((len(mine), 0))
            place = [list(folds).index(f) for f in mine["fold"]]
            for i, k in enumerate(place):
                grey = FOLD_GREYS[k % len(FOLD_GREYS)]
                style = ("-", "--", ":", "-.")[(k // len(FOLD_GREYS)) % 4]
                ax.plot(range(len(cols)), values[i], color=grey, lw=1.0, ls=style, alpha=0.9)
                for j, opt in enumerate(cols):
                    ax.plot(
                        j,
                        values[i, j],
                        ls="none",
                        marker=fold_marker(k),
                        ms=6.5,
                        color=colours[opt],
                        mec=grey,
                        mew=0.8,
                        zorder=3,
                    )
            if cols:
                for j, dx in ((0, -0.12), (len(cols) - 1, 0.12)):
                    labels = [
                        (j, values[i, j], mine.at[i, "label"], FOLD_GREYS[k % len(FOLD_GREYS)])
                        for i, k in enumerate(place)
                    ]
                    _label_points(ax, labels, dx)
            ax.set_xticks(range(len(cols)), cols)
            ax.set_xlim(-0.8, len(cols) - 0.2)
            ax.set_xlabel("Optimizer")
            ax.set_ylabel(f"Test {metric_label(metric)} per fold (mean over seeds)")
            ax.set_title(f"{model}: paired folds")
    return fig


def differences(
    diffs: pd.DataFrame,
    tests: pd.DataFrame,
    models: Sequence[str],
    metrics: Sequence[str],
    rope: float,
    folds: Sequence,
) -> Figure:
    """The estimation plot of the comparisons: per model (rows), metric (columns) and pair, each
    fold's difference B − A (labelled, with the fold's marker of the paired plot: its place in
    ``folds``), their mean and its corrected 95% interval (the one the test uses), zero and the
    region of practical equivalence. ``diffs`` and ``tests`` are the analysis'
    ``fold_differences`` and ``paired``."""
    pairs = list(dict.fromkeys(zip(tests["optimizer_a"], tests["optimizer_b"], strict=True)))
    fig, axes = _subplots(
        len(models),
        len(metrics),
        max(4.2, 1.2 + 1.3 * len(pairs)) * len(metrics),
        3.2 * len(models) + 0.5,
    )
    with mpl.rc_context(STYLE):
        for i, model in enumerate(models):
            for k, metric in enumerate(metrics):
                ax = axes[i, k]
                ax.axhspan(-rope, rope, color="#dddddd", alpha=0.6, lw=0, label=f"ROPE ±{rope:g}")
                ax.axhline(0, color="#777777", lw=0.8)
                labels: list[tuple[float, float, str, str]] = []
                for x, (a, b) in enumerate(pairs):
                    d = _rows(diffs, model=model, metric=metric, optimizer_a=a, optimizer_b=b)
                    t = _rows(tests, model=model, metric=metric, optimizer_a=a, optimizer_b=b)
                    if t.empty:
                        continue
                    for _, r in d.iterrows():
                        f = list(folds).index(r["fold"])
                        grey = FOLD_GREYS[f % len(FOLD_GREYS)]
                        ax.plot(
                            x - 0.12,
                            r["diff"],
                            ls="none",
                            marker=fold_marker(f),
                            ms=5,
                            mfc="none",
                            color=grey,
                        )
                        labels.append((x - 0.12, r["diff"], f"f{r['fold']}", grey))
                    r = t.iloc[0]
                    lo, hi = r["corrected_ci_low"], r["corrected_ci_high"]
                    yerr = None
                    if math.isfinite(lo) and math.isfinite(hi):
                        yerr = [[r["mean_diff"] - lo], [hi - r["mean_diff"]]]
                    ax.errorbar(
                        x + 0.12,
                        r["mean_diff"],
                        yerr=yerr,
                        fmt="D",
                        ms=6,
                        capsize=4,
                        color="black",
                        zorder=3,
                    )
                    ax.annotate(
                        f"p Holm {fp(r['p_holm'])}",
                        (x, 1.0),
                        xycoords=("data", "axes fraction"),
                        ha="center",
                        va="top",
                        fontsize=7,
                        color="#444444",
                    )
                ax.set_xticks(range(len(pairs)), [f"{b} − {a}" for a, b in pairs])
                ax.set_xlim(-0.6, len(pairs) - 0.4)
                _label_points(ax, labels, -0.1)
                ax.set_ylabel(f"Difference in test {metric_label(metric)}")
                ax.set_title(f"{model}: {metric_label(metric)}, B − A per fold", pad=12)
        handles = [
            mpl.lines.Line2D(
                [],
                [],
                ls="none",
                marker="o",
                mfc="none",
                color="#444444",
                label="a fold (marker per fold)",
            ),
            mpl.lines.Line2D(
                [], [], ls="none", marker="D", color="black", label="mean, corrected 95% CI"
            ),
            mpl.patches.Patch(color="#dddddd", label=f"region of practical equivalence ±{rope:g}"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig


def learning(
    curves: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Training loss and validation AUC against epoch: mean over folds, interquartile band."""
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
                    low, high = _quartile_band(part)
                    ax.fill_between(part["step"], low, high, color=colours[opt], alpha=0.15, lw=0)
                ax.set_xlabel("Epoch")
                ax.set_ylabel(label)
                ax.set_title(f"{model}: {label.split(' (')[0]}")
            if axes[i, 0].get_legend_handles_labels()[0]:
                axes[i, 0].legend(title="optimizer")
        fig.suptitle("Mean over folds (band: interquartile range)")
    return fig


def cost(
    summary: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Time per epoch, total training time and time to the selected epoch: median over folds with
    the interquartile range (never below zero); ``summary`` is the analysis' ``cost`` table."""
    panels = [
        ("epoch_time_s", "Time per epoch"),
        ("train_time_s", "Total training time"),
        ("time_to_best_epoch_s", "Time to the selected epoch"),
    ]
    fig, axes = _subplots(1, 3, 9.0, 3.2)
    n_opt = len(optimizers)
    width = 0.8 / max(n_opt, 1)
    with mpl.rc_context(STYLE):
        for ax, (key, title) in zip(axes[0], panels, strict=True):
            scale, unit = _time_unit(
                summary[f"{key}_q75"].tolist() if f"{key}_q75" in summary else []
            )
            for j, opt in enumerate(optimizers):
                xs, mid, low, high = [], [], [], []
                for i, model in enumerate(models):
                    row = _rows(summary, model=model, optimizer=opt)
                    if row.empty or not row.iloc[0][f"{key}_n"]:
                        continue
                    r = row.iloc[0]
                    xs.append(i + (j - (n_opt - 1) / 2) * width)
                    mid.append(r[f"{key}_median"] / scale)
                    low.append((r[f"{key}_median"] - r[f"{key}_q25"]) / scale)
                    high.append((r[f"{key}_q75"] - r[f"{key}_median"]) / scale)
                if xs:
                    ax.bar(
                        xs,
                        mid,
                        width=width * 0.9,
                        yerr=[low, high],
                        capsize=3,
                        color=colours[opt],
                        label=opt,
                    )
            ax.set_xticks(range(len(models)), models)
            ax.set_ylabel(f"{title} ({unit})")
            ax.set_title(title)
        if axes[0, 0].get_legend_handles_labels()[0]:
            axes[0, 0].legend(title="optimizer")
        fig.suptitle("Training cost: median over folds, bars from the lower to the upper quartile")
    return fig


def compute(
    performance: pd.DataFrame,
    cost_summary: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Test AUC (mean over folds, 95% bootstrap CI) against the training compute (gradient
    evaluations, median over folds; log scale): one colour per optimizer, one marker per model."""
    fig, axes = _subplots(1, 1, 5.6, 4.4)
    ax = axes[0, 0]
    markers = ("o", "s", "^", "D", "v", "P", "X", "*")
    shown = [o for o in optimizers if o in set(performance["optimizer"])]
    with mpl.rc_context(STYLE):
        for i, model in enumerate(models):
            for j, opt in enumerate(shown):
                perf = _rows(performance, model=model, optimizer=opt)
                spend = _rows(cost_summary, model=model, optimizer=opt)
                if perf.empty or spend.empty:
                    continue
                x, r = spend.iloc[0]["gradient_evals_median"], perf.iloc[0]
                if not (math.isfinite(x) and x > 0 and math.isfinite(r["auc_mean"])):
                    continue
                # equal budgets (SAM and GCSAM) would hide each other: a small dodge in log space
                x *= 10 ** (0.01 * (j - (len(shown) - 1) / 2))
                lo, hi = r["auc_ci_low"], r["auc_ci_high"]
                yerr = [[r["auc_mean"] - lo], [hi - r["auc_mean"]]] if math.isfinite(lo) else None
                ax.errorbar(
                    x,
                    r["auc_mean"],
                    yerr=yerr,
                    fmt=markers[i % len(markers)],
                    ms=7,
                    capsize=3,
                    color=colours[opt],
                    mec="white",
                )
        ax.set_xscale("log")
        count = mpl.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")
        ax.xaxis.set_major_formatter(count)
        low, high = ax.get_xlim()
        if high < 10 * low:  # within a decade the minor ticks carry the numbers
            ax.xaxis.set_minor_formatter(count)
            ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel("Gradient evaluations per fold run (median over folds, log scale)")
        ax.set_ylabel("Test ROC AUC (mean over folds, 95% CI)")
        ax.set_title("Test AUC against training compute")
        handles = [
            mpl.lines.Line2D([], [], ls="none", marker="o", color=colours[o], label=o)
            for o in shown
        ]
        if len(models) > 1:
            handles += [
                mpl.lines.Line2D(
                    [], [], ls="none", marker=markers[i % len(markers)], color="#444444", label=m
                )
                for i, m in enumerate(models)
            ]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6))
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
    per_fold: pd.DataFrame,
    summary: pd.DataFrame,
    model: str,
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """1-D loss landscape along a filter-normalised random direction (mean over folds,
    interquartile band), and each fold's largest Hessian eigenvalue with their median; the tables
    are the analysis' ``landscape``, ``flatness_folds`` and ``flatness``."""
    fig, axes = _subplots(1, 2, 8.0, 3.4, width_ratios=[2, 1])
    ax, ax2 = axes[0]
    key = "hessian_top_eigenvalue"
    with mpl.rc_context(STYLE):
        for opt in optimizers:
            part = _rows(landscape, model=model, optimizer=opt)
            if part.empty:
                continue
            ax.plot(part["alpha"], part["loss_mean"], color=colours[opt], lw=1.6, label=opt)
            low, high = _quartile_band(part, "loss_")
            ax.fill_between(part["alpha"], low, high, color=colours[opt], alpha=0.15, lw=0)
        ax.set_xlabel("Step along the direction (α, filter-normalised units)")
        ax.set_ylabel("Training loss (cross-entropy)")
        ax.set_title(f"{model}: 1-D loss landscape, best checkpoint")
        ax.legend(title="optimizer (band: IQR)")
        mine = _rows(per_fold, model=model)
        cols = [o for o in optimizers if (mine["optimizer"] == o).any()]
        for j, opt in enumerate(cols):
            vals = _rows(mine, optimizer=opt)[key].dropna()
            ax2.plot(np.full(len(vals), j), vals, ls="none", marker="o", ms=5, color=colours[opt])
            r = _rows(summary, model=model, optimizer=opt).iloc[0]
            if r[f"{key}_n"]:
                ax2.plot([j - 0.25, j + 0.25], [r[f"{key}_median"]] * 2, color=colours[opt], lw=2)
        ax2.set_xticks(range(len(cols)), cols)
        ax2.set_xlim(-0.5, len(cols) - 0.5)
        ax2.set_ylabel("Largest Hessian eigenvalue")
        ax2.set_title("Per fold (line: median)")
    return fig


def tuning_choices(
    chosen: pd.DataFrame,
    bounds: Mapping[str, tuple[float, float]],
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """The ``lr`` (and ``rho``) tuning chose per optimizer, one dot per fold (and seed), on a
    log axis between the search bounds (dashed); ``chosen`` is the protocol's ``chosen``."""
    params = [p for p in ("lr", "rho") if chosen[p].notna().any()]
    fig, axes = _subplots(len(models), len(params), 3.0 * len(params) + 1.0, 2.6 * len(models))
    with mpl.rc_context(STYLE):
        for i, model in enumerate(models):
            mine = _rows(chosen, model=model)
            for k, param in enumerate(params):
                ax = axes[i, k]
                cols = [o for o in optimizers if _rows(mine, optimizer=o)[param].notna().any()]
                for j, opt in enumerate(cols):
                    vals = _rows(mine, optimizer=opt)[param].dropna().to_numpy()
                    offsets = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else [0.0]
                    ax.plot(
                        j + np.asarray(offsets),
                        vals,
                        ls="none",
                        marker="o",
                        ms=5,
                        color=colours[opt],
                        alpha=0.8,
                    )
                for edge in bounds.get(param, ()):
                    ax.axhline(edge, color="#999999", ls="--", lw=0.8)
                ax.set_yscale("log")
                ax.set_xticks(range(len(cols)), cols)
                ax.set_xlim(-0.5, max(len(cols), 1) - 0.5)
                ax.set_ylabel(f"Chosen {param}")
                ax.set_title(f"{model}: {param} per fold")
        fig.suptitle("Chosen by tuning on each fold's validation split (dashed: search bounds)")
    return fig


def compute_curves(
    curves: pd.DataFrame,
    target: float,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Validation AUC against forward-backward passes and against wall time of training, per
    optimizer: mean ± std over folds at each epoch, placed at the mean cumulative cost there;
    dotted: the target. ``curves`` is the protocol's ``compute_curves``."""
    panels = [
        ("evals", "Forward-backward passes", "passes"),
        ("time_s", "Wall time of training", "time"),
    ]
    fig, axes = _subplots(len(models), 2, 8.0, 3.0 * len(models))
    with mpl.rc_context(STYLE):
        for i, model in enumerate(models):
            for k, (key, label, short) in enumerate(panels):
                ax = axes[i, k]
                scale, unit = (
                    (1.0, "")
                    if key == "evals"
                    else _time_unit(curves[key].tolist() if key in curves else [])
                )
                for opt in optimizers:
                    part = _rows(curves, model=model, optimizer=opt).dropna(subset=[key])
                    if part.empty:
                        continue
                    x = part[key].to_numpy(dtype=float) / scale
                    ax.plot(
                        x, part["val_auc_mean"], color=colours[opt], lw=1.6, marker=".", label=opt
                    )
                    mean, std = part["val_auc_mean"], part["val_auc_std"].fillna(0.0)
                    low, high = np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1)
                    ax.fill_between(x, low, high, color=colours[opt], alpha=0.15, lw=0)
                ax.axhline(target, color="#555555", ls=":", lw=1)
                ax.set_xlabel(f"{label} ({unit})" if unit else label)
                ax.set_ylabel("Validation ROC AUC")
                ax.set_title(f"{model}: validation AUC by {short}")
                if ax.get_legend_handles_labels()[0] and k == 0:
                    ax.legend(title="optimizer")
        fig.suptitle(f"Mean ± std over folds; dotted: target {target:g}")
    return fig
