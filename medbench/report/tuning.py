"""The protocol's numbers: what tuning chose and cost, compute per run at equal budgets, and
time to a target validation AUC.

Read from the fold runs (params ``lr``/``rho``, tag ``medbench.tuned``, ``COMPUTE_METRICS``),
their trial runs (:attr:`~medbench.tracking.ExperimentRecord.trials`) and the per-epoch curves
(``val_auc``, ``epoch_time_s``, ``epoch_gradient_evals``); only usable units (finished fold runs
with predictions) count. Time to target is recomputed from the curves with the config's target,
the same rule the engine logs it with (:func:`medbench.metrics.time_to_target`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from medbench.config import OBJECTIVES, ReportConfig
from medbench.metrics import describe_by, quartiles, time_to_target
from medbench.optim.registry import passes_per_step
from medbench.report import training
from medbench.tracking import ExperimentRecord
from medbench.tracking import schema as s
from medbench.tracking.reader import param_column, tag_column

UNIT = ["run_id", "model", "optimizer", "fold", "seed"]
COST_KEYS = (
    "train_time_s",
    "tuning_time_s",
    "total_time_s",
    "gradient_evals",
    "tuning_gradient_evals",
    "total_gradient_evals",
)
TARGET_KEYS = ("time_to_target_s", "gradient_evals_to_target")
#: The engine's default target (``report.target_val_auc``), for configs that do not name one.
DEFAULT_TARGET = ReportConfig().target_val_auc


@dataclass
class Protocol:
    """Tuning, budget and target settings of the runs, and the numbers that describe them."""

    tune: dict[str, Any]  # the config's ``tune`` section ({} when the config has none)
    budget: dict[str, Any]  # ``train.budget`` (kind epochs when the config has none)
    epochs: int | None  # ``train.epochs``
    target: float  # ``report.target_val_auc``
    chosen: pd.DataFrame  # per tuned unit: lr, rho, trials, the best trial's objective
    trials: pd.DataFrame  # every trial run of a usable unit: its setting, objective and cost
    cost_per_unit: pd.DataFrame  # per unit: COST_KEYS (tuning 0 when not tuned)
    cost: pd.DataFrame  # mean, std, CI of COST_KEYS per (model, optimizer)
    target_per_unit: pd.DataFrame  # per unit: reached, TARGET_KEYS (NaN when not reached)
    to_target: pd.DataFrame  # per (model, optimizer): n_units, n_reached, TARGET_KEYS summaries
    compute_curves: pd.DataFrame  # per (model, optimizer, step): cumulative cost, val AUC
    equal_compute: pd.DataFrame = field(default_factory=pd.DataFrame)  # gradient_evals budget

    @property
    def tuned(self) -> bool:
        return bool(self.tune.get("enabled")) or not self.chosen.empty

    @property
    def objective(self) -> str:
        return _objective(self.tune)


def _objective(tune: dict[str, Any]) -> str:
    """``tune.objective`` of a logged config (``val_auc`` when it has none)."""
    return str(tune.get("objective") or "val_auc")


def _section(config: dict[str, Any], *keys: str) -> dict[str, Any]:
    node: Any = config
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return dict(node) if isinstance(node, dict) else {}


def protocol(
    record: ExperimentRecord,
    units: pd.DataFrame,
    per_unit: pd.DataFrame,
    models: list[str],
    optimizers: list[str],
) -> Protocol:
    """The protocol numbers of ``record``'s usable ``units`` (``per_unit``: their test metrics),
    rows in the report's order of ``models`` and ``optimizers``."""
    config = record.config or {}
    units = _ordered(units, models, optimizers)
    tune = _section(config, "tune")
    budget = {"kind": "epochs", **_section(config, "train", "budget")}
    target = float(_section(config, "report").get("target_val_auc") or DEFAULT_TARGET)
    epochs = _section(config, "train").get("epochs")
    objective = _objective(tune)
    trials = trial_table(record.trials, units, objective)
    cost_units = unit_costs(record.folds, units)
    curves = unit_curves(record.curves, units)
    target_units = unit_targets(curves, units, target)
    out = Protocol(
        tune=tune,
        budget=budget,
        epochs=int(epochs) if epochs is not None else None,
        target=target,
        chosen=chosen(record.folds, units, trials, objective),
        trials=trials,
        cost_per_unit=cost_units,
        cost=training.summarise(cost_units, COST_KEYS),
        target_per_unit=target_units,
        to_target=target_summary(target_units),
        compute_curves=compute_curves(curves),
    )
    if budget["kind"] == "gradient_evals":
        out.equal_compute = equal_compute(cost_units, per_unit, training_epochs(curves))
    return out


def _ordered(units: pd.DataFrame, models: list[str], optimizers: list[str]) -> pd.DataFrame:
    """``units`` sorted by model and optimizer in the given order, then seed and fold."""
    if units.empty:
        return units
    rank = {
        "model": {m: i for i, m in enumerate(models)},
        "optimizer": {o: i for i, o in enumerate(optimizers)},
    }
    keys = units.assign(
        **{f"_{k}": units[k].map(order).fillna(len(order)) for k, order in rank.items()}
    )
    keys = keys.sort_values(["_model", "_optimizer", "seed", "fold"], kind="stable")
    return keys[units.columns].reset_index(drop=True)


# -- tuning -----------------------------------------------------------------------------------------


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
                "lr": training.as_float(runs.at[unit.run_id, param_column("lr")]),
                "rho": training.as_float(
                    runs.get(param_column("rho"), pd.Series()).get(unit.run_id)
                ),
                "n_trials": len(mine),
                "n_finished": int((mine["status"] == "FINISHED").sum()),
                objective: float(best) if len(values) else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=columns)


# -- compute ----------------------------------------------------------------------------------------


def unit_costs(folds: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Per unit: training and tuning time and forward-backward passes, and their totals (tuning
    is 0 for a run that was not tuned)."""
    columns = [*UNIT, *COST_KEYS]
    if folds.empty or units.empty:
        return pd.DataFrame(columns=columns)
    runs = folds.set_index("run_id")
    tuned = runs.get(tag_column(s.TAG_TUNED), pd.Series(index=runs.index, dtype=object)) == "true"
    rows = []
    for unit in units.itertuples(index=False):
        row = unit._asdict()
        for key in ("train_time_s", "gradient_evals", "tuning_time_s", "tuning_gradient_evals"):
            row[key] = training.as_float(runs.at[unit.run_id, key]) if key in runs else math.nan
        if not tuned[unit.run_id]:
            row["tuning_time_s"] = row["tuning_gradient_evals"] = 0.0
        row["total_time_s"] = row["train_time_s"] + row["tuning_time_s"]
        row["total_gradient_evals"] = row["gradient_evals"] + row["tuning_gradient_evals"]
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


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


def training_epochs(curves: pd.DataFrame) -> pd.Series:
    """Epochs each unit ran (by run_id)."""
    return curves.groupby("run_id")["step"].nunique() if not curves.empty else pd.Series()


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
    """Per (model, optimizer): runs, runs that reached the target, and the median and quartiles
    (positive quantities) of time and passes to the target over the runs that reached it."""
    rows = []
    for (model, opt), part in per_unit.groupby(["model", "optimizer"], sort=False):
        reached = part[part["reached"]]
        row = {"model": model, "optimizer": opt, "n_units": len(part), "n_reached": len(reached)}
        for key in TARGET_KEYS:
            q = quartiles(reached[key])
            row.update(
                {f"{key}_median": q.median, f"{key}_q25": q.q25, f"{key}_q75": q.q75}
                | {f"{key}_n": q.n}
            )
        rows.append(row)
    return pd.DataFrame(rows)


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


def equal_compute(
    cost_units: pd.DataFrame, per_unit: pd.DataFrame, epochs: pd.Series
) -> pd.DataFrame:
    """Under a budget in gradient evaluations: per (model, optimizer), the passes, steps and
    epochs each run took with its test AUC, and per model the largest difference in passes
    between optimizers within one (fold, seed)."""
    if cost_units.empty:
        return pd.DataFrame()
    units = cost_units.merge(per_unit[["run_id", "auc"]], on="run_id", how="left")
    units["steps"] = units["gradient_evals"] / units["optimizer"].map(passes_per_step)
    units["epochs"] = units["run_id"].map(epochs).astype(float)
    spread = (
        units.groupby(["model", "fold", "seed"])["gradient_evals"]
        .agg(lambda v: float(np.nanmax(v) - np.nanmin(v)))
        .groupby("model")
        .max()
    )
    out = training.summarise(units, ("gradient_evals", "steps", "epochs", "auc"))
    out["max_within_fold_difference"] = out["model"].map(spread)
    return out
