"""The answer first: what the report covers (overview), the verdict per model (the best optimizer,
each one against the baseline, in words), the model × optimizer table at a glance, and the runs
that did not finish.

The verdict compares every optimizer with the baseline, :data:`BASELINE`, as the comparisons part
tests it (the corrected resampled t-test, Holm, the Bayesian correlated t-test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from medbench.data.cards import list_cards, read_card
from medbench.errors import DataError
from medbench.optim.registry import DEFAULTS
from medbench.report import document as d
from medbench.report.formatting import fnum, fp, fpercent, fsigned
from medbench.report.inputs import Inputs
from medbench.report.part import Analysis, Part, Writer
from medbench.report.vocab import metric_label

#: The data card of medbench's generator: its runs get the synthetic-data banner.
SYNTHETIC_CARD = "synthetic_bus"
#: The optimizer every other one is compared with in the verdict, when it ran: the base optimizer
#: of the SAM family (the registry's), so that each SAM arm is weighed against its own base.
BASELINE = DEFAULTS["base"]


@dataclass
class Verdict:
    """The verdict's numbers, and the tables of the runs."""

    verdict: pd.DataFrame  # per model and optimizer: mean AUC and difference from the baseline
    runs: pd.DataFrame  # per (model, optimizer): runs expected and finished
    problems: pd.DataFrame  # the runs that did not finish, with their reasons


def analyse(a: Analysis) -> Verdict:
    inputs = a.inputs
    verdict = against_baseline(
        a.result("performance").performance, a.result("comparisons").paired, inputs.optimizers
    )
    inv = inputs.inventory
    return Verdict(inputs.in_order(verdict), inv.status, inv.problems)


def tables(v: Verdict) -> dict[str, pd.DataFrame]:
    return {"runs": v.runs, "failed_runs": v.problems}


def sections(v: Verdict, w: Writer) -> None:
    _overview(w)
    _verdict(v, w)


PART = Part("verdict", analyse, tables, sections=sections)


def against_baseline(
    performance: pd.DataFrame, paired_table: pd.DataFrame, optimizers, metric: str = "auc"
) -> pd.DataFrame:
    """The verdict's numbers: per model and optimizer, the mean ``metric`` over folds, whether it
    is the model's highest, and the difference from the baseline (:data:`BASELINE`, else the first
    optimizer) as ``paired`` tests it, turned round when the baseline is the pair's B: the
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
            if opt == baseline or paired_table.empty:
                rows.append(row)
                continue
            found = paired_table[
                (paired_table["model"] == model) & (paired_table["metric"] == metric)
            ]
            fwd = found[(found["optimizer_a"] == baseline) & (found["optimizer_b"] == opt)]
            rev = found[(found["optimizer_a"] == opt) & (found["optimizer_b"] == baseline)]
            if len(fwd) + len(rev):
                r, sign = (fwd.iloc[0], 1) if len(fwd) else (rev.iloc[0], -1)
                low, high = sign * r["corrected_ci_low"], sign * r["corrected_ci_high"]
                row.update(
                    {
                        "diff": sign * r["mean_diff"],
                        "ci_low": min(low, high),
                        "ci_high": max(low, high),
                        "p_holm": r["p_holm"],
                        "family_size": r["family_size"],
                        "rope": r["rope"],
                        "p_better": r["p_b_better"] if sign == 1 else r["p_a_better"],
                        "p_equivalent": r["p_equivalent"],
                        "p_worse": r["p_a_better"] if sign == 1 else r["p_b_better"],
                    }
                )
            rows.append(row)
    cols = ["model", "optimizer", "baseline", "mean", "n_folds", "best", "diff", "ci_low"]
    cols += ["ci_high", "p_holm", "family_size", "rope", "p_better", "p_equivalent", "p_worse"]
    return pd.DataFrame(rows, columns=cols)


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
    small = a.per_unit[a.per_unit["small_fold"]].drop_duplicates("fold")
    if not small.empty:
        median = a.per_unit.drop_duplicates("fold")["n_test"].median()
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
    w.doc.add(
        d.Paragraph(
            "Test AUC is the probability that the model scores a randomly chosen malignant "
            "lesion above a randomly chosen benign one (0.5: chance, 1: perfect); each fold's "
            "test images were never used for training or model selection."
        )
    )
    for model in a.models:
        rows = v.verdict[v.verdict["model"] == model]
        if not rows.empty:
            w.doc.add(d.Paragraph(_verdict_text(model, rows, a.rope)))
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
    _at_a_glance(w)
    _problems(w)


def _verdict_text(model: str, rows: pd.DataFrame, rope: float) -> str:
    """One paragraph: the best optimizer, each difference from the baseline with its interval,
    what Holm's adjustment says, and the Bayesian probabilities in words."""
    baseline = rows["baseline"].iloc[0]
    base = rows[rows["optimizer"] == baseline].iloc[0]
    best = rows[rows["best"]]
    text = [f"**{model}.**"]
    if best.empty:
        return f"**{model}.** No optimizer has a defined test AUC."
    b = best.iloc[0]
    if b["optimizer"] == baseline:
        text.append(
            f"{baseline} had the highest mean test AUC, {fnum(b['mean'])} over "
            f"{_folds(b['n_folds'])}."
        )
    else:
        text.append(
            f"{b['optimizer']} had the highest mean test AUC, {fnum(b['mean'])} over "
            f"{_folds(b['n_folds'])}, against {fnum(base['mean'])} for {baseline}."
        )
    others = rows[(rows["optimizer"] != baseline) & rows["diff"].notna()]
    if others.empty:
        return " ".join(text)
    diffs = ", ".join(
        f"{r['optimizer']} {fsigned(r['diff'])} ({_interval(r['ci_low'], r['ci_high'])})"
        for r in others.to_dict("records")
    )
    text.append(f"Difference in AUC from {baseline} over the folds both finished: {diffs}.")
    family = int(others["family_size"].max())
    significant = others[others["p_holm"] < 0.05]
    if others["p_holm"].isna().all():
        text.append("Too few paired folds for a test.")
    elif significant.empty:
        text.append(
            f"None of these differences is statistically significant after Holm's adjustment over "
            f"the {_comparisons(family)} of this report (smallest adjusted p "
            f"{fp(others['p_holm'].min())})."
        )
    else:
        names = ", ".join(
            f"{r['optimizer']} (adjusted p {fp(r['p_holm'])})"
            for r in significant.to_dict("records")
        )
        text.append(
            f"Significant after Holm's adjustment over the {_comparisons(family)} of this "
            f"report: {names}."
        )
    text += [_in_words(r, baseline, rope) for r in others.to_dict("records")]
    return " ".join(text)


def _folds(n: int) -> str:
    return "1 fold" if int(n) == 1 else f"{int(n)} folds"


def _comparisons(n: int) -> str:
    return "single AUC comparison" if n == 1 else f"{n} AUC comparisons"


def _in_words(r: dict, baseline: str, rope: float) -> str:
    """The Bayesian correlated t-test's probabilities as a sentence a clinician can read."""
    opt, better, same, worse = r["optimizer"], r["p_better"], r["p_equivalent"], r["p_worse"]
    if not math.isfinite(float(better)):
        return f"Too few folds to weigh the evidence for {opt}."
    odds = (
        f"chance {fpercent(better)} that {opt} is better than {baseline} by more than {rope:g} "
        f"AUC, {fpercent(same)} that the two are practically equivalent (within ±{rope:g}), "
        f"{fpercent(worse)} that it is worse"
    )
    if better >= 0.95:
        return f"{opt} is very probably better than {baseline} ({odds})."
    if worse >= 0.95:
        return f"{opt} is very probably worse than {baseline} ({odds})."
    if same >= 0.95:
        return f"{opt} and {baseline} are very probably practically equivalent ({odds})."
    return f"For {opt} the evidence is inconclusive: {odds}."


def _at_a_glance(w: Writer) -> None:
    """Model × optimizer (MedMNIST style): AUC and accuracy, mean over folds, the best of each
    model in bold."""
    a, performance = w.inputs, w.a.result("performance").performance
    w.doc.add(d.Heading("At a glance", 3))
    perf = performance.set_index(["model", "optimizer"])
    rows = []
    for model in a.models:
        mine = performance[performance["model"] == model]
        if mine.empty:
            continue
        row = {"Model": model}
        for metric in ("auc", "accuracy"):
            top = mine[f"{metric}_mean"].max()
            for opt in a.optimizers:
                key = f"{opt} {metric_label(metric, capitalised=True)}"
                if (model, opt) not in perf.index:
                    row[key] = "not run"
                    continue
                r = perf.loc[(model, opt)]
                cell = fnum(r[f"{metric}_mean"])
                if math.isfinite(r[f"{metric}_mean"]) and r[f"{metric}_mean"] == top:
                    cell = f"**{cell}**"
                row[key] = cell + ("" if r["complete"] else " (incomplete)")
        rows.append(row)
    order = ["Model"] + [
        f"{o} {metric_label(m, capitalised=True)}"
        for o in a.optimizers
        for m in ("auc", "accuracy")
    ]
    frame = pd.DataFrame(rows)
    w.table(
        frame[[col for col in order if col in frame]],
        "Test AUC and accuracy (at P(malignant) ≥ "
        f"{a.threshold:g}), mean over folds; the best of each model in bold. Intervals, "
        "spreads and the other metrics: Test performance.",
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
    shown = probs.assign(
        fold=probs["fold"].astype(str),
        seed=probs["seed"].astype(str),
        run_id=probs["run_id"].fillna(""),
    )
    w.table(
        shown.rename(columns=str.capitalize).rename(columns={"Run_id": "Run id"}),
        "",
        "failed_runs",
        keep=("Model", "Optimizer", "Fold", "Status", "Reason"),
    )


def _interval(low, high) -> str:
    """ "95% CI -0.009 to +0.021" for a difference."""
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return "no interval"
    return f"95% CI {fsigned(low)} to {fsigned(high)}"
