"""What training cost: epochs run, time per epoch, total training time, time to the selected
epoch and gradient evaluations (forward-backward passes) per run, and test AUC against that
compute; it continues the "Training" section.

Read from the per-epoch ``epoch_time_s`` and the final metrics of each usable unit; positive
quantities are summarised by their median and interquartile range over folds (seeds averaged
within each fold first), which never falls below zero when the values do not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.lines
import matplotlib.ticker
import pandas as pd
from matplotlib.figure import Figure

from medbench.report.figures import FigureFiles, rows_where, save, styled, subplots, time_unit
from medbench.report.formatting import fcount, fnum, fquartile_cell, seconds
from medbench.report.part import Analysis, Part, Writer
from medbench.report.units import as_float, drop_single_repeat, positive_summary, unit_curves

COST_KEYS = ("epochs", "epoch_time_s", "train_time_s", "time_to_best_epoch_s", "gradient_evals")


@dataclass
class Cost:
    """Training cost per unit and its summary per (model, optimizer)."""

    cost_per_unit: pd.DataFrame
    cost: pd.DataFrame  # median, quartiles (and mean) over folds of COST_KEYS


def analyse(a: Analysis) -> Cost:
    i = a.inputs
    units = unit_costs(i.record.curves, i.inventory.units, i.record.folds)
    return Cost(i.in_order(units), i.in_order(positive_summary(units, COST_KEYS)))


def tables(c: Cost) -> dict[str, pd.DataFrame]:
    return {"cost_per_fold": drop_single_repeat(c.cost_per_unit), "cost": c.cost}


def figures(c: Cost, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    """The training cost (``cost``) and test AUC against compute (``compute``)."""
    i = a.inputs
    if i.per_unit.empty or c.cost.empty:
        return {}
    models, opts, colours = i.tested_models, i.tested_optimizers, i.colours
    made = {"cost": save(cost_figure(c.cost, models, opts, colours), out, "fig_training_cost")}
    if c.cost["gradient_evals_n"].gt(0).any():
        performance = a.result("performance").performance
        fig = compute_figure(performance, c.cost, models, opts, colours)
        made["compute"] = save(fig, out, "fig_auc_vs_compute")
    return made


def sections(c: Cost, w: Writer) -> None:
    if c.cost.empty:
        return
    w.image(
        "cost",
        "Training cost per optimizer: time per epoch, total training time, and training time "
        "until the end of the selected epoch (the run's `best_epoch`); median over folds, bars "
        "from the lower to the upper quartile. SAM-family optimizers need two forward-backward "
        "passes per step.",
    )
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Folds": r["n_folds"],
            "Epochs run": fquartile_cell(r, "epochs", lambda x: fnum(x, 0)),
            "Time per epoch": fquartile_cell(r, "epoch_time_s", seconds),
            "Total training time": fquartile_cell(r, "train_time_s", seconds),
            "Time to the selected epoch": fquartile_cell(r, "time_to_best_epoch_s", seconds),
            "Gradient evaluations": fquartile_cell(r, "gradient_evals", fcount),
        }
        for r in c.cost.to_dict("records")
    ]
    w.table(pd.DataFrame(rows), "Median (lower–upper quartile) over folds.", "cost")
    w.image(
        "compute",
        "Test AUC (mean over folds, 95% bootstrap CI) against training compute: gradient "
        "evaluations per fold run (forward-backward passes on training batches; a SAM step "
        "makes two), median over folds, log scale.",
    )


PART = Part("cost", analyse, tables, figures, sections)


def unit_costs(curves: pd.DataFrame, units: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """Per unit: epochs run, mean time per epoch, total training time, the selected epoch
    (the run's ``best_epoch``), the training time until the end of that epoch (sum of
    ``epoch_time_s`` up to it) and the gradient evaluations (forward-backward passes; SAM makes
    two per step). A run without ``best_epoch`` has no time to it (NaN)."""
    uc = unit_curves(curves, units)
    logged = folds.drop_duplicates("run_id").set_index("run_id") if "run_id" in folds else None

    def final(run_id: str, name: str) -> float:
        if logged is None or name not in logged or run_id not in logged.index:
            return math.nan
        return as_float(logged.at[run_id, name])

    rows = []
    for unit in units.itertuples(index=False):
        mine = uc[uc["run_id"] == unit.run_id]
        et = mine[mine["metric"] == "epoch_time_s"].sort_values("step")
        tl = mine[mine["metric"] == "train_loss"]
        best = final(unit.run_id, "best_epoch")
        to_best = math.nan
        if math.isfinite(best) and not et.empty:
            to_best = float(et.loc[et["step"] <= best, "value"].sum())
        train_time = final(unit.run_id, "train_time_s")
        if not math.isfinite(train_time):
            train_time = float(et["value"].sum()) if not et.empty else math.nan
        if et.empty and not math.isfinite(train_time):
            continue  # nothing timed for this run
        rows.append(
            {
                "run_id": unit.run_id,
                "model": unit.model,
                "optimizer": unit.optimizer,
                "repeat": getattr(unit, "repeat", 1),
                "fold": unit.fold,
                "seed": unit.seed,
                "best_epoch": best,
                "epochs": int(tl["step"].nunique()) if not tl.empty else int(et["step"].nunique()),
                "epoch_time_s": float(et["value"].mean()) if not et.empty else math.nan,
                "train_time_s": float(train_time),
                "time_to_best_epoch_s": to_best,
                "gradient_evals": final(unit.run_id, "gradient_evals"),
            }
        )
    cols = ["run_id", "model", "optimizer", "repeat", "fold", "seed", "best_epoch", *COST_KEYS]
    return pd.DataFrame(rows, columns=cols)


def cost_figure(
    summary: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Time per epoch, total training time and time to the selected epoch: median over folds with
    the interquartile range (never below zero); ``summary`` is :attr:`Cost.cost`."""
    panels = [
        ("epoch_time_s", "Time per epoch"),
        ("train_time_s", "Total training time"),
        ("time_to_best_epoch_s", "Time to the selected epoch"),
    ]
    fig, axes = subplots(1, 3, 9.0, 3.2)
    n_opt = len(optimizers)
    width = 0.8 / max(n_opt, 1)
    with styled():
        for ax, (key, title) in zip(axes[0], panels, strict=True):
            scale, unit = time_unit(
                summary[f"{key}_q75"].tolist() if f"{key}_q75" in summary else []
            )
            for j, opt in enumerate(optimizers):
                xs, mid, low, high = [], [], [], []
                for i, model in enumerate(models):
                    row = rows_where(summary, model=model, optimizer=opt)
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


def compute_figure(
    performance: pd.DataFrame,
    cost_summary: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Test AUC (mean over folds, 95% bootstrap CI) against the training compute (gradient
    evaluations, median over folds; log scale): one colour per optimizer, one marker per model."""
    fig, axes = subplots(1, 1, 5.6, 4.4)
    ax = axes[0, 0]
    markers = ("o", "s", "^", "D", "v", "P", "X", "*")
    shown = [o for o in optimizers if o in set(performance["optimizer"])]
    with styled():
        for i, model in enumerate(models):
            for j, opt in enumerate(shown):
                perf = rows_where(performance, model=model, optimizer=opt)
                spend = rows_where(cost_summary, model=model, optimizer=opt)
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
        count = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")
        ax.xaxis.set_major_formatter(count)
        low, high = ax.get_xlim()
        if high < 10 * low:  # within a decade the minor ticks carry the numbers
            ax.xaxis.set_minor_formatter(count)
            ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel("Gradient evaluations per fold run (median over folds, log scale)")
        ax.set_ylabel("Test ROC AUC (mean over folds, 95% CI)")
        ax.set_title("Test AUC against training compute")
        handles = [
            matplotlib.lines.Line2D([], [], ls="none", marker="o", color=colours[o], label=o)
            for o in shown
        ]
        if len(models) > 1:
            handles += [
                matplotlib.lines.Line2D(
                    [], [], ls="none", marker=markers[i % len(markers)], color="#444444", label=m
                )
                for i, m in enumerate(models)
            ]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6))
    return fig
