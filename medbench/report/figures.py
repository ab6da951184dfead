"""What every figure of the report shares: the style, saving (PNG at print resolution + SVG), the
layout helpers, and the ROC figure (drawn for the test folds and for each external dataset).
A figure that one part of the report draws lives with that part (``medbench.report.parts``);
figures draw only: every curve, band, mean and count they show is a column of a table of the
part's analysis.

Figures are plain ``matplotlib.figure.Figure`` objects on the Agg canvas: no pyplot, no global
state, no GUI backend, whatever process builds the report. Each optimizer keeps one colour in
every figure (Okabe–Ito, colour-blind safe); the readers are drawn in black and grey.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medbench.report.formatting import fnum
from medbench.report.vocab import reader_style

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


@contextmanager
def styled() -> Iterator[None]:
    """The report's style (:data:`STYLE`), for drawing."""
    with mpl.rc_context(STYLE):
        yield


@dataclass(frozen=True)
class FigureFiles:
    stem: str
    png: Path
    svg: Path


def new_figure(width: float, height: float) -> Figure:
    """An empty figure on the Agg canvas, in the report's style."""
    with styled():
        fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, out_dir: Path, stem: str) -> FigureFiles:
    """Write ``stem.png`` (print resolution) and ``stem.svg``; metadata without dates."""
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    with styled():
        fig.savefig(png, dpi=PNG_DPI, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return FigureFiles(stem, png, svg)


def subplots(nrows: int, ncols: int, width: float, height: float, **kw):
    """A new figure and its grid of axes (always 2-D), in the report's style."""
    fig = new_figure(width, height)
    with styled():
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def time_unit(seconds: Sequence[float]) -> tuple[float, str]:
    """The scale and unit (s, min or h) that reads best for durations up to the largest."""
    finite = [s for s in seconds if isinstance(s, float | int) and math.isfinite(s)]
    top = max(finite, default=0.0)
    if top >= 2 * 3600:
        return 3600.0, "h"
    if top >= 2 * 60:
        return 60.0, "min"
    return 1.0, "s"


def quartile_band(table: pd.DataFrame, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """The interquartile band of a curve (``{prefix}q25``/``{prefix}q75`` columns): inside the
    values' range, so a loss band never falls below zero; no width where undefined."""
    mid = table[f"{prefix}mean"].to_numpy(dtype=float)
    low = table[f"{prefix}q25"].to_numpy(dtype=float)
    high = table[f"{prefix}q75"].to_numpy(dtype=float)
    return np.where(np.isfinite(low), low, mid), np.where(np.isfinite(high), high, mid)


def rows_where(table: pd.DataFrame, **where) -> pd.DataFrame:
    """The rows of ``table`` whose columns equal the given values."""
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= (table[column] == value).to_numpy()
    return table[mask]


def safe_name(name: str) -> str:
    """A name made safe for a file or folder name (figure stems, the report folder)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "report"


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
    performance part's ``roc``, ``performance`` and ``readers_by_model`` tables (or their external
    twins)."""
    fig, axes = subplots(1, 1, 4.6, 4.4)
    ax = axes[0, 0]
    with styled():
        for opt in optimizers:
            part = rows_where(curves, model=model, optimizer=opt)
            if part.empty:
                continue
            r = rows_where(performance, model=model, optimizer=opt).iloc[0]
            label = f"{opt} (AUC {r['auc_mean']:.3f} ± {fnum(r['auc_std'])}, {r['auc_n']} folds)"
            ax.plot(part["fpr"], part["tpr_mean"], color=colours[opt], lw=1.8, label=label)
            low, high = quartile_band(part, "tpr_")
            ax.fill_between(part["fpr"], low, high, color=colours[opt], alpha=0.15, lw=0)
        mine = rows_where(readers, model=model) if not readers.empty else readers
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
