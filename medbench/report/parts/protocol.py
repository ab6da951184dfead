"""The protocol: how the folds (and their repeats), the validation split, selection and the
threshold were set, how each optimizer was tuned (nested in each outer fold) and what budget each
run had; with what tuning chose and cost, the best validation score against the number of trials
used (does the ranking depend on the tuning budget? Schmidt, Schneider & Hennig 2021), a warning
when tuning at equal epochs costs the SAM family twice, and the compute of every run at equal
budgets.

Read from the typed config the runs logged, the fold runs (params ``lr``/``rho``, tag
``medbench.tuned``, the compute metrics) and their trial runs
(:attr:`~medbench.tracking.ExperimentRecord.trials`); only usable units (finished fold runs with
predictions) count.

What tuning tried and chose (the trials, the chosen settings, the best trial by trials used, and
their figures) is computed in :mod:`~medbench.report.parts.protocol_tuning`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.config import BudgetConfig, TuneConfig
from medbench.optim.registry import list_optimizers, passes_per_step
from medbench.report import document as d
from medbench.report.figures import FigureFiles, save
from medbench.report.formatting import fnum, fquartile_cell, fsig, seconds
from medbench.report.part import Analysis, Part, Writer
from medbench.report.parts.protocol_tuning import (
    UNIT,
    best_by_trials,
    budget_ranking,
    by_trials_figure,
    chosen,
    trial_table,
    tuning_choices,
)
from medbench.report.units import (
    as_float,
    drop_single_repeat,
    fold_keys,
    positive_summary,
    sort_units,
    with_repeat,
)
from medbench.tracking import schema as s
from medbench.tracking.reader import tag_column

COST_KEYS = (
    "train_time_s",
    "tuning_time_s",
    "total_time_s",
    "gradient_evals",
    "tuning_gradient_evals",
    "total_gradient_evals",
)


@dataclass
class Tuning:
    """Tuning and budget settings of the runs, and the numbers that describe them."""

    tune: TuneConfig
    budget: BudgetConfig
    epochs: int  # ``train.epochs``
    chosen: pd.DataFrame  # per tuned unit: lr, rho, trials, the best trial's objective
    trials: pd.DataFrame  # every trial run of a usable unit: its setting, objective and cost
    cost_per_unit: pd.DataFrame  # per unit: COST_KEYS (tuning 0 when not tuned)
    cost: pd.DataFrame  # median, quartiles, mean of COST_KEYS per (model, optimizer)
    equal_compute: pd.DataFrame  # under a gradient_evals budget (else empty)
    #: per (model, optimizer, trials used): the best objective so far, over tuned runs
    by_trials: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def tuned(self) -> bool:
        return self.tune.enabled or not self.chosen.empty

    @property
    def objective(self) -> str:
        return self.tune.objective


def analyse(a: Analysis) -> Tuning:
    """The tuning numbers of the usable units, rows in the report's order."""
    inputs = a.inputs
    record, config = inputs.record, inputs.config
    units = with_repeat(sort_units(inputs.inventory.units, inputs.models, inputs.optimizers))
    objective = config.tune.objective
    trials = trial_table(record.trials, units, objective)
    cost_units = unit_costs(record.folds, units)
    equal = pd.DataFrame()
    if config.train.budget.kind == "gradient_evals":
        epochs = training_epochs(a.result("time_to_target").curves)
        equal = equal_compute(cost_units, inputs.per_unit, epochs)
    return Tuning(
        tune=config.tune,
        budget=config.train.budget,
        epochs=config.train.epochs,
        chosen=inputs.in_order(chosen(record.folds, units, trials, objective)),
        trials=inputs.in_order(trials),
        cost_per_unit=inputs.in_order(cost_units),
        cost=inputs.in_order(positive_summary(cost_units, COST_KEYS)),
        equal_compute=inputs.in_order(equal),
        by_trials=inputs.in_order(best_by_trials(trials, objective)),
    )


def tables(t: Tuning) -> dict[str, pd.DataFrame]:
    return {
        "tuning_chosen": drop_single_repeat(t.chosen),
        "tuning_trials": drop_single_repeat(t.trials),
        "tuning_by_trials": t.by_trials,
        "total_cost_per_fold": drop_single_repeat(t.cost_per_unit),
        "total_cost": t.cost,
        "equal_compute": t.equal_compute,
    }


def figures(t: Tuning, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    inputs = a.inputs
    if inputs.per_unit.empty or t.chosen.empty:
        return {}
    space = t.tune.space
    bounds = {
        name: (getattr(space, f"{name}_low"), getattr(space, f"{name}_high"))
        for name in ("lr", "rho")
    }
    tuned = [m for m in inputs.tested_models if (t.chosen["model"] == m).any()]
    fig = tuning_choices(t.chosen, bounds, tuned, inputs.tested_optimizers, inputs.colours)
    made = {"tuning": save(fig, out, "fig_tuning")}
    if not t.by_trials.empty:
        fig = by_trials_figure(
            t.by_trials, t.objective, tuned, inputs.tested_optimizers, inputs.colours
        )
        made["tuning_budget"] = save(fig, out, "fig_tuning_by_trials")
    return made


def sections(t: Tuning, w: Writer) -> None:
    _protocol(w)
    _tuning_protocol(t, w)


PART = Part("protocol", analyse, tables, figures, sections)


# -- compute --------------------------------------------------------------------------------------


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
            row[key] = as_float(runs.at[unit.run_id, key]) if key in runs else math.nan
        if not tuned[unit.run_id]:
            row["tuning_time_s"] = row["tuning_gradient_evals"] = 0.0
        row["total_time_s"] = row["train_time_s"] + row["tuning_time_s"]
        row["total_gradient_evals"] = row["gradient_evals"] + row["tuning_gradient_evals"]
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def training_epochs(curves: pd.DataFrame) -> pd.Series:
    """Epochs each unit ran (by run_id), from its per-epoch curves."""
    return curves.groupby("run_id")["step"].nunique() if not curves.empty else pd.Series()


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
        units.groupby(["model", *fold_keys(units), "seed"])["gradient_evals"]
        .agg(lambda v: float(np.nanmax(v) - np.nanmin(v)))
        .groupby("model")
        .max()
    )
    out = positive_summary(units, ("gradient_evals", "steps", "epochs", "auc"))
    out["max_within_fold_difference"] = out["model"].map(spread)
    return out


# -- the sections ---------------------------------------------------------------------------------


def _protocol(w: Writer) -> None:
    a = w.inputs
    cfg, folds = a.config, w.record.folds
    units = a.inventory.units
    n_folds = (
        units["fold"].nunique() if not units.empty else folds.get("fold", pd.Series()).nunique()
    )
    seeds = sorted(set(folds.get("seed", pd.Series()).dropna().astype(int)))
    kind = cfg.data.folds
    single = {"official": "official", "all": "none"}  # the one fold of these modes
    found = set(units["fold"]) if not units.empty else set()
    if kind == "auto" and len(found) == 1 and next(iter(found)) in single:
        kind = single[next(iter(found))]
    fold_text = {
        "sheet": "the dataset sheet's own fold column",
        "stratified": "stratified folds made by the suite (a patient's images in one fold)",
        "site": "leave-one-site-out: each test fold is one hospital, training uses the other",
        "auto": "the dataset's own folds when it has them, else stratified folds",
        "official": "the dataset's official train/val/test split as one fold; its val part is "
        "the validation split",
        "none": "no internal test: the models trained on every image but the validation split "
        "and were tested on external data only",
    }.get(kind, str(kind))
    es = cfg.train.early_stopping
    sizes = a.per_unit[["n_train", "n_val", "n_test"]].median() if not a.per_unit.empty else None
    size_text = ""
    if sizes is not None and math.isfinite(sizes["n_train"]):
        size_text = (
            f" Median split: {sizes['n_train']:.0f} training, {sizes['n_val']:.0f} validation "
            f"and {sizes['n_test']:.0f} test images per fold."
        )
    repeats = int(units["repeat"].nunique()) if "repeat" in units and len(units) else 1
    partition = (
        f"{repeats} repeats × {n_folds} folds (repeat 1: {fold_text}; the others seeded "
        "re-partitions of the same images, stratified by label and site)"
        if repeats > 1
        else f"{n_folds} folds ({fold_text})"
    )
    items = [
        f"Cross-validation: {partition}; seeds "
        f"{', '.join(map(str, seeds)) or 'n/a'}. Each fold in turn is the test set.{size_text}",
        f"Validation split: {cfg.data.val_fraction:.0%} of the training folds is held out for "
        "model selection.",
        f"Selection rule: early stopping on `{es.monitor}` of the validation split (patience "
        f"{es.patience} epochs, at most {cfg.train.epochs} epochs); the best checkpoint on the "
        "validation split is evaluated once on the test fold. The test fold is never used for "
        "early stopping or selection.",
        "Paired design: for one (model, fold, seed), every optimizer starts from the same initial "
        "weights and sees the same batches in the same order.",
        f"Decision threshold: P(malignant) ≥ {a.threshold:g} is called malignant (accuracy, "
        "sensitivity, specificity, F1, balanced accuracy, confusion matrices).",
        f"Optimizer settings: lr {cfg.optimizer.lr}, rho {cfg.optimizer.rho}, weight decay "
        f"{cfg.optimizer.weight_decay}; batch size {cfg.train.batch_size}, image size "
        f"{cfg.data.image_size} px; precision `train.amp: {cfg.train.amp}`.",
    ]
    w.doc.add(d.Heading("Protocol"), d.Bullets(items))


def _budget_text(t: Tuning) -> str:
    kind, epochs = t.budget.kind, t.epochs
    if kind == "gradient_evals":
        amount = t.budget.gradient_evals
        amount = f"{int(amount)}" if amount else f"as many as {epochs} epochs of Adam take"
        return (
            f"Equal compute: every run gets the same number of forward-backward passes on "
            f"training batches ({amount}); a SAM or GCSAM step takes two, so Adam takes about "
            "twice their steps. Training stops at the step that would exceed the budget (in "
            "mid-epoch if need be); early stopping is off, the best validation epoch is selected."
        )
    if kind == "seconds":
        return (
            f"Equal compute: every run trains for {t.budget.seconds} s of wall time "
            "(validation included) on the same hardware; early stopping is off, the best "
            "validation epoch is selected."
        )
    return (
        f"Budget in epochs: at most {epochs} epochs per run, with early stopping. A SAM or GCSAM "
        "step takes two forward-backward passes, so at equal epochs they spend about twice "
        "Adam's compute (see the passes per run below)."
    )


def _tuning_text(t: Tuning) -> str:
    tune = t.tune
    if not t.tuned:
        return (
            "No tuning: every optimizer used the configured lr (and rho), the same for all, "
            "which favours whichever optimizer that value suits."
        )
    space, sampler = tune.space, tune.sampler
    ranges = f"lr log-uniform in [{space.lr_low}, {space.lr_high}]"
    ranges += f"; rho (SAM family) log-uniform in [{space.rho_low}, {space.rho_high}]"
    if sampler == "grid":
        ranges += f"; grid of {space.grid_points} log-spaced values per range"
    return (
        f"Tuning, nested in each outer fold: for every (model, optimizer, fold, seed), "
        f"{tune.trials} trials of {tune.epochs} epochs each (the same number for "
        f"every optimizer; a compute budget is scaled by trial epochs / training epochs), "
        f"sampler `{sampler}` (Optuna, seeded by model, fold, seed and trial: under random "
        f"search every optimizer tries the same learning rates), objective the best "
        f"`{t.objective}` of a trial on the validation split of the fold's training data. "
        f"Trials never see the test fold. Search space: {ranges}. The best trial's setting is "
        "then trained and tested as above; the lr and rho listed above are replaced by it."
    )


def tuning_cost_warning(t: Tuning) -> str:
    """A warning when tuning ran under a budget in epochs and cost the optimizers unequal
    compute: a SAM-family trial takes two forward-backward passes per step. The ratio is the
    logged ``tuning_gradient_evals`` (median over runs) against the first plain optimizer's,
    else the passes per step; nothing when it is within 10% of 1."""
    if not t.tuned or t.budget.kind != "epochs" or t.cost.empty:
        return ""
    known = set(list_optimizers())
    opts = [o for o in dict.fromkeys(t.cost["optimizer"]) if o in known]
    single = [o for o in opts if passes_per_step(o) == 1]
    if not single:
        return ""
    cost = t.cost.groupby("optimizer")["tuning_gradient_evals_median"].median()
    base = float(cost.get(single[0], math.nan))
    ratios = {}
    for o in opts:
        if o in single:
            continue
        logged = float(cost.get(o, math.nan)) / base if base > 0 else math.nan
        ratio = logged if math.isfinite(logged) else float(passes_per_step(o))
        if abs(ratio - 1) > 0.1:
            ratios[o] = ratio
    if not ratios:
        return ""
    spent = ", ".join(f"{o} {r:.1f}×" for o, r in ratios.items())
    return (
        f"**Tuning at equal epochs is not tuning at equal compute.** Every optimizer had "
        f"{t.tune.trials} trials of {t.tune.epochs} epochs, but a step of "
        f"{', '.join(ratios)} takes two forward-backward passes: their tuning spent {spent} "
        f"the passes of {single[0]}'s (tuning passes, median over runs). Set "
        "`train.budget.kind: gradient_evals` to give every optimizer's trials the same compute."
    )


def _tuning_protocol(t: Tuning, w: Writer) -> None:
    target = w.inputs.config.report.target_val_auc
    w.doc.add(
        d.Heading("Tuning and compute", 3),
        d.Bullets(
            [
                _tuning_text(t),
                _budget_text(t),
                f"Time to target: the training time and passes until the first epoch whose "
                f"validation AUC reaches {target:g} (`report.target_val_auc`).",
            ]
        ),
    )
    warning = tuning_cost_warning(t)
    if warning:
        w.doc.add(d.Paragraph(warning))
    if not t.chosen.empty:
        rows = [
            {
                "Model": r["model"],
                "Optimizer": r["optimizer"],
                "Fold": r["fold"],
                "Seed": r["seed"],
                "lr": fsig(r["lr"], 3),
                "rho": fsig(r["rho"], 3) if math.isfinite(r["rho"]) else "",
                "Trials (finished)": f"{r['n_trials']} ({r['n_finished']})",
                f"Best trial {t.objective}": fnum(r[t.objective]),
            }
            for r in t.chosen.to_dict("records")
        ]
        w.table(
            pd.DataFrame(rows),
            "Setting chosen by tuning per fold run (its params `lr`, `rho`); every trial is a run "
            "nested under its fold run (all trials: table_tuning_trials.csv).",
            "tuning_chosen",
        )
        w.image("tuning", "Chosen lr (and rho) per optimizer; one dot per fold and seed.")
    if not t.by_trials.empty:
        w.image(
            "tuning_budget",
            f"Best validation `{t.objective}` found after the first j trials, per optimizer "
            "(mean ± std over the tuned runs; table_tuning_by_trials.csv), as Schmidt, "
            "Schneider & Hennig (2021) compare optimizers: where the lines cross, the ranking "
            "depends on the tuning budget. " + budget_ranking(t.by_trials, t.objective),
        )
    if not t.cost.empty:
        rows = [
            {
                "Model": r["model"],
                "Optimizer": r["optimizer"],
                "Runs": r["n_units"],
                "Training time": seconds(r["train_time_s_mean"]),
                "Tuning time": seconds(r["tuning_time_s_mean"]),
                "Total time": seconds(r["total_time_s_mean"]),
                "Training passes": fnum(r["gradient_evals_mean"], 0),
                "Tuning passes": fnum(r["tuning_gradient_evals_mean"], 0),
                "Total passes": fnum(r["total_gradient_evals_mean"], 0),
            }
            for r in t.cost.to_dict("records")
        ]
        w.table(
            pd.DataFrame(rows),
            "Cost per run, mean over folds, tuning included in the total: wall time of training "
            "(validation included) and forward-backward passes on training batches.",
            "total_cost",
        )
    if not t.equal_compute.empty:
        rows = [
            {
                "Model": r["model"],
                "Optimizer": r["optimizer"],
                "Runs": r["n_units"],
                "Passes": fnum(r["gradient_evals_mean"], 0),
                "Steps": fnum(r["steps_mean"], 0),
                "Epochs": fnum(r["epochs_mean"], 1),
                "Test AUC": fquartile_cell(r, "auc", fnum),
                "Largest difference in passes within a fold": fnum(
                    r["max_within_fold_difference"], 0
                ),
            }
            for r in t.equal_compute.to_dict("records")
        ]
        w.table(
            pd.DataFrame(rows),
            "At equal compute: every optimizer had the same forward-backward passes per fold (to "
            "within one step), so the test results of this report compare optimizers at equal "
            "compute. Mean over folds; test AUC median (lower–upper quartile) over folds.",
            "equal_compute",
        )
