"""The answer first: what the report covers (overview), whether the grid had finished, the verdict
per model (one bold bottom line, then the numbers), the model × optimizer table at a glance, and
the runs that did not finish.

Everything the verdict says rests on the units every compared optimizer finished: the means it
ranks are taken over the (repeat, fold) units all optimizers of the model finished, and each
comparison is the comparisons part's (the corrected resampled t-test over the units both
finished, Holm over the comparisons tested, the Bayesian correlated t-test, what the comparison
could detect). A difference is called significant only after Holm, with its direction from the
sign of the paired difference. Every pair the comparisons part tests is weighed (the SAM
family against its base :data:`BASELINE`, and the SAM variants against each other), and the
compute each optimizer spent is stated when budgets were not equal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medbench.data.cards import list_cards, read_card
from medbench.errors import DataError
from medbench.optim.registry import DEFAULTS, list_optimizers, passes_per_step
from medbench.report import document as d
from medbench.report.formatting import fnum, fp, fpercent, fsigned
from medbench.report.inputs import Inputs
from medbench.report.part import Analysis, Part, Writer
from medbench.report.power import EQUIVALENCE_THRESHOLD
from medbench.report.units import REPEAT, drop_single_repeat, fold_keys, repeats_of
from medbench.report.vocab import metric_label

#: The data card of medbench's generator: its runs get the synthetic-data banner.
SYNTHETIC_CARD = "synthetic_bus"
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


@dataclass
class Verdict:
    """The verdict's numbers, its bottom lines, and the tables of the runs."""

    verdict: pd.DataFrame  # per model and optimizer: mean AUC and difference from the baseline
    runs: pd.DataFrame  # per (model, optimizer): runs expected and finished
    problems: pd.DataFrame  # the runs that did not finish, with their reasons
    grid: GridState = field(default_factory=lambda: GridState(0, 0, 0, 0, 0))
    #: per model: its mean over the units every optimizer finished (``common``), the oriented
    #: comparisons (``comparisons``), the compute (``compute``: :class:`Compute`), the bottom
    #: line
    models: dict[str, dict] = field(default_factory=dict)

    @property
    def bottom_lines(self) -> dict[str, str]:
        """Per model, the one-sentence answer (plain text; the report sets it in bold)."""
        return {m: v["bottom_line"] for m, v in self.models.items()}

    @property
    def table(self) -> pd.DataFrame:
        """``table_verdict.csv``: per model, the bottom line and what it rests on."""
        rows = [
            {
                "model": m,
                "baseline": v["baseline"],
                "n_units": v["n_units"],
                "n_repeats": v["n_repeats"],
                "grid_unfinished": self.grid.unfinished,
                "equal_compute": v["compute"].equal,
                "bottom_line": v["bottom_line"],
            }
            for m, v in self.models.items()
        ]
        return pd.DataFrame(rows)


def analyse(a: Analysis) -> Verdict:
    inputs = a.inputs
    paired = a.result("comparisons").paired
    common = common_means(inputs.per_unit, inputs.models, inputs.optimizers)
    verdict = against_baseline(common, paired, inputs.optimizers)
    inv = inputs.inventory
    grid = grid_state(inputs)
    models: dict[str, dict] = {}
    for model in inputs.models:
        mine = common[common["model"] == model]
        if mine.empty:
            continue
        present = list(mine["optimizer"])
        baseline = BASELINE if BASELINE in present else present[0]
        comps = oriented(paired, model, baseline)
        compute = compute_condition(inputs, model, present, baseline)
        n_units = int(mine["n_units"].max())
        n_repeats = int(mine["n_repeats"].max()) if len(mine) else 1
        partial = bool((mine["n_own"] > mine["n_units"]).any())
        models[model] = {
            "baseline": baseline,
            "common": mine,
            "comparisons": comps,
            "compute": compute,
            "n_units": int(mine["n_units"].max()),
            "n_repeats": n_repeats,
            "bottom_line": bottom_line(
                present,
                baseline,
                comps,
                n_units,
                n_repeats,
                grid,
                compute.bottom,
                inputs.rope,
                partial,
            ),
        }
    return Verdict(inputs.in_order(verdict), inv.status, inv.problems, grid, models)


def tables(v: Verdict) -> dict[str, pd.DataFrame]:
    return {"verdict": v.table, "runs": v.runs, "failed_runs": drop_single_repeat(v.problems)}


def sections(v: Verdict, w: Writer) -> None:
    _unfinished(v, w)
    _overview(w)
    _verdict(v, w)


PART = Part("verdict", analyse, tables, sections=sections)


# -- the numbers ----------------------------------------------------------------------------------


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


# -- the bottom line ------------------------------------------------------------------------------


def units_text(n: int, n_repeats: int = 1) -> str:
    """ "5 folds", "15 folds of 3 repeats"."""
    if n_repeats > 1:
        return f"{n} folds of {n_repeats} repeats"
    return "1 fold" if int(n) == 1 else f"{int(n)} folds"


def _span(values: Sequence[float], fmt) -> str:
    """ "0.031" or "0.031–0.052" (the range of the finite values)."""
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return "n/a"
    low, high = fmt(min(v)), fmt(max(v))
    return low if low == high else f"{low}–{high}"


def _percents(values: Sequence[float]) -> str:
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return "n/a"
    low, high = fpercent(min(v)), fpercent(max(v))
    return low if low == high else f"{low.rstrip('%')}–{high}"


def significant(c: Mapping) -> bool:
    p = c.get("p_holm", math.nan)
    return c.get("test_status", "tested") == "tested" and math.isfinite(p) and p < ALPHA


def equivalent(c: Mapping) -> bool:
    q = c.get("p_equivalent", math.nan)
    return (
        c.get("test_status", "tested") == "tested"
        and math.isfinite(q)
        and q >= EQUIVALENCE_THRESHOLD
    )


def direction(c: Mapping) -> str:
    """ "significantly better than" or "significantly worse than": the sign of the paired
    difference decides, never the order of the optimizers."""
    return "significantly better than" if c["diff"] > 0 else "significantly worse than"


def bottom_line(
    optimizers: Sequence[str],
    baseline: str,
    comps: Sequence[Mapping],
    n_units: int,
    n_repeats: int,
    grid: GridState,
    compute: str,
    rope: float,
    partial: bool = False,
) -> str:
    """The answer for one model (plain text; the report sets it in bold): the significant
    differences with their direction, the comparisons without spread, and what the others could
    not detect and whether equivalence was reachable; on the ``n_units`` units every optimizer
    finished (said when some optimizer had more: ``partial``), under which compute, and first
    whether the grid was unfinished."""
    lead = f"Unfinished grid, {grid.text()}: " if grid.unfinished else ""
    if len(optimizers) < 2:
        return f"{lead}only {optimizers[0]} has results, nothing to compare."
    if n_units < 2 or not comps:
        finished = "no fold" if n_units == 0 else "only one fold"
        return f"{lead}no verdict yet: {finished} finished under every optimizer."
    parts = []
    for c in comps:
        if significant(c):
            parts.append(
                f"{c['optimizer']} is {direction(c)} {c['reference']}: {fsigned(c['diff'])} AUC "
                f"(95% CI {fsigned(c['ci_low'])} to {fsigned(c['ci_high'])}, Holm-adjusted p "
                f"{fp(c['p_holm'])})"
            )
    for c in comps:
        if equivalent(c) and not significant(c):
            parts.append(
                f"{c['optimizer']} and {c['reference']} are practically equivalent "
                f"(P(|difference| ≤ {rope:g} AUC) {fpercent(c['p_equivalent'])})"
            )
    for c in comps:
        if c["test_status"] == "identical":
            parts.append(f"{c['optimizer']} is identical to {c['reference']} on every paired fold")
        elif c["test_status"] == "constant":
            parts.append(
                f"{c['optimizer']} − {c['reference']} is {fsigned(c['diff'])} AUC on every "
                "paired fold (no spread, so no test)"
            )
    rest = [
        c
        for c in comps
        if c["test_status"] == "tested" and not significant(c) and not equivalent(c)
    ]
    if rest:
        parts.append(_undetected(rest, comps, optimizers, baseline, n_repeats, rope))
    sentence = "; ".join(parts)
    where = f"the {units_text(n_units, n_repeats)} every optimizer finished"
    if grid.unfinished:
        sentence = f"{lead}provisional, on {where}: {sentence}"
    else:
        if sentence.startswith("no detectable"):  # optimizer names keep their case
            sentence = "N" + sentence[1:]
        if partial:
            sentence += f", on {where}"
    sentence += "."
    if compute:
        sentence += f" {compute}."
    return sentence


def _undetected(rest, comps, optimizers, baseline, n_repeats, rope) -> str:
    """ "no detectable difference from adam: these 5 folds cannot detect less than 0.04 AUC
    (80% power); P(equivalent within ±0.01) 52–59%, ..." for the comparisons in ``rest``."""
    with_baseline = [c for c in comps if baseline in (c["optimizer"], c["reference"])]
    if len(rest) == len(comps) and len(optimizers) > 2:
        scope = "between " + ", ".join(optimizers[:-1]) + f" and {optimizers[-1]}"
    elif rest == with_baseline and len(rest) == 1:
        scope = f"between {rest[0]['optimizer']} and {baseline}"
    elif rest == with_baseline:
        scope = f"from {baseline}"
    else:
        scope = "for " + ", ".join(f"{c['optimizer']} − {c['reference']}" for c in rest)
    units = units_text(min(c["n_units"] for c in rest), n_repeats)
    text = (
        f"no detectable difference {scope}: these {units} cannot detect less than "
        f"{_span([c['mdd'] for c in rest], fnum)} AUC (80% power); P(equivalent within "
        f"±{rope:g}) {_percents([c['p_equivalent'] for c in rest])}"
    )
    if not any(c["equivalence_reachable"] for c in rest):
        text += (
            f", at most {_percents([c['max_p_equivalent'] for c in rest])} with this spread, so "
            "equivalence cannot be shown either"
        )
    return text


def is_synthetic(inputs: Inputs) -> bool:
    """Whether the runs used synthetic data: the parent runs say so (``medbench.synthetic``
    tag: any generated layout), their data card is medbench's generator's
    (``medbench.dataset_card`` tag), or the card's front matter says ``synthetic: true`` or names
    a generator."""
    if inputs.synthetic_tag:
        return True
    for name in inputs.cards:
        if name == SYNTHETIC_CARD:
            return True
        if name in list_cards():
            try:
                meta, _ = read_card(name)
            except (OSError, DataError):
                continue
            if meta.get("synthetic") is True or meta.get("generator"):
                return True
    return False


def _overview(w: Writer) -> None:
    a, rec = w.inputs, w.record
    if is_synthetic(a):
        w.doc.add(
            d.Banner(
                "SYNTHETIC DATA.",
                "These runs used medbench's generated breast-ultrasound images, not patients' "
                "images: the numbers test the software and the protocol and mean nothing "
                "clinically (the readers' operating points are generated too).",
            )
        )
    n_runs = len(rec.folds)
    times = pd.to_numeric(rec.folds.get("start_time", pd.Series()), errors="coerce").dropna()
    ends = pd.to_numeric(rec.folds.get("end_time", pd.Series()), errors="coerce").dropna()
    span = ""
    if len(times) and len(ends):
        fmt = "%Y-%m-%d %H:%M UTC"
        start = pd.to_datetime(times.min(), unit="ms", utc=True).strftime(fmt)
        end = pd.to_datetime(ends.max(), unit="ms", utc=True).strftime(fmt)
        span = f" Runs from {start} to {end}."
    w.doc.add(
        d.Paragraph(
            f"Built from the MLflow experiment `{rec.name}` (id {rec.experiment_id}): "
            f"{len(a.models)} model(s) × {len(a.optimizers)} optimizer(s), {n_runs} fold run(s), "
            f"{len(a.inventory.units)} of which finished and count.{span} Every number is "
            "recomputed from the runs' `predictions.csv` artifacts (test folds only); rebuild it "
            f"with `medbench report {rec.name} --tracking-uri URI`."
            + (
                f" {rec.ignored_runs} other run(s) of this experiment, made by another tool or "
                "with another config or dataset (config hash or dataset fingerprint), are left "
                "out: a report covers one config, the latest."
                if getattr(rec, "ignored_runs", 0)
                else ""
            )
        ),
        d.Contents(),
    )


def _unfinished(v: Verdict, w: Writer) -> None:
    """First of all: a report of a grid that is still at work (or stopped early) says so."""
    if not v.grid.unfinished:
        return
    running = (
        f" {v.grid.n_parents_running} parent run(s) are still RUNNING: the grid is at work, or "
        "its process died without closing them."
        if v.grid.n_parents_running
        else ""
    )
    w.doc.add(
        d.Banner(
            f"UNFINISHED GRID: {v.grid.text()}.",
            "This report was built before every job of the config had finished."
            f"{running} Every comparison below uses only the units every compared optimizer "
            "finished, and the verdict is provisional; rerun `medbench report` when the grid "
            "is done (or rerun the grid to resume it).",
        )
    )


def _verdict(v: Verdict, w: Writer) -> None:
    a = w.inputs
    w.doc.add(d.Heading("Verdict"))
    external = w.a.result("external")
    if a.per_unit.empty and external is not None and not external.empty:
        w.doc.add(
            d.Paragraph(
                "No internal test fold (`data.folds: none`): the models were tested on external "
                "data only; see External validation."
            )
        )
        return
    if a.per_unit.empty:
        w.doc.add(d.Paragraph("**No fold run finished: there are no results to show.**"))
        _problems(w)
        return
    small = a.per_unit[a.per_unit["small_fold"]].drop_duplicates(fold_keys(a.per_unit))
    if not small.empty:
        median = a.per_unit.drop_duplicates(fold_keys(a.per_unit))["n_test"].median()
        listed = ", ".join(f"{r.fold} ({int(r.n_test)} test images)" for r in small.itertuples())
        w.doc.add(
            d.Paragraph(
                f"**Fold(s) far smaller than the rest: {listed}, against a median of "
                f"{median:.0f}.** Their metrics are noise, yet each weighs as much as a full fold "
                "in every mean and test below. If they are typos in the fold column, rerun with "
                "`data.folds_keep` listing the real folds (marked `small_fold` in "
                "table_per_fold.csv)."
            )
        )
    for model in a.models:
        found = v.models.get(model)
        if found is not None:
            w.doc.add(
                d.Paragraph(f"**{model}: {found['bottom_line']}**"),
                d.Paragraph(_verdict_text(model, found, v.grid, a.rope)),
            )
    w.doc.add(
        d.Paragraph(
            "Test AUC is the probability that the model scores a randomly chosen malignant "
            "lesion above a randomly chosen benign one (0.5: chance, 1: perfect); each fold's "
            "test images were never used for training or model selection. A difference is "
            f'called significant only when its Holm-adjusted p is below {ALPHA:g}; "no '
            'detectable difference" means these folds cannot tell the optimizers apart, not '
            "that they perform alike."
        )
    )
    points = w.a.result("performance").readers_by_model  # what the ROC figures draw
    n_readers = points.loc[points["n_used"] > 0, "reader"].nunique() if not points.empty else 0
    whose = {0: "", 1: "the reader's operating point", 2: "the two readers' operating points"}
    for model in a.models:
        w.image(
            f"roc/{model}",
            f"{model}: mean test ROC over folds per optimizer (band: interquartile range over "
            "folds; AUC mean ± std in the legend)"
            + (
                f" and {whose[n_readers]} (BI-RADS ≥ 4a called malignant) on the same test images."
                if n_readers
                else "."
            ),
        )
    w.image(
        "differences",
        "What the comparisons test: each fold's difference B − A (one marker per fold), their "
        "mean and its 95% interval corrected for overlapping training sets (Nadeau & Bengio), "
        "the Holm-adjusted p above each comparison, and the region of practical equivalence "
        f"(±{a.rope:g}) in grey.",
    )
    _at_a_glance(v, w)
    _problems(w)


def _verdict_text(model: str, found: Mapping, grid: GridState, rope: float) -> str:
    """The numbers behind the bottom line: the means over the units every optimizer finished,
    each comparison's difference with its corrected interval, Holm-adjusted p and the smallest
    difference it could detect, the Bayesian probabilities in words, and the compute."""
    common, comps = found["common"], found["comparisons"]
    units = units_text(found["n_units"], found["n_repeats"])
    means = ", ".join(f"{r.optimizer} {fnum(r.auc_mean)}" for r in common.itertuples())
    text = [f"Mean test AUC over the {units} every optimizer finished (seeds averaged): {means}."]
    if not comps:
        return " ".join(text)
    tested = [c for c in comps if c["test_status"] == "tested"]
    family = int(max((c["family_size"] for c in comps), default=0))
    items = []
    for c in comps:
        name = f"{c['optimizer']} − {c['reference']}"
        if c["test_status"] != "tested":
            items.append(f"{name} {fsigned(c['diff'])}: {_status(c)}")
            continue
        items.append(
            f"{name} {fsigned(c['diff'])} ({_interval(c['ci_low'], c['ci_high'])}; Holm-adjusted "
            f"p {fp(c['p_holm'])}; detectable at 80% power: ≥ {fnum(c['mdd'])})"
        )
    untested = len(comps) - len(tested)
    family_text = (
        f"Holm's adjustment over the {_comparisons(family)} of this report that could be tested"
        if family
        else "no comparison could be tested"
    )
    text.append(
        f"Differences in test AUC over the units both optimizers finished, with the 95% interval "
        f"of the corrected t-test ({family_text}"
        + (f"; {untested} here had no spread and were not tested" if untested else "")
        + "): "
        + "; ".join(items)
        + "."
    )
    text += [_in_words(c, rope) for c in tested]
    if found["compute"].text:
        text.append(found["compute"].text)
    return " ".join(text)


def _status(c: Mapping) -> str:
    n = c["n_units"]
    if c["test_status"] == "identical":
        return f"identical on every one of the {n} paired folds, no test"
    if c["test_status"] == "constant":
        return f"the same difference on every one of the {n} paired folds, no test"
    if c["test_status"] == "one":
        return "only one paired fold, no test"
    return "no paired fold, no test"


def _comparisons(n: int) -> str:
    return "single AUC comparison" if n == 1 else f"{n} AUC comparisons"


def _in_words(c: Mapping, rope: float) -> str:
    """The Bayesian correlated t-test's probabilities as a sentence a clinician can read."""
    opt, ref = c["optimizer"], c["reference"]
    better, same, worse = c["p_better"], c["p_equivalent"], c["p_worse"]
    if not math.isfinite(float(better)):
        return f"Too few folds to weigh the evidence for {opt} against {ref}."
    odds = (
        f"chance {fpercent(better)} that {opt} is better than {ref} by more than {rope:g} "
        f"AUC, {fpercent(same)} that the two are practically equivalent (within ±{rope:g}), "
        f"{fpercent(worse)} that it is worse"
    )
    if better >= EQUIVALENCE_THRESHOLD:
        return f"{opt} is very probably better than {ref} ({odds})."
    if worse >= EQUIVALENCE_THRESHOLD:
        return f"{opt} is very probably worse than {ref} ({odds})."
    if same >= EQUIVALENCE_THRESHOLD:
        return f"{opt} and {ref} are very probably practically equivalent ({odds})."
    return f"For {opt} against {ref} the evidence is inconclusive: {odds}."


def _at_a_glance(v: Verdict, w: Writer) -> None:
    """Model × optimizer (MedMNIST style): AUC and accuracy, mean over the units every optimizer
    of the model finished, the highest of each model in bold (a ranking of means, not a test)."""
    a = w.inputs
    w.doc.add(d.Heading("At a glance", 3))
    status = a.inventory.status.set_index(["model", "optimizer"])
    rows, partial = [], False
    for model in a.models:
        found = v.models.get(model)
        if found is None:
            continue
        mine = found["common"].set_index("optimizer")
        partial |= bool((mine["n_own"] > mine["n_units"]).any())
        rank = found["n_units"] >= 2 and not v.grid.unfinished
        row = {"Model": model}
        for metric in ("auc", "accuracy"):
            top = mine[f"{metric}_mean"].max()
            for opt in a.optimizers:
                key = f"{opt} {metric_label(metric, capitalised=True)}"
                if opt not in mine.index:
                    row[key] = "not run"
                    continue
                value = mine.at[opt, f"{metric}_mean"]
                cell = fnum(value)
                if rank and math.isfinite(value) and value == top:
                    cell = f"**{cell}**"
                complete = (model, opt) not in status.index or bool(
                    status.at[(model, opt), "complete"]
                )
                row[key] = cell + ("" if complete else " (incomplete)")
        rows.append(row)
    order = ["Model"] + [
        f"{o} {metric_label(m, capitalised=True)}"
        for o in a.optimizers
        for m in ("auc", "accuracy")
    ]
    frame = pd.DataFrame(rows)
    over = (
        "mean over the folds every optimizer of the model finished (each optimizer's own "
        "means are in Test performance)"
        if partial
        else "mean over folds"
    )
    bold = (
        "no value in bold: the grid is unfinished"
        if v.grid.unfinished
        else "the highest of each model in bold, a ranking of means and not a test (see the "
        "verdict)"
    )
    w.table(
        frame[[col for col in order if col in frame]],
        f"Test AUC and accuracy (at P(malignant) ≥ {a.threshold:g}), {over}; {bold}. "
        "Intervals, spreads and the other metrics: Test performance.",
        "performance",
        keep=("Model",),
    )


def _problems(w: Writer) -> None:
    a = w.inputs
    probs = a.inventory.problems
    n_runs = len(w.record.folds)
    if probs.empty:
        w.doc.add(d.Paragraph(f"All {n_runs} fold runs finished."))
        return
    incomplete = a.inventory.status[~a.inventory.status["complete"]]
    names = ", ".join(f"{r.model}/{r.optimizer}" for r in incomplete.itertuples())
    w.doc.add(
        d.Heading("Runs that did not finish", 3),
        d.Paragraph(
            f"**{len(probs)} fold run(s) did not finish.** They are left out of every number "
            f"below, and the rows they belong to are marked incomplete ({names or 'none'}). "
            "Paired comparisons use only the folds finished under both optimizers."
        ),
    )
    shown = drop_single_repeat(probs).assign(
        fold=probs["fold"].astype(str),
        seed=probs["seed"].astype(str),
        run_id=probs["run_id"].fillna(""),
    )
    w.table(
        shown.rename(columns=str.capitalize).rename(columns={"Run_id": "Run id"}),
        "",
        "failed_runs",
        keep=("Model", "Optimizer", "Repeat", "Fold", "Status", "Reason"),
    )


def _interval(low, high) -> str:
    """ "95% CI -0.009 to +0.021" for a difference."""
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return "no interval"
    return f"95% CI {fsigned(low)} to {fsigned(high)}"
