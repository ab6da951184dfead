"""How training went: learning curves, cost and flatness of the finished runs.

Read from the per-epoch metrics (``step`` = epoch) and the ``flatness.json`` artifact of each
child run; only usable units (finished runs with predictions) are summarised.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from medbench.metrics import describe_by
from medbench.report import stats
from medbench.tracking import FLATNESS_FILE

FLATNESS_KEYS = ("hessian_top_eigenvalue", "hessian_trace", "sam_sharpness", "seconds", "n_samples")
COST_KEYS = ("epochs", "epoch_time_s", "train_time_s", "time_to_best_val_auc_s")


def _unit_curves(curves: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    if curves.empty or units.empty:
        return pd.DataFrame(
            columns=["run_id", "model", "optimizer", "fold", "seed", "metric", "step", "value"]
        )
    return units.merge(curves, on="run_id", how="inner")


def learning_curves(curves: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and number of units of each per-epoch metric, per (model, optimizer, epoch)
    (:func:`medbench.metrics.describe_by`).

    Early stopping ends runs at different epochs: later epochs average over fewer units (``n``).
    """
    return describe_by(_unit_curves(curves, units), ["model", "optimizer", "metric", "step"])


def unit_costs(curves: pd.DataFrame, units: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """Per unit: epochs run, mean time per epoch, total training time, and the training time
    until the epoch of the best validation AUC (sum of ``epoch_time_s`` up to that epoch)."""
    uc = _unit_curves(curves, units)
    total = folds.set_index("run_id")["train_time_s"] if "train_time_s" in folds else pd.Series()
    rows = []
    for unit in units.itertuples(index=False):
        mine = uc[uc["run_id"] == unit.run_id]
        et = mine[mine["metric"] == "epoch_time_s"].sort_values("step")
        va = mine[mine["metric"] == "val_auc"].sort_values("step")
        tl = mine[mine["metric"] == "train_loss"]
        to_best = math.nan
        if not va.empty and not et.empty:
            best_step = va["step"].to_numpy()[int(np.argmax(va["value"].to_numpy()))]
            to_best = float(et.loc[et["step"] <= best_step, "value"].sum())
        train_time = total.get(unit.run_id, math.nan)
        if not isinstance(train_time, float) or not math.isfinite(train_time):
            train_time = float(et["value"].sum()) if not et.empty else math.nan
        if et.empty and not math.isfinite(train_time):
            continue  # nothing timed for this run
        rows.append(
            {
                "run_id": unit.run_id,
                "model": unit.model,
                "optimizer": unit.optimizer,
                "fold": unit.fold,
                "seed": unit.seed,
                "epochs": int(tl["step"].nunique()) if not tl.empty else int(et["step"].nunique()),
                "epoch_time_s": float(et["value"].mean()) if not et.empty else math.nan,
                "train_time_s": float(train_time),
                "time_to_best_val_auc_s": to_best,
            }
        )
    return pd.DataFrame(rows, columns=["run_id", "model", "optimizer", "fold", "seed", *COST_KEYS])


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
                "fold": unit.fold,
                "seed": unit.seed,
                **{k: _num(flat.get(k)) for k in FLATNESS_KEYS},
            }
        )
    return pd.DataFrame(
        rows, columns=["run_id", "model", "optimizer", "fold", "seed", *FLATNESS_KEYS]
    )


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def summarise(per_unit: pd.DataFrame, keys, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, std, t CI and n of ``keys`` per (model, optimizer)."""
    rows = []
    for (model, opt), part in per_unit.groupby(["model", "optimizer"], sort=False):
        row = {"model": model, "optimizer": opt, "n_units": len(part)}
        for k in keys:
            row.update(stats.interval_columns(part[k], k, confidence))
        rows.append(row)
    return pd.DataFrame(rows)


def landscape(artifacts: dict, units: pd.DataFrame) -> pd.DataFrame:
    """1-D loss landscape per (model, optimizer): mean and std over units at each step along the
    direction (``alpha``); units measured on other grids are interpolated onto the first one."""
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
            frames.append(
                pd.DataFrame({"model": model, "optimizer": opt, "alpha": grid, "loss": loss})
            )
    curves = (
        pd.concat(frames)
        if frames
        else pd.DataFrame(columns=["model", "optimizer", "alpha", "loss"])
    )
    out = describe_by(curves, ["model", "optimizer", "alpha"], "loss")
    return out.rename(columns={"mean": "loss_mean", "std": "loss_std"})
