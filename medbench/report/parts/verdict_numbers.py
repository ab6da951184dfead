"""The verdict's numbers: the means over the units every optimizer of a model finished, each
comparison as ``optimizer − reference``, how far the grid had come and the compute each optimizer
spent. Apart from the verdict part (:mod:`medbench.report.parts.verdict`: its sections) and the
wording of its bottom line (:mod:`medbench.report.parts.verdict_wording`), so that each module
stays small; a helper of the verdict part, not a part itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medbench.optim.registry import DEFAULTS, list_optimizers, passes_per_step
from medbench.report.inputs import Inputs
from medbench.report.units import REPEAT, fold_keys, repeats_of

#: The optimizer every other one is compared with in the verdict, when it ran: the base optimizer
#: of the SAM family (the registry's), so that each SAM arm is weighed against its own base.
BASELINE = DEFAULTS["base"]
#: Level below which a Holm-adjusted p is called significant.
ALPHA = 0.05
#: Spread of passes between optimizers (as a ratio) that still counts as equal compute.
EQUAL_COMPUTE = 0.1


@dataclass(frozen=True)
class GridState:
    """How far the grid of the report had come: a report may be built while its grid runs."""

    n_expected: int  # fold runs the config asks for (models × optimizers × repeats × folds × seeds)
    n_recorded: int  # jobs with a fold run in the store
    n_finished: int  # jobs whose run finished with predictions (the usable units)
    n_running: int  # fold runs still RUNNING (or whose process died without closing them)
    n_parents_running: int  # parent runs still RUNNING: the grid has not closed them

    @property
    def unfinished(self) -> bool:
        """The grid was still at work (or stopped before every job ran)."""
        return bool(self.n_running or self.n_parents_running or self.n_recorded < self.n_expected)

    def text(self) -> str:
        """ "3 of 15 fold runs finished (2 running, 10 not started)"."""
        extra = []
        if self.n_running:
            extra.append(f"{self.n_running} running")
        if self.n_expected > self.n_recorded:
            extra.append(f"{self.n_expected - self.n_recorded} not started")
        failed = self.n_recorded - self.n_finished - self.n_running
        if failed > 0:
            extra.append(f"{failed} failed or stopped")
        more = f" ({', '.join(extra)})" if extra else ""
        return f"{self.n_finished} of {self.n_expected} fold runs finished{more}"


def common_means(per_unit: pd.DataFrame, models, optimizers, metrics=("auc", "accuracy")):
    """Per model and optimizer, the mean of each metric over the units of analysis (the
    (repeat, fold) units, seeds averaged within each) that every optimizer of the model
    finished, on the seeds all of them finished there: ranking on each optimizer's own folds
    would let a failed run of a hard fold crown the optimizer that missed it.

    Columns ``{metric}_mean``, ``{metric}_n`` (units with a defined value), ``n_units`` (units
    every optimizer finished), ``n_repeats``, ``n_own`` (the optimizer's own units)."""
    rows = []
    cols = ["model", "optimizer", "n_units", "n_own", "n_repeats"]
    cols += [f"{m}_{k}" for m in metrics for k in ("mean", "n")]
    if per_unit.empty:
        return pd.DataFrame(columns=cols)
    keys = [*fold_keys(per_unit), "seed"]
    for model in models:
        mine = per_unit[per_unit["model"] == model]
        present = [o for o in optimizers if (mine["optimizer"] == o).any()]
        if not present:
            continue
        shared = None
        for opt in present:
            have = set(map(tuple, mine.loc[mine["optimizer"] == opt, keys].to_numpy()))
            shared = have if shared is None else shared & have
        shared = shared or set()
        for opt in present:
            own = mine[mine["optimizer"] == opt]
            kept = own[[tuple(k) in shared for k in own[keys].to_numpy()]]
            units = kept.groupby(fold_keys(kept), sort=False)[list(metrics)].mean()
            row = {
                "model": model,
                "optimizer": opt,
                "n_units": len(units),
                "n_own": int(own.groupby(fold_keys(own)).ngroups),
                "n_repeats": int(kept[REPEAT].nunique()) if REPEAT in kept and len(kept) else 1,
            }
            for m in metrics:
                values = units[m].to_numpy(dtype=float)
                finite = values[np.isfinite(values)]
                row[f"{m}_mean"] = float(finite.mean()) if len(finite) else math.nan
                row[f"{m}_n"] = len(finite)
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def against_baseline(
    performance: pd.DataFrame, paired_table: pd.DataFrame, optimizers, metric: str = "auc"
) -> pd.DataFrame:
    """The verdict's numbers: per model and optimizer, the mean ``metric`` (of ``performance``:
    the verdict passes :func:`common_means`, over the units every optimizer finished), whether
    it is the model's highest, and the difference from the baseline (:data:`BASELINE`, else the
    first optimizer) as ``paired`` tests it, turned round when the baseline is the pair's B: the
    difference optimizer − baseline with its corrected interval, the Holm-adjusted p and the
    Bayesian probabilities that the optimizer is better, equivalent, or worse."""
    rows = []
    for model, part in performance.groupby("model", sort=False):
        present = [o for o in optimizers if o in set(part["optimizer"])]
        if not present:
            continue
        baseline = BASELINE if BASELINE in present else present[0]
        means = part.set_index("optimizer")[f"{metric}_mean"]
        best = means.idxmax() if means.notna().any() else None
        for opt in present:
            row = {
                "model": model,
                "optimizer": opt,
                "baseline": baseline,
                "mean": means[opt],
                "n_folds": int(part.set_index("optimizer").at[opt, f"{metric}_n"]),
                "best": opt == best,
            }
            if opt != baseline and not paired_table.empty:
                found = _pair(paired_table, model, metric, baseline, opt)
                if found is not None:
                    row.update(found)
            rows.append(row)
    cols = ["model", "optimizer", "baseline", "mean", "n_folds", "best", "diff", "ci_low"]
    cols += ["ci_high", "p_holm", "family_size", "rope", "p_better", "p_equivalent", "p_worse"]
    cols += ["test_status", "mdd", "max_p_equivalent", "equivalence_reachable", "n_units"]
    cols += ["n_repeats"]
    return pd.DataFrame(rows, columns=cols)


def _pair(paired: pd.DataFrame, model: str, metric: str, ref: str, opt: str) -> dict | None:
    """The comparison of ``opt`` against ``ref`` (``opt − ref``), turned round when the paired
    table has it as ``ref − opt``; None when it was not compared."""
    found = paired[(paired["model"] == model) & (paired["metric"] == metric)]
    fwd = found[(found["optimizer_a"] == ref) & (found["optimizer_b"] == opt)]
    rev = found[(found["optimizer_a"] == opt) & (found["optimizer_b"] == ref)]
    if not len(fwd) + len(rev):
        return None
    r, sign = (fwd.iloc[0], 1) if len(fwd) else (rev.iloc[0], -1)
    low, high = sign * r["corrected_ci_low"], sign * r["corrected_ci_high"]
    return {
        "diff": sign * r["mean_diff"],
        "ci_low": min(low, high),
        "ci_high": max(low, high),
        "p_holm": r["p_holm"],
        "family_size": r["family_size"],
        "rope": r["rope"],
        "p_better": r["p_b_better"] if sign == 1 else r["p_a_better"],
        "p_equivalent": r["p_equivalent"],
        "p_worse": r["p_a_better"] if sign == 1 else r["p_b_better"],
        "test_status": r.get("test_status", "tested"),
        "mdd": r.get("mdd", math.nan),
        "max_p_equivalent": r.get("max_p_equivalent", math.nan),
        "equivalence_reachable": bool(r.get("equivalence_reachable", False)),
        "n_units": int(r["n_folds"]),
        "n_repeats": int(r.get("n_repeats", 1)),
    }


def oriented(paired: pd.DataFrame, model: str, baseline: str, metric: str = "auc") -> list[dict]:
    """Every comparison of ``model`` the comparisons part tested on ``metric``, as
    ``optimizer − reference``: against the baseline as ``other − baseline``, the others as the
    table has them (B − A: later − earlier in the config's order)."""
    out = []
    if paired.empty:
        return out
    mine = paired[(paired["model"] == model) & (paired["metric"] == metric)]
    for r in mine.itertuples():
        opt, ref = r.optimizer_b, r.optimizer_a
        if opt == baseline:
            opt, ref = ref, opt
        found = _pair(paired, model, metric, ref, opt)
        if found is not None:
            out.append({"optimizer": opt, "reference": ref, **found})
    return out


def grid_state(inputs: Inputs) -> GridState:
    """How far the grid had come when the report was built: the jobs the config asks for (its
    models, optimizers, seeds and repeats, times the folds any run saw, or ``data.n_folds`` for
    stratified folds if more), those with a run, those finished, and the runs still RUNNING."""
    cfg, folds = inputs.config, inputs.record.folds
    if folds.empty:
        return GridState(0, 0, 0, 0, _running(inputs.record.parents))
    runs = folds[folds["fold"].notna()].assign(_repeat=repeats_of(folds))
    n_folds = runs["fold"].nunique()
    if cfg.data.folds == "stratified":
        n_folds = max(n_folds, cfg.data.n_folds)
    cv = getattr(cfg, "cv", None)  # cross-validation repeats, where the config has them
    repeats = max(int(getattr(cv, "repeats", 1) or 1), int(runs["_repeat"].max()))
    models = set(cfg.models) | set(runs["model"].dropna())
    optimizers = set(cfg.optimizers) | set(runs["optimizer"].dropna())
    seeds = set(cfg.seeds) | set(runs["seed"].dropna().astype(int))
    expected = len(models) * len(optimizers) * len(seeds) * repeats * n_folds
    jobs = runs.assign(seed=runs["seed"].fillna(0))
    recorded = jobs.drop_duplicates(["model", "optimizer", "_repeat", "fold", "seed"])
    return GridState(
        n_expected=max(expected, len(recorded)),
        n_recorded=len(recorded),
        n_finished=len(inputs.inventory.units),
        n_running=int(inputs.inventory.problems["status"].eq("RUNNING").sum()),
        n_parents_running=_running(inputs.record.parents),
    )


def _running(parents: pd.DataFrame) -> int:
    return int(parents["status"].eq("RUNNING").sum()) if "status" in parents else 0


@dataclass(frozen=True)
class Compute:
    """The compute condition of a model's comparisons."""

    equal: bool  # every optimizer had the same budget of compute
    text: str  # one sentence for the verdict's numbers
    bottom: str  # the clause of the bottom line ('' when budgets were equal)


def compute_condition(
    inputs: Inputs, model: str, optimizers: Sequence[str], baseline: str
) -> Compute:
    """The compute condition of the comparisons: under ``train.budget.kind: epochs`` the
    forward-backward passes each optimizer spent against the baseline's (the logged
    ``gradient_evals``, median over the model's usable runs; without them, the registry's
    passes per step), else the equal budget."""
    kind = inputs.config.train.budget.kind
    if kind == "gradient_evals":
        text = "every optimizer had the same forward-backward passes (train.budget.kind: gradient_evals)"
        return Compute(True, text[:1].upper() + text[1:] + ".", "")
    if kind == "seconds":
        text = "every optimizer had the same wall time of training (train.budget.kind: seconds)"
        return Compute(True, text[:1].upper() + text[1:] + ".", "")
    units = inputs.inventory.units
    runs = inputs.record.folds.drop_duplicates("run_id").set_index("run_id")
    mine = units[units["model"] == model]
    passes: dict[str, float] = {}
    for opt in optimizers:
        ids = mine.loc[mine["optimizer"] == opt, "run_id"]
        logged = (
            pd.to_numeric(runs["gradient_evals"].reindex(ids), errors="coerce").dropna()
            if "gradient_evals" in runs
            else pd.Series(dtype=float)
        )
        passes[opt] = float(logged.median()) if len(logged) else math.nan
    ratios, source = {}, "the logged gradient_evals, median over runs"
    for opt in optimizers:
        if opt == baseline:
            continue
        ratio = passes[opt] / passes[baseline] if passes[baseline] else math.nan
        if not math.isfinite(ratio) and {opt, baseline} <= set(list_optimizers()):
            ratio = passes_per_step(opt) / passes_per_step(baseline)
            source = "passes per step of each optimizer; the runs logged no gradient_evals"
        if math.isfinite(ratio) and abs(ratio - 1) > EQUAL_COMPUTE:
            ratios[opt] = ratio
    if not ratios:
        return Compute(True, "", "")
    groups: dict[str, list[str]] = {}
    for opt, ratio in ratios.items():
        groups.setdefault(f"{ratio:.1f}×", []).append(opt)
    spent = "; ".join(
        f"{' and '.join(opts)} spent {times} {baseline}'s forward-backward passes"
        for times, opts in groups.items()
    )
    bottom = f"At equal epochs, not equal compute: {spent}"
    return Compute(False, f"{bottom} ({source}).", bottom)
