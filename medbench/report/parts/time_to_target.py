"""Compute and time to target: validation AUC against the forward-backward passes and the wall
time spent to reach it, and the time and passes until the first epoch whose validation AUC
reaches the config's target (``report.target_val_auc``).

Read from the per-epoch curves (``val_auc``, ``epoch_time_s``, ``epoch_gradient_evals``) of the
usable units; time to target is recomputed from the curves with the config's target, the same
rule the engine logs it with (:func:`medbench.metrics.time_to_target`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medbench.metrics import describe_by, quartiles, time_to_target
from medbench.metrics import target_summary as summarise_targets
from medbench.report import document as d
from medbench.report.figures import FigureFiles, rows_where, save, styled, subplots, time_unit
from medbench.report.formatting import fcount, fpercent, seconds
from medbench.report.part import Analysis, Part, Writer
from medbench.report.units import drop_single_repeat, sort_units, with_repeat

UNIT = ["run_id", "model", "optimizer", "repeat", "fold", "seed"]
TARGET_KEYS = ("time_to_target_s", "gradient_evals_to_target")


@dataclass
class TimeToTarget:
    """Validation AUC by compute, and time to the target."""

    target: float  # ``report.target_val_auc``
    curves: pd.DataFrame  # per unit and epoch: val AUC, cumulative wall time and passes
    target_per_unit: pd.DataFrame  # per unit: reached, TARGET_KEYS (NaN when not reached)
    to_target: pd.DataFrame  # per (model, optimizer): n_units, n_reached, TARGET_KEYS summaries
    compute_curves: pd.DataFrame  # per (model, optimizer, step): cumulative cost, val AUC


def analyse(a: Analysis) -> TimeToTarget:
    inputs = a.inputs
    target = inputs.config.report.target_val_auc
    units = with_repeat(sort_units(inputs.inventory.units, inputs.models, inputs.optimizers))
    curves = unit_curves(inputs.record.curves, units)
    target_units = unit_targets(curves, units, target)
    return TimeToTarget(
        target=target,
        curves=curves,
        target_per_unit=inputs.in_order(target_units),
        to_target=inputs.in_order(target_summary(target_units)),
        compute_curves=inputs.in_order(compute_curves(curves)),
    )


def tables(t: TimeToTarget) -> dict[str, pd.DataFrame]:
    return {
        "time_to_target_per_fold": drop_single_repeat(t.target_per_unit),
        "time_to_target": t.to_target,
        "val_auc_by_compute": t.compute_curves,
    }


def figures(t: TimeToTarget, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    inputs = a.inputs
    if inputs.per_unit.empty or t.compute_curves.empty:
        return {}
    fig = compute_curves_figure(
        t.compute_curves, t.target, inputs.tested_models, inputs.tested_optimizers, inputs.colours
    )
    return {"compute_curves": save(fig, out, "fig_val_auc_by_compute")}


def sections(t: TimeToTarget, w: Writer) -> None:
    if t.compute_curves.empty:
        return
    w.doc.add(d.Heading("Compute and time to target"))
    w.image(
        "compute_curves",
        "Validation AUC against forward-backward passes and against wall time of training, "
        f"mean ± std over folds; dotted: the target {t.target:g}.",
    )
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Reached the target": f"{r['n_reached']}/{r['n_units']} runs "
            f"({fpercent(r['share_reached'])})",
            "Median time to target": _never(r["time_to_target_s_median"], seconds),
            "Median passes to target": _never(r["gradient_evals_to_target_median"], fcount),
        }
        for r in t.to_target.to_dict("records")
    ]
    w.table(
        pd.DataFrame(rows),
        f"Share of runs that reached validation AUC ≥ {t.target:g}, and the median training time "
        "and forward-backward passes until the first epoch that did, a run that never reached it "
        'counting as never (as AlgoPerf scores a miss, Dahl et al. 2023): "never" when half '
        "of the runs or more missed it, so an optimizer that reached the target once cannot look "
        "faster than one that always did. The CSV also has the median over the runs that reached "
        "it (`_median_of_reached`), a descriptive number only.",
        "time_to_target",
    )


PART = Part("time_to_target", analyse, tables, figures, sections)


def unit_curves(curves: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Per unit and epoch: val AUC and the cumulative wall time and passes up to that epoch."""
    columns = [*UNIT, "step", "val_auc", "epoch_time_s", "epoch_gradient_evals", "time_s", "evals"]
    wanted = ("val_auc", "epoch_time_s", "epoch_gradient_evals")
    if curves.empty or units.empty:
        return pd.DataFrame(columns=columns)
    mine = curves[curves["metric"].isin(wanted)]
    wide = mine.pivot_table(index=["run_id", "step"], columns="metric", values="value")
    wide = wide.reindex(columns=list(wanted)).reset_index().sort_values(["run_id", "step"])
    wide["time_s"] = wide.groupby("run_id")["epoch_time_s"].cumsum(skipna=False)
    wide["evals"] = wide.groupby("run_id")["epoch_gradient_evals"].cumsum(skipna=False)
    return units.merge(wide, on="run_id")[columns].reset_index(drop=True)


def unit_targets(curves: pd.DataFrame, units: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per unit: whether validation AUC reached ``target``, and the time and passes it took."""
    rows = []
    for unit in units.itertuples(index=False):
        mine = curves[curves["run_id"] == unit.run_id].sort_values("step")
        if mine.empty:
            continue
        found = time_to_target(
            mine["val_auc"].tolist(),
            {
                "time_to_target_s": mine["epoch_time_s"].tolist(),
                "gradient_evals_to_target": mine["epoch_gradient_evals"].tolist(),
            },
            target,
        )
        rows.append(
            {
                **unit._asdict(),
                "reached": bool(found),
                **{k: found.get(k, math.nan) for k in TARGET_KEYS},
            }
        )
    return pd.DataFrame(rows, columns=[*UNIT, "reached", *TARGET_KEYS])


def target_summary(per_unit: pd.DataFrame) -> pd.DataFrame:
    """Per (model, optimizer): runs, runs that reached the target and their share, and per key
    of :data:`TARGET_KEYS` the median counting a miss as never (infinite unless more than half
    reached it: :func:`medbench.metrics.target_summary`), with the median and quartiles over the
    runs that reached it as descriptive columns (``_median_of_reached``, ``_q25_of_reached``,
    ``_q75_of_reached``, ``_n``: the runs that reached it)."""
    rows = []
    for (model, opt), part in per_unit.groupby(["model", "optimizer"], sort=False):
        reached = part[part["reached"]]
        row = {"model": model, "optimizer": opt, "n_units": len(part), "n_reached": len(reached)}
        row["share_reached"] = len(reached) / len(part) if len(part) else math.nan
        for key in TARGET_KEYS:
            never = part[key].where(part["reached"], math.nan)
            summary, q = summarise_targets(never), quartiles(reached[key])
            row.update(
                {
                    f"{key}_median": summary.median,
                    f"{key}_median_of_reached": summary.median_of_reached,
                    f"{key}_q25_of_reached": q.q25,
                    f"{key}_q75_of_reached": q.q75,
                    f"{key}_n": q.n,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _never(value: float, fmt) -> str:
    """A median counting misses as never: "never" when it is infinite."""
    return "never" if value == math.inf else fmt(value)


def compute_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (model, optimizer, epoch): mean cumulative passes and wall time over units, and the
    mean, std and number of units of val AUC there (early-stopped runs leave later epochs)."""
    by = ["model", "optimizer", "step"]
    columns = [*by, "evals", "time_s", "val_auc_mean", "val_auc_std", "n"]
    if curves.empty:
        return pd.DataFrame(columns=columns)
    auc = describe_by(curves, by, "val_auc").rename(
        columns={"mean": "val_auc_mean", "std": "val_auc_std"}
    )
    cost = curves.groupby(by, sort=True)[["evals", "time_s"]].mean().reset_index()
    return cost.merge(auc, on=by)[columns]


def compute_curves_figure(
    curves: pd.DataFrame,
    target: float,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Validation AUC against forward-backward passes and against wall time of training, per
    optimizer: mean ± std over folds at each epoch, placed at the mean cumulative cost there;
    dotted: the target. ``curves`` is :attr:`TimeToTarget.compute_curves`."""
    panels = [
        ("evals", "Forward-backward passes", "passes"),
        ("time_s", "Wall time of training", "time"),
    ]
    fig, axes = subplots(len(models), 2, 8.0, 3.0 * len(models))
    with styled():
        for i, model in enumerate(models):
            for k, (key, label, short) in enumerate(panels):
                ax = axes[i, k]
                scale, unit = (
                    (1.0, "")
                    if key == "evals"
                    else time_unit(curves[key].tolist() if key in curves else [])
                )
                for opt in optimizers:
                    part = rows_where(curves, model=model, optimizer=opt).dropna(subset=[key])
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
