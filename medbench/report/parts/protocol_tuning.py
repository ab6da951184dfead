"""What tuning tried and chose, for the protocol part (:mod:`medbench.report.parts.protocol`):
every trial of a usable unit, the setting each tuned unit chose, the best validation objective
against the trials used (does the ranking depend on the tuning budget? Schmidt, Schneider &
Hennig 2021) in numbers, words and a figure, and the figure of the chosen settings. Apart from the
protocol part (its analysis, compute, tables and section), so that each module stays small; a
helper of that part, not a part itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medbench.config import OBJECTIVES
from medbench.report.figures import rows_where, styled, subplots
from medbench.report.units import as_float
from medbench.tracking import schema as s
from medbench.tracking.reader import param_column, tag_column

#: The columns that name a unit (its fold run) in the tuning and cost tables.
UNIT = ["run_id", "model", "optimizer", "repeat", "fold", "seed"]


# -- the numbers ----------------------------------------------------------------------------------


def trial_table(trials: pd.DataFrame, units: pd.DataFrame, objective: str) -> pd.DataFrame:
    """One row per trial of a usable unit: the unit (``run_id``: its fold run), the trial and its
    run, status, lr, rho, objective and cost."""
    columns = [*UNIT, "trial", "trial_run_id", "status", "lr", "rho", objective]
    columns += ["gradient_evals", "train_time_s"]
    if trials is None or trials.empty or units.empty:
        return pd.DataFrame(columns=columns)
    mine = trials[trials["parent_run_id"].isin(set(units["run_id"]))]

    def numbers(column: str) -> pd.Series:
        return pd.to_numeric(mine.get(column, pd.Series(index=mine.index)), errors="coerce")

    table = pd.DataFrame(
        {
            "run_id": mine["parent_run_id"],  # the unit's fold run
            "trial": mine["trial"],
            "trial_run_id": mine["run_id"],
            "status": mine["status"],
            "lr": numbers(param_column("lr")),
            "rho": numbers(param_column("rho")),
            **{k: numbers(k) for k in (objective, "gradient_evals", "train_time_s")},
        }
    )
    out = units.assign(_unit=range(len(units))).merge(table, on="run_id")
    return out.sort_values(["_unit", "trial"])[columns].reset_index(drop=True)


def chosen(
    folds: pd.DataFrame, units: pd.DataFrame, trials: pd.DataFrame, objective: str
) -> pd.DataFrame:
    """Per tuned unit: the chosen ``lr`` and ``rho`` (its fold run's params), how many trials ran
    and finished, and the best trial's objective on the validation split."""
    columns = [*UNIT, "lr", "rho", "n_trials", "n_finished", objective]
    tuned_col = tag_column(s.TAG_TUNED)
    if folds.empty or units.empty or tuned_col not in folds:
        return pd.DataFrame(columns=columns)
    runs = folds[folds[tuned_col] == "true"].set_index("run_id")
    rows = []
    for unit in units.itertuples(index=False):
        if unit.run_id not in runs.index:
            continue
        mine = trials[trials["run_id"] == unit.run_id]
        values = mine[objective].dropna()
        best = values.max() if OBJECTIVES.get(objective) == "maximize" else values.min()
        rows.append(
            {
                **unit._asdict(),
                "lr": as_float(runs.at[unit.run_id, param_column("lr")]),
                "rho": as_float(runs.get(param_column("rho"), pd.Series()).get(unit.run_id)),
                "n_trials": len(mine),
                "n_finished": int((mine["status"] == "FINISHED").sum()),
                objective: float(best) if len(values) else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def best_by_trials(trials: pd.DataFrame, objective: str) -> pd.DataFrame:
    """The best validation objective after the first j trials, per tuned run, summarised per
    (model, optimizer, j): mean, std and number of runs (``n_units``). A trial that did not
    finish leaves the best so far as it was. Read against j, it shows whether the ranking of
    the optimizers depends on the tuning budget (Schmidt, Schneider & Hennig, ICML 2021)."""
    cols = ["model", "optimizer", "n_trials", "best_mean", "best_std", "n_units"]
    if trials.empty or objective not in trials:
        return pd.DataFrame(columns=cols)
    maximize = OBJECTIVES.get(objective) == "maximize"
    rows = []
    for (model, opt, _), part in trials.groupby(["model", "optimizer", "run_id"], sort=False):
        part = part.sort_values("trial")
        done = part[objective].where(part["status"] == "FINISHED")
        best = done.cummax() if maximize else done.cummin()
        for j, value in enumerate(best.ffill().to_numpy(), start=1):
            rows.append({"model": model, "optimizer": opt, "n_trials": j, "best": value})
    if not rows:
        return pd.DataFrame(columns=cols)
    frame = pd.DataFrame(rows)
    out = (
        frame.groupby(["model", "optimizer", "n_trials"], sort=False)["best"]
        .agg(best_mean="mean", best_std="std", n_units="count")
        .reset_index()
    )
    return out[cols]


# -- in words -------------------------------------------------------------------------------------


def budget_ranking(by_trials: pd.DataFrame, objective: str) -> str:
    """One sentence: whether the optimizers' order by mean best trial (best first) is the same
    after one trial as after all of them, per model."""
    out = []
    ascending = OBJECTIVES.get(objective) != "maximize"
    for model, part in by_trials.groupby("model", sort=False):
        first, last = part["n_trials"].min(), part["n_trials"].max()
        order = [
            list(
                part[part["n_trials"] == j].sort_values(
                    "best_mean", ascending=ascending, kind="stable"
                )["optimizer"]
            )
            for j in (first, last)
        ]
        if len(order[1]) < 2:
            continue
        same = order[0] == order[1]
        out.append(
            f"{model}: the order after {first} trial(s) ({', '.join(order[0])}) is "
            + ("the same" if same else "not the same")
            + f" as after {last} ({', '.join(order[1])})"
        )
    return ("; ".join(out) + ".") if out else ""


# -- the figures ----------------------------------------------------------------------------------


def by_trials_figure(
    by_trials: pd.DataFrame,
    objective: str,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """Best validation objective against the trials used, per optimizer: mean ± std over the
    tuned runs (:func:`best_by_trials`); lines that cross mean a ranking that depends on the
    tuning budget."""
    fig, axes = subplots(len(models), 1, 5.2, 3.0 * len(models))
    with styled():
        for i, model in enumerate(models):
            ax = axes[i, 0]
            for opt in optimizers:
                part = rows_where(by_trials, model=model, optimizer=opt)
                if part.empty:
                    continue
                x, mean = part["n_trials"], part["best_mean"]
                std = part["best_std"].fillna(0.0)
                ax.plot(x, mean, marker="o", ms=4, color=colours[opt], label=opt)
                low, high = mean - std, mean + std
                if objective == "val_auc":
                    low, high = low.clip(0, 1), high.clip(0, 1)
                ax.fill_between(x, low, high, color=colours[opt], alpha=0.15, lw=0)
            ax.set_xlabel("Tuning trials used")
            ax.set_ylabel(f"Best validation {objective.replace('val_', '')}")
            ax.set_title(f"{model}: best trial so far (mean ± std over runs)")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(title="optimizer")
    return fig


def tuning_choices(
    chosen: pd.DataFrame,
    bounds: Mapping[str, tuple[float, float]],
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
) -> Figure:
    """The ``lr`` (and ``rho``) tuning chose per optimizer, one dot per fold (and seed), on a
    log axis between the search bounds (dashed); ``chosen`` is :attr:`~medbench.report.parts.protocol.Tuning.chosen`."""
    params = [p for p in ("lr", "rho") if chosen[p].notna().any()]
    fig, axes = subplots(len(models), len(params), 3.0 * len(params) + 1.0, 2.6 * len(models))
    with styled():
        for i, model in enumerate(models):
            mine = rows_where(chosen, model=model)
            for k, param in enumerate(params):
                ax = axes[i, k]
                cols = [o for o in optimizers if rows_where(mine, optimizer=o)[param].notna().any()]
                for j, opt in enumerate(cols):
                    vals = rows_where(mine, optimizer=opt)[param].dropna().to_numpy()
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
