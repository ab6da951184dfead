"""Flatness of the minima: the largest Hessian eigenvalue, the Hessian trace and the SAM
sharpness of each fold's best checkpoint (its ``flatness.json``, else its logged metrics), and
the 1-D loss landscape around it. Positive quantities: median and quartiles over folds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medbench.metrics import describe_by
from medbench.report import document as d
from medbench.report.figures import (
    FigureFiles,
    quartile_band,
    rows_where,
    safe_name,
    save,
    styled,
    subplots,
)
from medbench.report.formatting import fnum, fquartile_cell, seconds
from medbench.report.part import Analysis, Part, Writer
from medbench.report.units import (
    as_float,
    drop_single_repeat,
    fold_average,
    fold_means,
    positive_summary,
)
from medbench.tracking import FLATNESS_FILE

FLATNESS_KEYS = ("hessian_top_eigenvalue", "hessian_trace", "sam_sharpness", "seconds", "n_samples")


@dataclass
class Flatness:
    per_unit: pd.DataFrame  # FLATNESS_KEYS per unit
    folds: pd.DataFrame  # per fold (mean over its seeds)
    summary: pd.DataFrame  # median, quartiles (and mean) over folds per (model, optimizer)
    landscape: pd.DataFrame  # the loss along one direction, over folds


def analyse(a: Analysis) -> Flatness:
    i = a.inputs
    record, units = i.record, i.inventory.units
    per_unit = flatness_units(record.artifacts, units, record.folds)
    return Flatness(
        per_unit=i.in_order(per_unit),
        folds=i.in_order(fold_means(per_unit, FLATNESS_KEYS)),
        summary=i.in_order(positive_summary(per_unit, FLATNESS_KEYS)),
        landscape=i.in_order(landscape(record.artifacts, units)),
    )


def tables(f: Flatness) -> dict[str, pd.DataFrame]:
    return {"flatness_per_fold": drop_single_repeat(f.per_unit), "flatness": f.summary}


def figures(f: Flatness, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    """The loss landscape and eigenvalues of each model measured (``flatness/{model}``)."""
    i = a.inputs
    if i.per_unit.empty or f.landscape.empty:
        return {}
    return {
        f"flatness/{model}": save(
            flatness_figure(f.landscape, f.folds, f.summary, model, i.tested_optimizers, i.colours),
            out,
            f"fig_flatness_{safe_name(model)}",
        )
        for model in i.tested_models
        if (f.landscape["model"] == model).any()
    }


def sections(f: Flatness, w: Writer) -> None:
    a = w.inputs
    if f.summary.empty:
        return
    w.doc.add(
        d.Heading("Flatness of the minima"),
        d.Paragraph(
            "Measured on the best checkpoint of each fold, on a fixed seeded subset of its "
            "training data: the largest Hessian eigenvalue (Lanczos on Hessian-vector "
            "products, or power iteration with flatness.method: power), the Hessian trace "
            "(Hutchinson, deflated by the Lanczos basis), and the SAM sharpness (loss increase "
            "after one ascent step of radius flatness.rho, the same for every optimizer "
            "whatever rho it trained with). Lower means flatter."
        ),
    )
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Folds": r["n_folds"],
            "Top Hessian eigenvalue": fquartile_cell(r, "hessian_top_eigenvalue"),
            "Hessian trace": fquartile_cell(r, "hessian_trace"),
            "SAM sharpness": fquartile_cell(r, "sam_sharpness"),
            "Cost per fold": fquartile_cell(r, "seconds", seconds),
            "Samples": fnum(r["n_samples_median"], 0),
        }
        for r in f.summary.to_dict("records")
    ]
    w.table(pd.DataFrame(rows), "Median (lower–upper quartile) over folds.", "flatness")
    for model in a.models:
        w.image(
            f"flatness/{model}",
            f"{model}: training loss along one filter-normalised random direction from the best "
            "checkpoint (mean over folds, band from the lower to the upper quartile), and each "
            "fold's largest Hessian eigenvalue with their median.",
        )


PART = Part("flatness", analyse, tables, figures, sections)


def flatness_units(artifacts: dict, units: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """Per unit: the flatness numbers of its ``flatness.json`` (else its logged metrics)."""
    metrics = folds.set_index("run_id")
    rows = []
    for unit in units.itertuples(index=False):
        flat = artifacts.get(unit.run_id, {}).get(FLATNESS_FILE)
        if flat is None:
            if unit.run_id not in metrics.index:
                continue
            found = {k: metrics.at[unit.run_id, k] for k in FLATNESS_KEYS[:3] if k in metrics}
            if not found or all(pd.isna(v) for v in found.values()):
                continue
            flat = found
        rows.append(
            {
                "run_id": unit.run_id,
                "model": unit.model,
                "optimizer": unit.optimizer,
                "repeat": getattr(unit, "repeat", 1),
                "fold": unit.fold,
                "seed": unit.seed,
                **{k: as_float(flat.get(k)) for k in FLATNESS_KEYS},
            }
        )
    return pd.DataFrame(
        rows, columns=["run_id", "model", "optimizer", "repeat", "fold", "seed", *FLATNESS_KEYS]
    )


def landscape(artifacts: dict, units: pd.DataFrame) -> pd.DataFrame:
    """1-D loss landscape per (model, optimizer): mean, std and quartiles over folds (seeds
    averaged within each) at each step along the direction (``alpha``); units measured on other
    grids are interpolated onto the first one."""
    frames = []
    for (model, opt), part in units.groupby(["model", "optimizer"], sort=False):
        grid = None
        for run_id in part["run_id"]:
            flat = artifacts.get(run_id, {}).get(FLATNESS_FILE) or {}
            a = np.asarray(flat.get("landscape_alphas") or [], dtype=float)
            v = np.asarray(flat.get("landscape_losses") or [], dtype=float)
            if len(a) == 0 or len(a) != len(v):
                continue
            order = np.argsort(a)
            a, v = a[order], v[order]
            if grid is None:
                grid = a
            loss = v if np.array_equal(a, grid) else np.interp(grid, a, v)
            unit = part.loc[part["run_id"] == run_id].iloc[0]
            frames.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "optimizer": opt,
                        "repeat": unit.get("repeat", 1),
                        "fold": unit["fold"],
                        "alpha": grid,
                        "loss": loss,
                    }
                )
            )
    cols = ["model", "optimizer", "repeat", "fold", "alpha", "loss"]
    curves = fold_average(
        pd.concat(frames) if frames else pd.DataFrame(columns=cols), cols[:5], "loss"
    )
    out = describe_by(curves, ["model", "optimizer", "alpha"], "loss")
    return out.rename(
        columns={"mean": "loss_mean", "std": "loss_std", "q25": "loss_q25", "q75": "loss_q75"}
    )


def flatness_figure(
    landscape: pd.DataFrame,
    per_fold: pd.DataFrame,
    summary: pd.DataFrame,
    model: str,
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """1-D loss landscape along a filter-normalised random direction (mean over folds,
    interquartile band), and each fold's largest Hessian eigenvalue with their median; the tables
    are :class:`Flatness`' ``landscape``, ``folds`` and ``summary``."""
    fig, axes = subplots(1, 2, 8.0, 3.4, width_ratios=[2, 1])
    ax, ax2 = axes[0]
    key = "hessian_top_eigenvalue"
    with styled():
        for opt in optimizers:
            part = rows_where(landscape, model=model, optimizer=opt)
            if part.empty:
                continue
            ax.plot(part["alpha"], part["loss_mean"], color=colours[opt], lw=1.6, label=opt)
            low, high = quartile_band(part, "loss_")
            ax.fill_between(part["alpha"], low, high, color=colours[opt], alpha=0.15, lw=0)
        ax.set_xlabel("Step along the direction (α, filter-normalised units)")
        ax.set_ylabel("Training loss (cross-entropy)")
        ax.set_title(f"{model}: 1-D loss landscape, best checkpoint")
        ax.legend(title="optimizer (band: IQR)")
        mine = rows_where(per_fold, model=model)
        cols = [o for o in optimizers if (mine["optimizer"] == o).any()]
        for j, opt in enumerate(cols):
            vals = rows_where(mine, optimizer=opt)[key].dropna()
            ax2.plot(np.full(len(vals), j), vals, ls="none", marker="o", ms=5, color=colours[opt])
            r = rows_where(summary, model=model, optimizer=opt).iloc[0]
            if r[f"{key}_n"]:
                ax2.plot([j - 0.25, j + 0.25], [r[f"{key}_median"]] * 2, color=colours[opt], lw=2)
        ax2.set_xticks(range(len(cols)), cols)
        ax2.set_xlim(-0.5, len(cols) - 0.5)
        ax2.set_ylabel("Largest Hessian eigenvalue")
        ax2.set_title("Per fold (line: median)")
    return fig
