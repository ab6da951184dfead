"""How training went: learning curves, cost, compute, the SAM perturbation's fidelity and the
flatness of the finished runs.

Read from the per-epoch metrics (``step`` = epoch), the final metrics and the ``flatness.json``
artifact of each child run; only usable units (finished runs with predictions) are summarised.
Seeds are averaged within each fold first, as for the test metrics; positive quantities (times,
gradient evaluations, curvatures) are summarised by their median and interquartile range over
folds, which never falls below zero when the values do not.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from medbench.metrics import describe, describe_by, quartiles
from medbench.optim.fidelity import FIDELITY_THRESHOLD
from medbench.tracking import FLATNESS_FILE

FLATNESS_KEYS = ("hessian_top_eigenvalue", "hessian_trace", "sam_sharpness", "seconds", "n_samples")
COST_KEYS = ("epochs", "epoch_time_s", "train_time_s", "time_to_best_epoch_s", "gradient_evals")


def _unit_curves(curves: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    if curves.empty or units.empty:
        return pd.DataFrame(
            columns=["run_id", "model", "optimizer", "fold", "seed", "metric", "step", "value"]
        )
    return units.merge(curves, on="run_id", how="inner")


def _fold_average(frame: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """Mean of ``value`` over the seeds of each fold, per ``by`` (which holds ``fold``)."""
    if frame.empty:
        return frame
    return frame.groupby(by, sort=False, as_index=False)[value].mean()


def learning_curves(curves: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, quartiles and number of folds of each per-epoch metric, per (model, optimizer,
    epoch), seeds averaged within each fold first (:func:`medbench.metrics.describe_by`).

    Early stopping ends runs at different epochs: later epochs average over fewer folds (``n``).
    """
    per_fold = _fold_average(
        _unit_curves(curves, units), ["model", "optimizer", "fold", "metric", "step"]
    )
    return describe_by(per_fold, ["model", "optimizer", "metric", "step"])


def unit_costs(curves: pd.DataFrame, units: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """Per unit: epochs run, mean time per epoch, total training time, the selected epoch
    (the run's ``best_epoch``), the training time until the end of that epoch (sum of
    ``epoch_time_s`` up to it) and the gradient evaluations (forward-backward passes; SAM makes
    two per step). A run without ``best_epoch`` has no time to it (NaN)."""
    uc = _unit_curves(curves, units)
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
    cols = ["run_id", "model", "optimizer", "fold", "seed", "best_epoch", *COST_KEYS]
    return pd.DataFrame(rows, columns=cols)


def fidelity(curves: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Per (model, optimizer) that logged it: how faithfully the compute dtype carried the SAM
    perturbation (cosine between the intended ``e`` and what the forward pass saw, on each epoch's
    first step): runs, epochs measured, minimum and mean fidelity, epochs below
    :data:`FIDELITY_THRESHOLD`, and the range of the norm ratio."""
    uc = _unit_curves(curves, units)
    fid = uc[uc["metric"] == "perturbation_fidelity"]
    ratio = uc[uc["metric"] == "perturbation_norm_ratio"]
    rows = []
    for (model, opt), part in fid.groupby(["model", "optimizer"], sort=False):
        values = part["value"].astype(float)
        r = ratio[(ratio["model"] == model) & (ratio["optimizer"] == opt)]["value"].astype(float)
        rows.append(
            {
                "model": model,
                "optimizer": opt,
                "n_runs": part["run_id"].nunique(),
                "n_epochs": len(values),
                "fidelity_min": float(values.min()),
                "fidelity_mean": float(values.mean()),
                "n_below_threshold": int((values < FIDELITY_THRESHOLD).sum()),
                "threshold": FIDELITY_THRESHOLD,
                "norm_ratio_min": float(r.min()) if len(r) else math.nan,
                "norm_ratio_max": float(r.max()) if len(r) else math.nan,
            }
        )
    return pd.DataFrame(rows)


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
                **{k: as_float(flat.get(k)) for k in FLATNESS_KEYS},
            }
        )
    return pd.DataFrame(
        rows, columns=["run_id", "model", "optimizer", "fold", "seed", *FLATNESS_KEYS]
    )


def as_float(value) -> float:
    """A logged value as a float; NaN when it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def summarise(per_unit: pd.DataFrame, keys) -> pd.DataFrame:
    """Per (model, optimizer), over folds (seeds averaged within each fold): mean, std (for
    reference), and the median and interquartile range of each of ``keys``: the summary of
    positive quantities, whose bounds stay positive."""
    rows = []
    for (model, opt), part in per_unit.groupby(["model", "optimizer"], sort=False):
        folds = part.groupby("fold", sort=False)[list(keys)].mean()
        row = {"model": model, "optimizer": opt, "n_units": len(part), "n_folds": len(folds)}
        for k in keys:
            ci, q = describe(folds[k]), quartiles(folds[k])
            row.update(
                {
                    f"{k}_mean": ci.mean,
                    f"{k}_std": ci.std,
                    f"{k}_median": q.median,
                    f"{k}_q25": q.q25,
                    f"{k}_q75": q.q75,
                    f"{k}_n": q.n,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


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
            fold = part.loc[part["run_id"] == run_id, "fold"].iloc[0]
            frames.append(
                pd.DataFrame(
                    {"model": model, "optimizer": opt, "fold": fold, "alpha": grid, "loss": loss}
                )
            )
    cols = ["model", "optimizer", "fold", "alpha", "loss"]
    curves = _fold_average(
        pd.concat(frames) if frames else pd.DataFrame(columns=cols), cols[:4], "loss"
    )
    out = describe_by(curves, ["model", "optimizer", "alpha"], "loss")
    return out.rename(
        columns={"mean": "loss_mean", "std": "loss_std", "q25": "loss_q25", "q75": "loss_q75"}
    )
