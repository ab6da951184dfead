"""The figures of the paired comparisons: each fold's value per optimizer (the paired plot), each
fold's difference B − A with the test's interval (the estimation plot) and, with repeats, each
repeat's mean difference. Apart from the comparisons part
(:mod:`medbench.report.parts.comparisons`: its numbers, tables and section), so that each module
stays small; a helper of that part, not a part itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.lines
import matplotlib.patches
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medbench.report.figures import rows_where, styled, subplots
from medbench.report.formatting import fp
from medbench.report.units import REPEAT, unit_label
from medbench.report.vocab import metric_label

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


def paired_folds_figure(
    wide: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
    folds: Sequence,
    metric: str = "auc",
) -> Figure:
    """Each fold's value per optimizer (mean over its seeds), one line per fold across optimizers;
    each fold keeps its own marker (its place in ``folds``) and line style and is labelled on both
    sides, so that folds with equal values stay traceable. ``wide`` is
    :attr:`~medbench.report.parts.comparisons.Comparisons.paired_folds`."""
    fig, axes = subplots(1, len(models), max(4.4, 1.6 + 1.1 * len(optimizers)) * len(models), 3.8)
    with styled():
        for ax, model in zip(axes[0], models, strict=True):
            mine = rows_where(wide, model=model).reset_index(drop=True)
            cols = [o for o in optimizers if o in mine and mine[o].notna().any()]
            values = mine[cols].astype(float).to_numpy() if cols else np.empty((len(mine), 0))
            place = [list(folds).index(f) for f in mine["fold"]]
            for i, k in enumerate(place):
                grey = FOLD_GREYS[k % len(FOLD_GREYS)]
                dash = ("-", "--", ":", "-.")[(k // len(FOLD_GREYS)) % 4]
                ax.plot(range(len(cols)), values[i], color=grey, lw=1.0, ls=dash, alpha=0.9)
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


def differences_figure(
    diffs: pd.DataFrame,
    tests: pd.DataFrame,
    models: Sequence[str],
    metrics: Sequence[str],
    rope: float,
    folds: Sequence,
    n_repeats: int = 1,
) -> Figure:
    """The estimation plot of the comparisons: per model (rows), metric (columns) and pair, each
    fold's difference B − A (labelled, with the fold's marker of the paired plot: its place in
    ``folds``; ``r{repeat}f{fold}`` with ``n_repeats`` > 1), their mean and its corrected 95%
    interval (the one the test uses), zero and the region of practical equivalence. ``diffs``
    and ``tests`` are :class:`~medbench.report.parts.comparisons.Comparisons`'
    ``fold_differences`` and ``paired``."""
    pairs = list(dict.fromkeys(zip(tests["optimizer_a"], tests["optimizer_b"], strict=True)))
    fig, axes = subplots(
        len(models),
        len(metrics),
        max(4.2, 1.2 + 1.3 * len(pairs)) * len(metrics),
        3.2 * len(models) + 0.5,
    )
    with styled():
        for i, model in enumerate(models):
            for k, metric in enumerate(metrics):
                ax = axes[i, k]
                ax.axhspan(-rope, rope, color="#dddddd", alpha=0.6, lw=0, label=f"ROPE ±{rope:g}")
                ax.axhline(0, color="#777777", lw=0.8)
                labels: list[tuple[float, float, str, str]] = []
                for x, (a, b) in enumerate(pairs):
                    d = rows_where(diffs, model=model, metric=metric, optimizer_a=a, optimizer_b=b)
                    t = rows_where(tests, model=model, metric=metric, optimizer_a=a, optimizer_b=b)
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
                        name = unit_label(r.get(REPEAT, 1), r["fold"], n_repeats)
                        labels.append((x - 0.12, r["diff"], name, grey))
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
                        f"p Holm {fp(r['p_holm'])}"
                        if r.get("test_status", "tested") == "tested"
                        else "no test (no spread)",
                        (x, 1.0),
                        xycoords=("data", "axes fraction"),
                        ha="center",
                        va="top",
                        fontsize=7,
                        color="#444444",
                    )
                _difference_axes(ax, pairs, labels, model, metric, "fold")
        _difference_legend(fig, "a fold (marker per fold)", rope)
    return fig


def _difference_axes(ax, pairs, labels, model: str, metric: str, per: str) -> None:
    """The pairs on the x axis, the points' labels, the axis title: the same in the per-fold
    and per-repeat difference figures."""
    ax.set_xticks(range(len(pairs)), [f"{b} − {a}" for a, b in pairs])
    ax.set_xlim(-0.6, len(pairs) - 0.4)
    _label_points(ax, labels, -0.1)
    ax.set_ylabel(f"Difference in test {metric_label(metric)}")
    ax.set_title(f"{model}: {metric_label(metric)}, B − A per {per}", pad=12)


def _difference_legend(fig: Figure, points: str, rope: float) -> None:
    """The legend of the difference figures: the open markers (``points``), the mean with its
    corrected interval, the region of practical equivalence."""
    handles = [
        matplotlib.lines.Line2D(
            [], [], ls="none", marker="o", mfc="none", color="#444444", label=points
        ),
        matplotlib.lines.Line2D(
            [], [], ls="none", marker="D", color="black", label="mean, corrected 95% CI"
        ),
        matplotlib.patches.Patch(
            color="#dddddd", label=f"region of practical equivalence ±{rope:g}"
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)


def repeats_figure(
    per_repeat: pd.DataFrame,
    tests: pd.DataFrame,
    models: Sequence[str],
    rope: float,
    metric: str = "auc",
) -> Figure:
    """Per model and pair, each repeat's mean difference B − A over its folds (one marker per
    repeat, labelled), beside the mean over every (repeat, fold) pair with its corrected 95%
    interval (the test's); zero and the region of practical equivalence. ``per_repeat`` and
    ``tests`` are :class:`~medbench.report.parts.comparisons.Comparisons`' ``repeat_differences``
    and ``paired``."""
    mine = per_repeat[per_repeat["metric"] == metric]
    pairs = list(dict.fromkeys(zip(mine["optimizer_a"], mine["optimizer_b"], strict=True)))
    fig, axes = subplots(len(models), 1, max(4.2, 1.2 + 1.3 * len(pairs)), 3.2 * len(models) + 0.5)
    with styled():
        for i, model in enumerate(models):
            ax = axes[i, 0]
            ax.axhspan(-rope, rope, color="#dddddd", alpha=0.6, lw=0)
            ax.axhline(0, color="#777777", lw=0.8)
            labels: list[tuple[float, float, str, str]] = []
            for x, (a, b) in enumerate(pairs):
                reps = rows_where(mine, model=model, optimizer_a=a, optimizer_b=b)
                for k, r in enumerate(reps.itertuples()):
                    ax.plot(
                        x - 0.12, r.mean_diff, ls="none", marker=fold_marker(k), ms=5,
                        mfc="none", color="#444444",
                    )  # fmt: skip
                    labels.append((x - 0.12, r.mean_diff, f"r{r.repeat}", "#444444"))
                t = rows_where(tests, model=model, metric=metric, optimizer_a=a, optimizer_b=b)
                if t.empty:
                    continue
                t = t.iloc[0]
                lo, hi = t["corrected_ci_low"], t["corrected_ci_high"]
                yerr = None
                if math.isfinite(lo) and math.isfinite(hi):
                    yerr = [[t["mean_diff"] - lo], [hi - t["mean_diff"]]]
                ax.errorbar(
                    x + 0.12, t["mean_diff"], yerr=yerr, fmt="D", ms=6, capsize=4,
                    color="black", zorder=3,
                )  # fmt: skip
            _difference_axes(ax, pairs, labels, model, metric, "repeat")
        _difference_legend(fig, "a repeat's mean over its folds", rope)
    return fig
