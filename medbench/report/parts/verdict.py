"""The answer first: what the report covers (overview), whether the grid had finished, the verdict
per model (one bold bottom line, then the numbers), the model × optimizer table at a glance, and
the runs that did not finish.

Everything the verdict says rests on the units every compared optimizer finished: the means it
ranks are taken over the (repeat, fold) units all optimizers of the model finished, and each
comparison is the comparisons part's (the corrected resampled t-test over the units both
finished, Holm over the comparisons tested, the Bayesian correlated t-test, what the comparison
could detect). A difference is called significant only after Holm, with its direction from the
sign of the paired difference. Every pair the comparisons part tests is weighed (the SAM
family against its base :data:`~medbench.report.parts.verdict_numbers.BASELINE`, and the SAM
variants against each other), and the compute each optimizer spent is stated when budgets were
not equal.

The numbers live in :mod:`~medbench.report.parts.verdict_numbers`, their wording (the bottom
line and the numbers behind it) in :mod:`~medbench.report.parts.verdict_wording`; this module is
the part: its analysis, tables and sections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from medbench.data.cards import list_cards, read_card
from medbench.errors import DataError
from medbench.report import document as d
from medbench.report.formatting import fnum
from medbench.report.inputs import Inputs
from medbench.report.part import Analysis, Part, Writer
from medbench.report.parts.verdict_numbers import (
    ALPHA,
    BASELINE,
    GridState,
    against_baseline,
    common_means,
    compute_condition,
    grid_state,
    oriented,
)
from medbench.report.parts.verdict_wording import bottom_line, verdict_text
from medbench.report.units import drop_single_repeat, fold_keys
from medbench.report.vocab import metric_label

#: The data card of medbench's generator: its runs get the synthetic-data banner.
SYNTHETIC_CARD = "synthetic_bus"


@dataclass
class Verdict:
    """The verdict's numbers, its bottom lines, and the tables of the runs."""

    verdict: pd.DataFrame  # per model and optimizer: mean AUC and difference from the baseline
    runs: pd.DataFrame  # per (model, optimizer): runs expected and finished
    problems: pd.DataFrame  # the runs that did not finish, with their reasons
    grid: GridState = field(default_factory=lambda: GridState(0, 0, 0, 0, 0))
    #: per model: its mean over the units every optimizer finished (``common``), the oriented
    #: comparisons (``comparisons``), the compute (``compute``:
    #: :class:`~medbench.report.parts.verdict_numbers.Compute`), the bottom line
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


# -- the sections ---------------------------------------------------------------------------------


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
                d.Paragraph(verdict_text(model, found, v.grid, a.rope)),
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
