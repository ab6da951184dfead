"""The units of the report and what each one gives: which runs count (:func:`inventory`), their
test predictions, their metrics recomputed from those predictions, the mean over the seeds of a
fold, per-epoch curves, and the mean test ROC over folds.

A *unit* is one finished child run, i.e. one (model, optimizer, repeat, fold, seed); units with
the same (repeat, fold, seed) are paired across optimizers. Runs that did not finish are listed
with their reason and the rows they belong to are marked incomplete, never silently averaged
over. Seeds are averaged within each (repeat, fold) first: that is the unit of analysis (the fold,
when the cross-validation was not repeated). Runs of stores without repeats are repeat 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from medbench.data.folds import SMALL_FOLD_SHARE
from medbench.metrics import METRIC_NAMES, binary_metrics, describe, describe_by, quartiles
from medbench.tracking import ExperimentRecord
from medbench.tracking.reader import param_column


@dataclass
class Inventory:
    """Which runs count, and what is missing or broken."""

    units: pd.DataFrame  # run_id, model, optimizer, repeat, fold, seed: finished, with predictions
    status: pd.DataFrame  # per (model, optimizer): n_expected, n_finished, complete, note
    problems: pd.DataFrame  # model, optimizer, repeat, fold, seed, status, reason, run_id

    @property
    def n_repeats(self) -> int:
        """Repeats of the cross-validation among the usable units (1 without repeats)."""
        return int(self.units["repeat"].nunique()) if len(self.units) else 1


_UNIT_COLS = ["run_id", "model", "optimizer", "repeat", "fold", "seed"]
#: What identifies the unit of analysis within a (model, optimizer): seeds are averaged over it.
FOLD_KEYS = ["repeat", "fold"]
#: The column of the repeat of a fold run (``record.folds``): the reader's, else its param.
REPEAT = "repeat"


def repeats_of(folds: pd.DataFrame) -> pd.Series:
    """The repeat of each fold run of ``folds`` as an integer: the reader's ``repeat`` column, or
    the runs' ``repeat`` param, 1 where neither is there (stores written before repeats)."""
    for col in (REPEAT, param_column(REPEAT)):
        if col in folds:
            return pd.to_numeric(folds[col], errors="coerce").fillna(1).astype(int)
    return pd.Series(1, index=folds.index, dtype=int)


def drop_single_repeat(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without its ``repeat`` column when every row is repeat 1: tables of a
    cross-validation that was not repeated stay as they were before repeats existed."""
    if REPEAT in frame and (frame[REPEAT].dropna() == 1).all():
        return frame.drop(columns=REPEAT)
    return frame


def with_repeat(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``repeat`` column (1 where it has none: a frame of units made before
    repeats, or by hand)."""
    return frame if REPEAT in frame else frame.assign(**{REPEAT: 1})


def fold_keys(frame: pd.DataFrame) -> list[str]:
    """:data:`FOLD_KEYS` of ``frame`` (``fold`` alone for frames without a repeat)."""
    return [k for k in FOLD_KEYS if k in frame]


def unit_label(repeat, fold, n_repeats: int) -> str:
    """How figures name a unit of analysis: ``f3``, or ``r2f3`` with repeats."""
    return f"f{fold}" if n_repeats <= 1 else f"r{repeat}f{fold}"


def _fold(value) -> int | str:
    """A fold label: an integer, or a site name under leave-one-site-out."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


_PROBLEM_COLS = ["model", "optimizer", "repeat", "fold", "seed", "status", "reason", "run_id"]


def inventory(folds: pd.DataFrame, predictions: pd.DataFrame, models, optimizers) -> Inventory:
    """Sort child runs into usable units and problems; expected units are every (repeat, fold,
    seed) seen for the model under any optimizer, so a job that never started is missing too."""
    if folds.empty:
        empty = pd.DataFrame(columns=_UNIT_COLS)
        return Inventory(empty, pd.DataFrame(), pd.DataFrame(columns=_PROBLEM_COLS))
    runs = folds[folds["fold"].notna()].copy()
    runs["seed"] = runs["seed"].fillna(0)
    runs[REPEAT] = repeats_of(runs)
    with_preds = set(predictions["run_id"]) if "run_id" in predictions else set()
    runs["usable"] = (runs["status"] == "FINISHED") & runs["run_id"].isin(with_preds)
    runs = runs.sort_values("end_time", na_position="first")
    # a rerun of the same job supersedes earlier attempts: keep the latest finished one
    usable = runs[runs["usable"]].drop_duplicates(
        ["model", "optimizer", REPEAT, "fold", "seed"], keep="last"
    )
    units = usable[_UNIT_COLS].copy()
    units["fold"] = units["fold"].map(_fold)
    units["seed"] = units["seed"].astype(int)
    units = units.sort_values(["model", "optimizer", "seed", REPEAT, "fold"]).reset_index(drop=True)

    cols = ["model", "optimizer", REPEAT, "fold", "seed"]
    keys = zip(*(units[c] for c in cols), strict=True)
    done = set(keys)
    used = set(units["run_id"])
    problems = []
    for row in runs.itertuples(index=False):
        if row.run_id in used:
            continue
        key = (row.model, row.optimizer, int(row.repeat), _fold(row.fold), int(row.seed))
        if key in done:
            continue  # superseded by a finished rerun of the same job
        reason = row.failure if isinstance(row.failure, str) and row.failure else None
        if row.status == "FINISHED":
            reason = reason or "finished without a predictions.csv artifact"
        elif row.status == "RUNNING":
            reason = reason or "still running, or its process died without closing the run"
        problems.append([*key, row.status, reason or "no reason recorded", row.run_id])

    status_rows = []
    for model in models:
        mine = runs[runs["model"] == model]
        expected = {
            (int(r), _fold(f), int(s))
            for r, f, s in zip(mine[REPEAT], mine["fold"], mine["seed"], strict=True)
        }
        for opt in optimizers:
            have = {k[2:] for k in done if k[0] == model and k[1] == opt}
            mine_opt = mine[mine["optimizer"] == opt]
            if mine_opt.empty and not have:
                continue
            for job in sorted(expected - have, key=str):
                if not any(p[:2] == [model, opt] and tuple(p[2:5]) == job for p in problems):
                    problems.append(
                        [model, opt, *job, "MISSING", "no run recorded for this job", None]
                    )
            n_exp, n_fin = len(expected), len(have)
            status_rows.append(
                {
                    "model": model,
                    "optimizer": opt,
                    "n_expected": n_exp,
                    "n_finished": n_fin,
                    "complete": n_fin == n_exp,
                    "note": "" if n_fin == n_exp else f"incomplete: {n_fin} of {n_exp} folds",
                }
            )
    problems_df = pd.DataFrame(problems, columns=_PROBLEM_COLS)
    problems_df = problems_df.sort_values(
        ["model", "optimizer", "seed", REPEAT, "fold"]
    ).reset_index(drop=True)
    return Inventory(units, pd.DataFrame(status_rows), problems_df)


def sort_units(units: pd.DataFrame, models: list[str], optimizers: list[str]) -> pd.DataFrame:
    """``units`` sorted by model and optimizer in the given order, then seed, repeat and fold."""
    if units.empty:
        return units
    rank = {
        "model": {m: i for i, m in enumerate(models)},
        "optimizer": {o: i for i, o in enumerate(optimizers)},
    }
    keys = units.assign(
        **{f"_{k}": units[k].map(order).fillna(len(order)) for k, order in rank.items()}
    )
    keys = keys.sort_values(["_model", "_optimizer", "seed", *fold_keys(units)], kind="stable")
    return keys[units.columns].reset_index(drop=True)


def unit_predictions(predictions: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Predictions of the usable units only, with the unit's repeat, fold and seed from its run
    params."""
    if units.empty or predictions.empty:
        return pd.DataFrame(columns=[*_UNIT_COLS, "id", "site", "label", "prob_malignant"])
    preds = predictions.drop(
        columns=["model", "optimizer", "seed", REPEAT, "fold"], errors="ignore"
    )
    out = units.merge(preds, on="run_id", how="inner")
    out["label"] = out["label"].astype(int)
    out["prob_malignant"] = out["prob_malignant"].astype(float)
    return out


def unit_metrics(preds: pd.DataFrame, threshold: float, folds: pd.DataFrame) -> pd.DataFrame:
    """One row per unit: every metric of :func:`medbench.metrics.binary_metrics` on its test fold,
    with the sizes of its split (``n_train``: images the model was fit on, validation excluded;
    ``n_val``; from the fold run's params, NaN when the run did not log them)."""
    sizes = pd.DataFrame({"run_id": folds.get("run_id", pd.Series(dtype=str))})
    for name in ("n_train", "n_val"):
        sizes[name] = pd.to_numeric(
            folds.get(param_column(name), pd.Series(math.nan, index=folds.index)), errors="coerce"
        )
    sizes = sizes.drop_duplicates("run_id").set_index("run_id")
    rows = []
    for keys, part in preds.groupby(_UNIT_COLS, sort=False):
        m = binary_metrics(part["label"].to_numpy(), part["prob_malignant"].to_numpy(), threshold)
        run_id = keys[0]
        rows.append(
            {
                **dict(zip(_UNIT_COLS, keys, strict=True)),
                "n_train": sizes.at[run_id, "n_train"] if run_id in sizes.index else math.nan,
                "n_val": sizes.at[run_id, "n_val"] if run_id in sizes.index else math.nan,
                "n_test": len(part),
                "n_malignant": int(part["label"].sum()),
                **m,
            }
        )
    cols = [*_UNIT_COLS, "n_train", "n_val", "n_test", "n_malignant", *METRIC_NAMES]
    return pd.DataFrame(rows, columns=cols).sort_values(
        ["model", "optimizer", "seed", REPEAT, "fold"]
    )


def test_train_ratios(per_unit: pd.DataFrame) -> pd.Series:
    """Per unit, n_test / n_train, the Nadeau–Bengio ratio of the corrected tests and intervals.

    Runs that did not log ``n_train`` use the images outside their test fold instead (the test
    images of the other folds of their model, repeat and seed: validation images included, which
    understates the correction a little)."""
    if per_unit.empty:
        return pd.Series(dtype=float, index=per_unit.index)
    by = ["model", *[k for k in (REPEAT,) if k in per_unit], "seed"]
    firsts = per_unit.drop_duplicates(["model", *fold_keys(per_unit), "seed"])
    n_images = firsts.groupby(by)["n_test"].sum()
    keys = pd.MultiIndex.from_frame(per_unit[by])
    fallback = n_images.reindex(keys).to_numpy() - per_unit["n_test"].to_numpy()
    n_train = per_unit["n_train"].fillna(pd.Series(fallback, index=per_unit.index))
    return per_unit["n_test"] / n_train


def mark_small_folds(per_unit: pd.DataFrame) -> pd.DataFrame:
    """``per_unit`` with a ``small_fold`` column: the fold's test part is far smaller than the
    median fold's (:data:`medbench.data.folds.SMALL_FOLD_SHARE`), e.g. a few images given a
    mistyped fold in the sheet; every mean and test still counts it as a full fold."""
    out = per_unit.copy()
    sizes = out.drop_duplicates(fold_keys(out))["n_test"]
    median = float(sizes.median()) if len(sizes) >= 3 else math.nan
    out["small_fold"] = (
        out["n_test"] < SMALL_FOLD_SHARE * median if math.isfinite(median) else False
    )
    return out


def fold_means(per_unit: pd.DataFrame, columns) -> pd.DataFrame:
    """Per (model, optimizer, repeat, fold): the mean over seeds of ``columns`` and the number of
    seeds (no ``repeat`` key when ``per_unit`` has none).

    The (repeat, fold) is the unit of analysis: seeds of one fold share its test images, so they
    are averaged before any interval or test (a NaN of one seed, e.g. no AUC, gives NaN)."""
    keys = ["model", "optimizer", *fold_keys(per_unit)]
    if per_unit.empty:
        return pd.DataFrame(columns=[*keys, "n_seeds", *columns])
    grouped = per_unit.groupby(keys, sort=False)
    out = grouped[list(columns)].agg(lambda v: v.mean(skipna=False))
    out.insert(0, "n_seeds", grouped.size())
    return out.reset_index()


def tested_runs(record: ExperimentRecord) -> pd.DataFrame:
    """The ``run_id`` of every run with test predictions, internal or external: a run trained with
    ``data.folds: none`` is tested on external data only, and still counts."""
    frames = [f[["run_id"]] for f in (record.predictions, record.external) if "run_id" in f]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run_id"])


#: False positive rates at which the folds' ROC curves are averaged.
ROC_GRID = np.linspace(0, 1, 201)


def mean_roc(preds: pd.DataFrame, grid: np.ndarray = ROC_GRID) -> pd.DataFrame:
    """Per (model, optimizer) and false positive rate of ``grid``: mean, std, quartiles and number
    of the folds' true positive rates (each unit's test ROC interpolated on the grid, starting at
    0, then averaged over the seeds of its fold). Units whose test fold holds a single class have
    no ROC and are left out."""
    frames = []
    units = fold_keys(preds)
    keys = ["model", "optimizer", *units, "run_id"]
    for key, part in preds.groupby(keys, sort=False):
        labels = part["label"].to_numpy()
        if len(np.unique(labels)) < 2:
            continue
        fpr, tpr, _ = roc_curve(labels, part["prob_malignant"].to_numpy())
        tpr_grid = np.interp(grid, fpr, tpr)
        tpr_grid[0] = 0.0
        frames.append(
            pd.DataFrame(
                {**dict(zip(keys[:-1], key[:-1], strict=True)), "fpr": grid, "tpr": tpr_grid}
            )
        )
    cols = ["model", "optimizer", *units, "fpr", "tpr"]
    curves = pd.concat(frames) if frames else pd.DataFrame(columns=cols)
    per_fold = curves.groupby(cols[:-1], sort=False, as_index=False)["tpr"].mean()
    out = describe_by(per_fold, ["model", "optimizer", "fpr"], "tpr")
    return out.rename(
        columns={"mean": "tpr_mean", "std": "tpr_std", "q25": "tpr_q25", "q75": "tpr_q75"}
    )


# -- per-epoch curves and positive quantities ------------------------------------------------------


def unit_curves(curves: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """The per-epoch metrics (``metric``, ``step``, ``value``) of the usable ``units``."""
    if curves.empty or units.empty:
        return pd.DataFrame(
            columns=["run_id", "model", "optimizer", "fold", "seed", "metric", "step", "value"]
        )
    return units.merge(curves, on="run_id", how="inner")


def fold_average(frame: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """Mean of ``value`` over the seeds of each (repeat, fold), per ``by`` (which holds
    ``fold``; the repeat is added where ``frame`` has one)."""
    if frame.empty:
        return frame
    if REPEAT in frame and REPEAT not in by:
        by = [*by[: by.index("fold")], REPEAT, *by[by.index("fold") :]]
    return frame.groupby(by, sort=False, as_index=False)[value].mean()


def as_float(value) -> float:
    """A logged value as a float; NaN when it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def positive_summary(per_unit: pd.DataFrame, keys) -> pd.DataFrame:
    """Per (model, optimizer), over folds (seeds averaged within each fold): mean, std (for
    reference), and the median and interquartile range of each of ``keys``: the summary of
    positive quantities (times, passes, curvatures), whose bounds stay positive."""
    rows = []
    for (model, opt), part in per_unit.groupby(["model", "optimizer"], sort=False):
        folds = part.groupby(fold_keys(part), sort=False)[list(keys)].mean()
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
