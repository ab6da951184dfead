"""The report's text: each section of ``report.md`` / ``report.html`` as a function that adds
blocks to the document, formatting the numbers of :class:`~medbench.report.analysis.Analysis`.

The report answers first (verdict, the ROC and the difference plot, the model × optimizer table),
then says how to read its numbers, then gives the details; the config, the data card and the
environment fold away into an appendix. A new section is one function added to
:data:`SECTIONS` (or :data:`APPENDIX`); it writes with ``c.doc.add`` and ``c.table``/``c.image``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from medbench.data.cards import list_cards, read_card
from medbench.errors import DataError
from medbench.optim.fidelity import FIDELITY_THRESHOLD
from medbench.report import document as d
from medbench.report import figures, results
from medbench.report.analysis import Analysis, config_value
from medbench.report.formatting import (
    fci,
    fcount,
    fnum,
    fp,
    fpercent,
    fpm,
    fquartiles,
    fsig,
    fsigned,
    seconds,
)
from medbench.report.stats import wilcoxon_min_p
from medbench.report.vocab import metric_label, reader_style
from medbench.tracking import ExperimentRecord, schema
from medbench.tracking.reader import tag_column

#: The data card of medbench's generator: its runs get the synthetic-data banner.
SYNTHETIC_CARD = "synthetic_bus"


def _cell(row, metric: str, digits: int = 3) -> str:
    text = fpm(row[f"{metric}_mean"], row[f"{metric}_std"], digits)
    ci = fci(row[f"{metric}_ci_low"], row[f"{metric}_ci_high"], digits)
    return f"{text} {ci}".strip()


def _quartile_cell(row, key: str, fmt=fsig) -> str:
    return fquartiles(row[f"{key}_median"], row[f"{key}_q25"], row[f"{key}_q75"], fmt)


def _runs(row) -> str:
    done = f"{int(row['n_finished'])}/{int(row['n_expected'])}"
    return done if row["complete"] else f"{done} (incomplete)"


def _interval(low, high) -> str:
    """ "95% CI -0.009 to +0.021" for a difference."""
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return "no interval"
    return f"95% CI {fsigned(low)} to {fsigned(high)}"


# -- the document ------------------------------------------------------------------------------


@dataclass
class _Ctx:
    record: ExperimentRecord
    a: Analysis
    figs: dict[str, figures.FigureFiles]
    tables: dict[str, Path]
    doc: d.Document | d.Details  # where sections add their blocks

    def image(self, key: str, caption: str) -> None:
        f = self.figs.get(key)
        if f is not None:
            self.doc.add(d.Image(f.png.name, f.svg.name, caption))

    def table(
        self,
        frame: pd.DataFrame,
        caption: str = "",
        csv_key: str | None = None,
        keep: tuple[str, ...] = ("Optimizer",),
    ) -> None:
        """A table; columns holding one value in every row (but those in ``keep``) move into the
        caption, so that no column repeats a constant, and columns undefined in every row go."""
        csv = self.tables.get(csv_key) if csv_key else None
        undefined = [
            c for c in frame.columns if len(frame) and (frame[c].astype(str) == "n/a").all()
        ]
        frame = frame.drop(columns=undefined)  # nothing measured there (e.g. not logged)
        if len(frame) > 1:
            constant = [
                col
                for col in frame.columns
                if col not in keep and frame[col].astype(str).nunique() == 1 and str(col).strip()
            ]
            if constant and len(constant) < len(frame.columns):
                same = "; ".join(f"{col} {frame[col].iloc[0]}" for col in constant)
                caption = f"{caption} Same in every row: {same}.".strip()
                frame = frame.drop(columns=constant)
        self.doc.add(d.Table(frame, caption, csv.name if csv else None))


def compose(
    record: ExperimentRecord,
    a: Analysis,
    figs: dict[str, figures.FigureFiles],
    tables: dict[str, Path],
) -> d.Document:
    """The whole report; ``figs`` and ``tables`` are the files written beside it, by key."""
    doc = d.Document(f"medbench report: {record.name}")
    ctx = _Ctx(record, a, figs, tables, doc)
    for section in SECTIONS:
        section(ctx)
    appendix = d.Details("Configuration, data card, environment and files (click to open)")
    doc.add(d.Heading("Appendix"), appendix)
    ctx.doc = appendix
    for section in APPENDIX:
        section(ctx)
    return doc


def is_synthetic(record: ExperimentRecord) -> bool:
    """Whether the runs used synthetic data: their data card is medbench's generator's
    (``medbench.dataset_card`` tag), or the card's front matter says ``synthetic: true`` or names
    a generator."""
    for name in _card_names(record):
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


def _card_names(record: ExperimentRecord) -> list[str]:
    parents = record.parents
    col = tag_column(schema.TAG_DATASET_CARD)
    return sorted(set(parents[col].dropna())) if col in parents else []


# -- the answer ----------------------------------------------------------------------------------


def _overview(c: _Ctx) -> None:
    a, rec = c.a, c.record
    if is_synthetic(rec):
        c.doc.add(
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
    c.doc.add(
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


def _verdict(c: _Ctx) -> None:
    a = c.a
    c.doc.add(d.Heading("Verdict"))
    if a.per_unit.empty and a.external is not None and not a.external.empty:
        c.doc.add(
            d.Paragraph(
                "No internal test fold (`data.folds: none`): the models were tested on external "
                "data only; see External validation."
            )
        )
        return
    if a.per_unit.empty:
        c.doc.add(d.Paragraph("**No fold run finished: there are no results to show.**"))
        _problems(c)
        return
    small = a.per_unit[a.per_unit["small_fold"]].drop_duplicates("fold")
    if not small.empty:
        median = a.per_unit.drop_duplicates("fold")["n_test"].median()
        listed = ", ".join(f"{r.fold} ({int(r.n_test)} test images)" for r in small.itertuples())
        c.doc.add(
            d.Paragraph(
                f"**Fold(s) far smaller than the rest: {listed}, against a median of "
                f"{median:.0f}.** Their metrics are noise, yet each weighs as much as a full fold "
                "in every mean and test below. If they are typos in the fold column, rerun with "
                "`data.folds_keep` listing the real folds (marked `small_fold` in "
                "table_per_fold.csv)."
            )
        )
    c.doc.add(
        d.Paragraph(
            "Test AUC is the probability that the model scores a randomly chosen malignant "
            "lesion above a randomly chosen benign one (0.5: chance, 1: perfect); each fold's "
            "test images were never used for training or model selection."
        )
    )
    for model in a.models:
        rows = a.verdict[a.verdict["model"] == model]
        if not rows.empty:
            c.doc.add(d.Paragraph(_verdict_text(model, rows, a)))
    readers = not a.readers.empty and int(a.readers["n_used"].sum()) > 0
    for model in a.models:
        c.image(
            f"roc/{model}",
            f"{model}: mean test ROC over folds per optimizer (band: interquartile range over "
            "folds; AUC mean ± std in the legend)"
            + (
                " and the two readers' operating points (BI-RADS ≥ 4a called malignant) on the "
                "same test images."
                if readers
                else "."
            ),
        )
    c.image(
        "differences",
        "What the comparisons test: each fold's difference B − A (one marker per fold), their "
        "mean and its 95% interval corrected for overlapping training sets (Nadeau & Bengio), "
        "the Holm-adjusted p above each comparison, and the region of practical equivalence "
        f"(±{a.rope:g}) in grey.",
    )
    _at_a_glance(c)
    _problems(c)


def _verdict_text(model: str, rows: pd.DataFrame, a: Analysis) -> str:
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
    text += [_in_words(r, baseline, a.rope) for r in others.to_dict("records")]
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


def _at_a_glance(c: _Ctx) -> None:
    """Model × optimizer (MedMNIST style): AUC and accuracy, mean over folds, the best of each
    model in bold."""
    a = c.a
    c.doc.add(d.Heading("At a glance", 3))
    perf = a.performance.set_index(["model", "optimizer"])
    rows = []
    for model in a.models:
        mine = a.performance[a.performance["model"] == model]
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
    c.table(
        frame[[col for col in order if col in frame]],
        "Test AUC and accuracy (at P(malignant) ≥ "
        f"{a.threshold:g}), mean over folds; the best of each model in bold. Intervals, "
        "spreads and the other metrics: Test performance.",
        "performance",
        keep=("Model",),
    )


def _problems(c: _Ctx) -> None:
    a = c.a
    probs = a.inventory.problems
    n_runs = len(c.record.folds)
    if probs.empty:
        c.doc.add(d.Paragraph(f"All {n_runs} fold runs finished."))
        return
    incomplete = a.inventory.status[~a.inventory.status["complete"]]
    names = ", ".join(f"{r.model}/{r.optimizer}" for r in incomplete.itertuples())
    c.doc.add(
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
    c.table(
        shown.rename(columns=str.capitalize).rename(columns={"Run_id": "Run id"}),
        "",
        "problems",
        keep=("Model", "Optimizer", "Fold", "Status", "Reason"),
    )


def _how_to_read(c: _Ctx) -> None:
    a = c.a
    if a.per_unit.empty:
        return
    n_folds = int(a.fold_means.groupby(["model", "optimizer"]).size().max())
    n_seeds = int(a.fold_means["n_seeds"].max())
    family = (
        ", ".join(
            f"{int(n)} for {metric_label(m)}"
            for m, n in a.paired.groupby("metric", sort=False)["family_size"].max().items()
        )
        if not a.paired.empty
        else "none"
    )
    min_p = wilcoxon_min_p(n_folds)
    items = [
        f"**The unit is the fold.** Each of the {n_folds} folds is tested once on images the "
        "model never trained or was selected on. "
        + (
            f"The {n_seeds} seeds of a fold share its test images, so they are averaged within "
            "the fold first; how much the seeds disagree is shown separately (Seed-to-seed "
            "spread)."
            if n_seeds > 1
            else "One seed per fold."
        ),
        "**Intervals never leave what is possible.** Metrics in [0, 1] (AUC, accuracy, "
        "sensitivity, specificity, F1, balanced accuracy, Brier) get a 95% percentile "
        f"bootstrap interval over test images ({a.n_resamples} resamples, seed "
        f"{a.bootstrap_seed}, stratified by fold, site and label): the uncertainty from the "
        "finite test sets, given the trained fold models. Readers' sensitivity and specificity "
        "get Wilson intervals. ECE, times, gradient evaluations and curvatures are given as "
        "median and quartiles over folds. ± is the standard deviation over folds.",
        "**Comparisons.** The effect comes first: the mean difference B − A over folds with its "
        "95% interval from the corrected resampled t-test (Nadeau & Bengio 2003), which widens "
        "the ordinary paired t interval because the folds' training sets overlap: variance × "
        f"(1/k + n_test/n_train) instead of 1/k, {_ratio_text(a)}. Its p-value is adjusted with "
        "Holm–Bonferroni over every pairwise comparison of one metric in this report, all "
        f"models (family size: {family}); **significant** means Holm-adjusted p < 0.05.",
        "**How likely is each optimizer better?** The Bayesian correlated t-test (Benavoli et "
        "al. 2017; same corrected scale) gives the probability that A is better, that the two "
        f"are practically equivalent (difference within ±{a.rope:g}, `report.rope`), and that "
        "B is better.",
        "**A non-significant result** means these folds cannot tell the optimizers apart, not "
        "that they perform alike: read the interval for the differences that remain plausible, "
        "and P(equivalent) for how likely the difference is too small to matter. "
        f"With {n_folds} folds the tests have little power; the Wilcoxon signed-rank test (in "
        f"the CSV) cannot go below p = {min_p:.4g}"
        + (" and so can never reach 0.05." if min_p > 0.05 else "."),
        "**Pooled out-of-fold AUC** ranks every fold's test predictions together. It is "
        "conditional on the fitted fold models and also penalises calibration differences "
        "between them, so it can be lower than the mean of the folds' AUCs; its paired "
        "bootstrap between optimizers is a second look, not the primary test.",
        "**ECE** is the positive-class (P(malignant)) expected calibration error over 10 "
        "equal-width bins: |observed malignant share − mean predicted P(malignant)| per bin, "
        "weighted by the bin's share of the images.",
    ]
    c.doc.add(d.Heading("How to read these numbers"), d.Bullets(items))


def _ratio_text(a: Analysis) -> str:
    """What n_test / n_train was, and where it came from."""
    if a.paired.empty or a.paired["test_train_ratio"].isna().all():
        return "n_test/n_train being each fold's test and training sizes"
    ratio = float(a.paired["test_train_ratio"].mean())
    if a.per_unit["n_train"].notna().all():
        return f"n_test/n_train = {ratio:.3f} here (the mean over folds of the logged sizes)"
    return (
        f"n_test/n_train ≈ {ratio:.3f} here: these runs did not log `n_train`, so the images "
        "outside each test fold stand in (validation images included, which understates the "
        "correction a little)"
    )


def _protocol(c: _Ctx) -> None:
    cfg, a = c.record.config, c.a
    units = a.inventory.units
    n_folds = (
        units["fold"].nunique()
        if not units.empty
        else c.record.folds.get("fold", pd.Series()).nunique()
    )
    seeds = sorted(set(c.record.folds.get("seed", pd.Series()).dropna().astype(int)))
    kind = config_value(cfg, "data.folds", "unknown")
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
    es = config_value(cfg, "train.early_stopping", {}) or {}
    val = config_value(cfg, "data.val_fraction")
    val_text = f"{float(val):.0%}" if val is not None else "a share"
    sizes = a.per_unit[["n_train", "n_val", "n_test"]].median() if not a.per_unit.empty else None
    size_text = ""
    if sizes is not None and math.isfinite(sizes["n_train"]):
        size_text = (
            f" Median split: {sizes['n_train']:.0f} training, {sizes['n_val']:.0f} validation "
            f"and {sizes['n_test']:.0f} test images per fold."
        )
    items = [
        f"Cross-validation: {n_folds} folds ({fold_text}); seeds "
        f"{', '.join(map(str, seeds)) or 'n/a'}. Each fold in turn is the test set.{size_text}",
        f"Validation split: {val_text} of the training folds is held out for model selection.",
        f"Selection rule: early stopping on `{es.get('monitor', 'val_auc')}` of the validation "
        "split ("
        + (f"patience {es['patience']} epochs, " if "patience" in es else "")
        + f"at most {config_value(cfg, 'train.epochs', 'n/a')} epochs); the best checkpoint on the "
        "validation split is evaluated once on the test fold. The test fold is never used for "
        "early stopping or selection.",
        "Paired design: for one (model, fold, seed), every optimizer starts from the same initial "
        "weights and sees the same batches in the same order.",
        f"Decision threshold: P(malignant) ≥ {a.threshold:g} is called malignant (accuracy, "
        "sensitivity, specificity, F1, balanced accuracy, confusion matrices).",
        f"Optimizer settings: lr {config_value(cfg, 'optimizer.lr', 'n/a')}, rho "
        f"{config_value(cfg, 'optimizer.rho', 'n/a')}, weight decay "
        f"{config_value(cfg, 'optimizer.weight_decay', 'n/a')}; batch size "
        f"{config_value(cfg, 'train.batch_size', 'n/a')}, image size "
        f"{config_value(cfg, 'data.image_size', 'n/a')} px"
        + (
            f"; precision `train.amp: {config_value(cfg, 'train.amp')}`."
            if config_value(cfg, "train.amp") is not None
            else "."
        ),
    ]
    c.doc.add(d.Heading("Protocol"), d.Bullets(items))


def _budget_text(p) -> str:
    kind, epochs = p.budget.get("kind", "epochs"), p.epochs or "n/a"
    if kind == "gradient_evals":
        amount = p.budget.get("gradient_evals")
        amount = f"{int(amount)}" if amount else f"as many as {epochs} epochs of Adam take"
        return (
            f"Equal compute: every run gets the same number of forward-backward passes on "
            f"training batches ({amount}); a SAM or GCSAM step takes two, so Adam takes about "
            "twice their steps. Training stops at the step that would exceed the budget (in "
            "mid-epoch if need be); early stopping is off, the best validation epoch is selected."
        )
    if kind == "seconds":
        return (
            f"Equal compute: every run trains for {p.budget.get('seconds')} s of wall time "
            "(validation included) on the same hardware; early stopping is off, the best "
            "validation epoch is selected."
        )
    return (
        f"Budget in epochs: at most {epochs} epochs per run, with early stopping. A SAM or GCSAM "
        "step takes two forward-backward passes, so at equal epochs they spend about twice "
        "Adam's compute (see the passes per run below)."
    )


def _tuning_text(p) -> str:
    tune = p.tune
    if not p.tuned:
        return (
            "No tuning: every optimizer used the configured lr (and rho), the same for all, "
            "which favours whichever optimizer that value suits."
        )
    space = tune.get("space") or {}
    ranges = f"lr log-uniform in [{space.get('lr_low')}, {space.get('lr_high')}]"
    ranges += f"; rho (SAM family) log-uniform in [{space.get('rho_low')}, {space.get('rho_high')}]"
    sampler = tune.get("sampler", "tpe")
    if sampler == "grid":
        ranges += f"; grid of {space.get('grid_points')} log-spaced values per range"
    return (
        f"Tuning, nested in each outer fold: for every (model, optimizer, fold, seed), "
        f"{tune.get('trials')} trials of {tune.get('epochs')} epochs each (the same number for "
        f"every optimizer; a compute budget is scaled by trial epochs / training epochs), "
        f"sampler `{sampler}` (Optuna, seeded by model, fold, seed and trial: under random "
        f"search every optimizer tries the same learning rates), objective the best "
        f"`{p.objective}` of a trial on the validation split of the fold's training data. "
        f"Trials never see the test fold. Search space: {ranges}. The best trial's setting is "
        "then trained and tested as above; the lr and rho listed above are replaced by it."
    )


def _tuning_protocol(c: _Ctx) -> None:
    p = c.a.protocol
    c.doc.add(
        d.Heading("Tuning and compute", 3),
        d.Bullets(
            [
                _tuning_text(p),
                _budget_text(p),
                f"Time to target: the training time and passes until the first epoch whose "
                f"validation AUC reaches {p.target:g} (`report.target_val_auc`).",
            ]
        ),
    )
    if not p.chosen.empty:
        rows = [
            {
                "Model": r["model"],
                "Optimizer": r["optimizer"],
                "Fold": r["fold"],
                "Seed": r["seed"],
                "lr": fsig(r["lr"], 3),
                "rho": fsig(r["rho"], 3) if math.isfinite(r["rho"]) else "",
                "Trials (finished)": f"{r['n_trials']} ({r['n_finished']})",
                f"Best trial {p.objective}": fnum(r[p.objective]),
            }
            for r in p.chosen.to_dict("records")
        ]
        c.table(
            pd.DataFrame(rows),
            "Setting chosen by tuning per fold run (its params `lr`, `rho`); every trial is a run "
            "nested under its fold run (all trials: table_tuning_trials.csv).",
            "tuning_chosen",
        )
        c.image("tuning", "Chosen lr (and rho) per optimizer; one dot per fold and seed.")
    if not p.cost.empty:
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
            for r in p.cost.to_dict("records")
        ]
        c.table(
            pd.DataFrame(rows),
            "Cost per run, mean over folds, tuning included in the total: wall time of training "
            "(validation included) and forward-backward passes on training batches.",
            "total_cost",
        )
    if not p.equal_compute.empty:
        rows = [
            {
                "Model": r["model"],
                "Optimizer": r["optimizer"],
                "Runs": r["n_units"],
                "Passes": fnum(r["gradient_evals_mean"], 0),
                "Steps": fnum(r["steps_mean"], 0),
                "Epochs": fnum(r["epochs_mean"], 1),
                "Test AUC": _quartile_cell(r, "auc", fnum),
                "Largest difference in passes within a fold": fnum(
                    r["max_within_fold_difference"], 0
                ),
            }
            for r in p.equal_compute.to_dict("records")
        ]
        c.table(
            pd.DataFrame(rows),
            "At equal compute: every optimizer had the same forward-backward passes per fold (to "
            "within one step), so the test results of this report compare optimizers at equal "
            "compute. Mean over folds; test AUC median (lower–upper quartile) over folds.",
            "equal_compute",
        )


def _compute(c: _Ctx) -> None:
    p = c.a.protocol
    if p.compute_curves.empty:
        return
    c.doc.add(d.Heading("Compute and time to target"))
    c.image(
        "compute_curves",
        "Validation AUC against forward-backward passes and against wall time of training, "
        f"mean ± std over folds; dotted: the target {p.target:g}.",
    )
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Reached the target": f"{r['n_reached']}/{r['n_units']} runs",
            "Time to target": _quartile_cell(r, "time_to_target_s", seconds),
            "Passes to target": _quartile_cell(r, "gradient_evals_to_target", fcount),
        }
        for r in p.to_target.to_dict("records")
    ]
    c.table(
        pd.DataFrame(rows),
        f"Time and forward-backward passes until the first epoch with validation AUC ≥ "
        f"{p.target:g}: median (lower–upper quartile) over the runs that reached it (a run that "
        "never did has no time to target: it counts only in the first column).",
        "time_to_target",
    )


# -- the details ---------------------------------------------------------------------------------


def _discrimination(c: _Ctx) -> None:
    a = c.a
    if a.per_unit.empty:
        return
    c.doc.add(d.Heading("Test performance"))
    rows = []
    for r in a.performance.to_dict("records"):
        row = {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Runs": _runs(r),
            "Folds": r["n_folds"],
        }
        for m in results.SUMMARY_METRICS:
            cell = _cell(r, m)
            if r[f"{m}_n"] < r["n_folds"]:  # e.g. no AUC on a single-class test fold
                cell += f" (defined on {int(r[f'{m}_n'])} folds)"
            row[metric_label(m, capitalised=True)] = cell
        rows.append(row)
    c.table(
        pd.DataFrame(rows),
        "Mean ± std over folds [95% bootstrap CI]; threshold metrics at P(malignant) ≥ "
        f"{a.threshold:g}. Per-run values (with each split's size): table_per_fold.csv.",
        "performance",
    )
    c.image(
        "intervals",
        "Test AUC and accuracy per model and optimizer: mean over folds with its 95% bootstrap "
        "CI; dots are single folds.",
    )
    if not a.seed_spread.empty:
        c.doc.add(d.Heading("Seed-to-seed spread", 3))
        spread = a.seed_spread[a.seed_spread["metric"].isin(["auc", "accuracy"])]
        c.table(
            pd.DataFrame(
                {
                    "Model": spread["model"],
                    "Optimizer": spread["optimizer"],
                    "Metric": spread["metric"].map(lambda m: metric_label(m, capitalised=True)),
                    "Seeds per fold": spread["n_seeds"],
                    "Std between seeds (within a fold)": spread["seed_std"].map(fnum),
                    "Std between folds (seed means)": spread["fold_std"].map(fnum),
                }
            ),
            "How much the result moves with the seed alone, beside how much it moves between "
            "folds; seeds are averaged within each fold before every interval and test.",
            "seed_spread",
        )
    pooled = a.pooled
    c.table(
        pd.DataFrame(
            {
                "Model": pooled["model"],
                "Optimizer": pooled["optimizer"],
                "Seed": pooled["seed"],
                "Folds": pooled["n_folds"],
                "Images": pooled["n_images"],
                "Pooled AUC [95% CI]": [
                    f"{fnum(r.auc)} {fci(r.ci_low, r.ci_high)}".strip() for r in pooled.itertuples()
                ],
            }
        ),
        "Out-of-fold AUC, conditional on the fitted fold models: every test fold's predictions "
        "pooled and ranked together (it also penalises calibration differences between the fold "
        "models, so it is another quantity than the mean of the folds' AUCs); percentile "
        f"bootstrap CI over images ({a.n_resamples} resamples, stratified by fold, site and label).",
        "pooled",
    )


def _paired(c: _Ctx) -> None:
    a = c.a
    if a.per_unit.empty:
        return
    c.doc.add(d.Heading("Paired comparisons between optimizers"))
    if a.paired.empty:
        c.doc.add(d.Paragraph("Only one optimizer has results: nothing to compare."))
        return
    c.table(
        _paired_rows(a.paired),
        "Differences B − A over the folds both optimizers finished (seeds averaged within each "
        "fold), with the interval and p of the corrected resampled t-test; Holm's adjustment over "
        "all comparisons of one metric in this report; posterior probabilities of the Bayesian "
        f"correlated t-test with equivalence within ±{a.rope:g}. The uncorrected paired t-test "
        "and the Wilcoxon test are in the CSV; each fold's difference in table_fold_differences.csv.",
        "paired",
    )
    c.image(
        "paired",
        "Test AUC of each fold per optimizer (mean over its seeds); a line, a marker and a label "
        "on each side per fold (same initial weights and batches under every optimizer).",
    )
    if not a.paired_pooled.empty:
        pp = a.paired_pooled
        c.table(
            pd.DataFrame(
                {
                    "Model": pp["model"],
                    "B − A": [
                        f"{b} − {x}"
                        for x, b in zip(pp["optimizer_a"], pp["optimizer_b"], strict=True)
                    ],
                    "Images": pp["n_images"],
                    "Pooled AUC A / B": [
                        f"{fnum(x)} / {fnum(y)}"
                        for x, y in zip(pp["auc_a"], pp["auc_b"], strict=True)
                    ],
                    "Difference [95% CI]": [
                        f"{fsigned(r.auc_diff)} [{fsigned(r.ci_low)}, {fsigned(r.ci_high)}]"
                        for r in pp.itertuples()
                    ],
                    "Bootstrap p": pp["p_bootstrap"].map(fp),
                }
            ),
            "Paired bootstrap of the pooled out-of-fold AUC: both optimizers scored on the same "
            f"resamples of images ({a.n_resamples}, stratified by fold, site and label), averaged "
            "over seeds. Conditional on the fitted fold models; not adjusted for multiplicity.",
            "paired_pooled",
        )


def _paired_rows(paired: pd.DataFrame) -> pd.DataFrame:
    """The table of paired comparisons (``results.paired``): the effect with its corrected
    interval first, then the corrected and Holm-adjusted p and the Bayesian probabilities."""
    rows = []
    for r in paired.to_dict("records"):
        significant = math.isfinite(r["p_holm"]) and r["p_holm"] < 0.05
        rows.append(
            {
                "Model": r["model"],
                "Metric": metric_label(r["metric"], capitalised=True),
                "B − A": f"{r['optimizer_b']} − {r['optimizer_a']}",
                "Folds": f"{r['n_folds']}"
                + (f" ({r['n_unpaired']} unpaired run(s) left out)" if r["n_unpaired"] else ""),
                "Mean difference [95% CI]": f"{fsigned(r['mean_diff'])} "
                f"[{fsigned(r['corrected_ci_low'])}, {fsigned(r['corrected_ci_high'])}]"
                if math.isfinite(r["corrected_ci_low"])
                else fsigned(r["mean_diff"]),
                "p (corrected t)": fp(r["corrected_t_p"]),
                "p (Holm)": fp(r["p_holm"]) + (" **significant**" if significant else ""),
                "P(A better) / P(equivalent) / P(B better)": " / ".join(
                    fpercent(r[k]) for k in ("p_a_better", "p_equivalent", "p_b_better")
                ),
            }
        )
    return pd.DataFrame(rows)


def _external(c: _Ctx) -> None:
    ext = c.a.external
    if ext is None or ext.empty:
        return
    sizes = ext.summary.drop_duplicates("dataset").set_index("dataset")
    described = "; ".join(
        f"`{name}` ({int(sizes.at[name, 'n_images'])} images, "
        f"{int(sizes.at[name, 'n_malignant'])} malignant)"
        for name in ext.datasets
    )
    c.doc.add(
        d.Heading("External validation"),
        d.Paragraph(
            "Every fold's selected checkpoint (chosen on the validation split of its training "
            "data, never on these images) was also tested on data from elsewhere, preprocessed "
            f"exactly as the training data: {described}. Every checkpoint sees the same external "
            "images, so the intervals over checkpoints show how much the result depends on the "
            "training fold, not on the test images; the bootstrap interval of the checkpoints' "
            "mean probability is over the external images."
        ),
    )
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Dataset": r["dataset"],
            "Checkpoints": r["n_units"],
            "Internal AUC": _cell(r, "internal_auc")
            if r["internal_auc_n"]
            else "n/a (no internal test fold)",
            "External AUC": _cell(r, "auc"),
            "External − internal AUC": f"{fnum(r['gap_auc_mean'])} "
            f"{fci(r['gap_auc_ci_low'], r['gap_auc_ci_high'])}".strip(),
            "External accuracy": _cell(r, "accuracy"),
            "AUC of the mean probability": f"{fnum(r['mean_prob_auc'])} "
            f"{fci(r['mean_prob_auc_ci_low'], r['mean_prob_auc_ci_high'])}".strip(),
        }
        for r in ext.summary.to_dict("records")
    ]
    c.table(
        pd.DataFrame(rows),
        "Internal (each checkpoint's own test fold; its interval is in Test performance) "
        "against external AUC: mean ± std over folds (seeds averaged) [95% percentile bootstrap "
        f"CI over the external images, {c.a.n_resamples} resamples, seed {c.a.bootstrap_seed}]; "
        "the gap is taken checkpoint by checkpoint, with a t interval over folds; the AUC of the "
        "checkpoints' mean probability has a bootstrap CI over the external images. Accuracy at "
        f"P(malignant) ≥ {c.a.threshold:g}.",
        "external",
    )
    for name in ext.datasets:
        for model in c.a.models:
            c.image(
                f"external_roc/{name}/{model}",
                f"{model} on `{name}`: mean ROC of the fold checkpoints per optimizer (band: "
                "interquartile range), with the dataset's readers' operating points when it has "
                "readers.",
            )
    if not ext.paired.empty:
        c.doc.add(
            d.Paragraph("**Optimizers compared on the external data**, paired by checkpoint:")
        )
        for name in ext.datasets:
            part = ext.paired[ext.paired["dataset"] == name]
            if not part.empty:
                c.table(
                    _paired_rows(part),
                    f"`{name}`: differences B − A over the (fold, seed) checkpoints both "
                    "optimizers finished, as for the test folds.",
                    "external_paired",
                )


def _training(c: _Ctx) -> None:
    a = c.a
    if a.curves.empty and a.cost.empty:
        return
    c.doc.add(d.Heading("Training"))
    c.image(
        "learning",
        "Training loss and validation AUC against epoch: mean over folds, band from the lower to "
        "the upper quartile (early-stopped runs leave the later epochs to fewer folds).",
    )
    _fidelity(c)
    if not a.cost.empty:
        c.image(
            "cost",
            "Training cost per optimizer: time per epoch, total training time, and training time "
            "until the end of the selected epoch (the run's `best_epoch`); median over folds, bars "
            "from the lower to the upper quartile. SAM-family optimizers need two forward-backward "
            "passes per step.",
        )
        rows = [
            {
                "Model": r["model"],
                "Optimizer": r["optimizer"],
                "Folds": r["n_folds"],
                "Epochs run": _quartile_cell(r, "epochs", lambda x: fnum(x, 0)),
                "Time per epoch": _quartile_cell(r, "epoch_time_s", seconds),
                "Total training time": _quartile_cell(r, "train_time_s", seconds),
                "Time to the selected epoch": _quartile_cell(r, "time_to_best_epoch_s", seconds),
                "Gradient evaluations": _quartile_cell(r, "gradient_evals", fcount),
            }
            for r in a.cost.to_dict("records")
        ]
        c.table(pd.DataFrame(rows), "Median (lower–upper quartile) over folds.", "cost")
        c.image(
            "compute",
            "Test AUC (mean over folds, 95% bootstrap CI) against training compute: gradient "
            "evaluations per fold run (forward-backward passes on training batches; a SAM step "
            "makes two), median over folds, log scale.",
        )


def _fidelity(c: _Ctx) -> None:
    fid = c.a.fidelity
    if fid.empty:
        return
    c.doc.add(
        d.Heading("Does the precision keep SAM's perturbation?", 3),
        d.Paragraph(
            "Cosine between the weight perturbation a SAM-family optimizer intends and the one the "
            "forward pass sees in the compute dtype, measured on the first step of each epoch "
            f"(1.0 in fp32). Below {FIDELITY_THRESHOLD:g} the arm is partly its base optimizer "
            "plus noise."
        ),
    )
    c.table(
        pd.DataFrame(
            {
                "Model": fid["model"],
                "Optimizer": fid["optimizer"],
                "Runs": fid["n_runs"],
                "Epochs measured": fid["n_epochs"],
                "Fidelity min / mean": [
                    f"{fnum(x)} / {fnum(y)}"
                    for x, y in zip(fid["fidelity_min"], fid["fidelity_mean"], strict=True)
                ],
                f"Epochs below {FIDELITY_THRESHOLD:g}": fid["n_below_threshold"],
                "Norm ratio range": [
                    f"{fnum(x)}–{fnum(y)}"
                    for x, y in zip(fid["norm_ratio_min"], fid["norm_ratio_max"], strict=True)
                ],
            }
        ),
        "",
        "fidelity",
    )
    low = fid[fid["fidelity_min"] < FIDELITY_THRESHOLD]
    if low.empty:
        c.doc.add(
            d.Paragraph(
                f"Fidelity stayed at or above {FIDELITY_THRESHOLD:g} in every epoch measured: the "
                "compute dtype carried the perturbation."
            )
        )
    else:
        names = ", ".join(
            f"{r.model}/{r.optimizer} (min {fnum(r.fidelity_min)})" for r in low.itertuples()
        )
        c.doc.add(
            d.Paragraph(
                f"**Warning: fidelity fell below {FIDELITY_THRESHOLD:g}** for {names}: under this "
                "precision these arms are partly their base optimizer plus noise, and their "
                "comparison with it is not a comparison of SAM. Train in fp32 (`train.amp: off`)."
            )
        )


def _errors(c: _Ctx) -> None:
    a = c.a
    if a.confusion.empty:
        return
    c.doc.add(d.Heading("Confusion matrices"))
    for model in a.models:
        c.image(
            f"confusion/{model}",
            f"{model}: test confusion matrices pooled over folds, P(malignant) ≥ {a.threshold:g} called malignant; percentages per true class.",
        )
    c.table(
        a.confusion.rename(
            columns={
                "model": "Model",
                "optimizer": "Optimizer",
                "threshold": "Threshold",
                "tn": "TN",
                "fp": "FP",
                "fn": "FN",
                "tp": "TP",
            }
        ),
        "Pooled over folds (and seeds).",
        "confusion",
    )


def _calibration(c: _Ctx) -> None:
    a = c.a
    if a.per_unit.empty:
        return
    c.doc.add(d.Heading("Calibration"))
    for model in a.models:
        c.image(
            f"reliability/{model}",
            f"{model}: reliability diagram of the test predictions pooled over folds, and their distribution.",
        )
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Runs": _runs(r),
            "ECE, median (quartiles)": _quartile_cell(r, "ece", fnum),
            "Brier": _cell(r, "brier"),
        }
        for r in a.calibration.to_dict("records")
    ]
    c.table(
        pd.DataFrame(rows),
        "Positive-class expected calibration error (P(malignant), 10 equal-width bins), median "
        "and quartiles over folds (the ECE of a small test set is biased upward, so its bootstrap "
        "interval would lie above it); Brier score, mean ± std over folds [95% bootstrap CI]. "
        "Lower is better.",
        "calibration",
    )


def _sites(c: _Ctx) -> None:
    a = c.a
    if a.sites.empty:
        return
    c.doc.add(d.Heading("Per site"))
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Site": r["site"],
            "Folds": r["n_folds"],
            "Images": r["n_images"],
            **{metric_label(m, capitalised=True): _cell(r, m) for m in results.SITE_METRICS},
        }
        for r in a.sites.to_dict("records")
    ]
    missing = int(a.predictions["site"].isna().sum()) if "site" in a.predictions else 0
    note = f" {missing} prediction(s) without a site are left out." if missing else ""
    c.table(
        pd.DataFrame(rows),
        "Test metrics on each hospital's images within each fold: mean ± std over folds [95% "
        "bootstrap CI]." + note,
        "sites",
    )


def _clinical(c: _Ctx) -> None:
    a = c.a
    if a.readers.empty or int(a.readers["n_used"].sum()) == 0:
        return
    c.doc.add(
        d.Heading("Clinical context: the radiologists' BI-RADS calls"),
        d.Paragraph(
            "Each reader's BI-RADS category is a call: 4a or above (a plain 4 included) is "
            "malignant. Empty cells (missing) and values that are not a BI-RADS category (stray, "
            "BI-RADS 0 included) are left out of that reader's numbers and counted here."
        ),
    )
    rows = [
        {
            "Reader": reader_style(r["reader"]).name,
            "Images": r["n_images"],
            "Used": r["n_used"],
            "Missing (left out)": r["n_missing"],
            "Stray (left out)": r["n_stray"],
            "Sensitivity [95% CI]": f"{fnum(r['sensitivity'])} {fci(r['sensitivity_ci_low'], r['sensitivity_ci_high'])}".strip(),
            "Specificity [95% CI]": f"{fnum(r['specificity'])} {fci(r['specificity_ci_low'], r['specificity_ci_high'])}".strip(),
            "TP / FN / TN / FP": f"{r['tp']} / {r['fn']} / {r['tn']} / {r['fp']}",
        }
        for r in a.readers.to_dict("records")
    ]
    c.table(
        pd.DataFrame(rows),
        "Reader operating points on the test images of this experiment (Wilson intervals).",
        "readers",
        keep=("Reader",),
    )
    if not a.agreement.empty:
        r = a.agreement.iloc[0]

        def kappa(name: str) -> str:
            return f"{fnum(r[name])} {fci(r[f'{name}_ci_low'], r[f'{name}_ci_high'])}".strip()

        c.doc.add(
            d.Paragraph(
                f"Agreement between the readers on the {int(r['n_both_assessed'])} images both "
                f"assessed ({fnum(100 * r['percent_agreement_calls'], 1)}% equal calls), Cohen's "
                f"kappa [95% bootstrap CI]: {kappa('kappa_calls')} on the malignant/benign calls; "
                f"on the ordinal BI-RADS categories {kappa('kappa_linear')} with linear and "
                f"{kappa('kappa_quadratic')} with quadratic weights (a plain 4 counted as 4b), "
                f"{kappa('kappa_categories')} unweighted."
            )
        )
    if not a.vs_readers.empty:
        rows = [
            {
                "Model": r["model"],
                "Optimizer": r["optimizer"],
                "Seed": r["seed"],
                "Reader": reader_style(r["reader"]).name,
                "Images": r["n_images"],
                "Reader sens / spec": f"{fnum(r['reader_sensitivity'])} / {fnum(r['reader_specificity'])}",
                "Model sensitivity at reader's specificity [95% CI]": (
                    f"{fnum(r['model_sensitivity_at_reader_specificity'])} "
                    f"{fci(r['model_sensitivity_at_reader_specificity_ci_low'], r['model_sensitivity_at_reader_specificity_ci_high'])}"
                ).strip(),
                "Model specificity at reader's sensitivity": fnum(
                    r["model_specificity_at_reader_sensitivity"]
                ),
            }
            for r in a.vs_readers.to_dict("records")
        ]
        c.table(
            pd.DataFrame(rows),
            "The model against each reader on the same pooled test images (those the reader "
            "assessed): its best sensitivity among thresholds at least as specific as the "
            "reader (interval: stratified bootstrap over images, the reader's specificity "
            "recomputed in each resample), and its best specificity among thresholds at least as "
            "sensitive. The threshold is chosen on the test predictions, so this is an "
            "optimistic comparison.",
            "vs_readers",
            keep=("Optimizer", "Reader"),
        )


def _flatness(c: _Ctx) -> None:
    a = c.a
    if a.flatness.empty:
        return
    c.doc.add(
        d.Heading("Flatness of the minima"),
        d.Paragraph(
            "Measured on the best checkpoint of each fold, on a fixed seeded subset of its "
            "training data: the largest Hessian eigenvalue (Lanczos on Hessian-vector "
            "products, or power iteration with flatness.method: power), the Hessian trace "
            "(Hutchinson, deflated by the Lanczos basis), and the SAM sharpness (loss increase "
            "after one ascent step of radius flatness.rho, the same for every optimizer "
            "whatever rho it trained with). Lower means flatter."
        ),
    )
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Folds": r["n_folds"],
            "Top Hessian eigenvalue": _quartile_cell(r, "hessian_top_eigenvalue"),
            "Hessian trace": _quartile_cell(r, "hessian_trace"),
            "SAM sharpness": _quartile_cell(r, "sam_sharpness"),
            "Cost per fold": _quartile_cell(r, "seconds", seconds),
            "Samples": fnum(r["n_samples_median"], 0),
        }
        for r in a.flatness.to_dict("records")
    ]
    c.table(pd.DataFrame(rows), "Median (lower–upper quartile) over folds.", "flatness")
    for model in a.models:
        c.image(
            f"flatness/{model}",
            f"{model}: training loss along one filter-normalised random direction from the best "
            "checkpoint (mean over folds, band from the lower to the upper quartile), and each "
            "fold's largest Hessian eigenvalue with their median.",
        )


# -- the appendix --------------------------------------------------------------------------------


def _configuration(c: _Ctx) -> None:
    c.doc.add(d.Heading("Configuration", 3))
    if c.record.config:
        c.doc.add(
            d.Paragraph("The config the runs were made with (`config.yaml` of the parent runs):"),
            d.Code(yaml.safe_dump(c.record.config, sort_keys=False, allow_unicode=True), "yaml"),
        )
    else:
        c.doc.add(d.Paragraph("No `config.yaml` artifact was found on the parent runs."))


def _card_summary(meta: dict, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _card_summary(value, name + ".")
        elif isinstance(value, list):
            rows.append((name, ", ".join(str(v) for v in value)))
        else:
            rows.append((name, str(value)))
    return rows


def _dataset(c: _Ctx) -> None:
    c.doc.add(d.Heading("Dataset", 3))
    names = _card_names(c.record)
    fingerprint = c.record.tags.get(schema.TAG_FINGERPRINT)
    if fingerprint:
        c.doc.add(
            d.Paragraph(
                f"Dataset fingerprint (ids, labels, sites, folds, image bytes): `{fingerprint}`."
            )
        )
    imgs = c.a.images
    if not imgs.empty:
        n_mal = int(imgs["label"].sum())
        text = (
            f"Test images seen in this experiment: {len(imgs)} ({n_mal} malignant, "
            f"{len(imgs) - n_mal} benign)"
        )
        if "site" in imgs and imgs["site"].notna().any():
            counts = imgs["site"].fillna("(none)").value_counts().sort_index()
            text += "; per site: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        c.doc.add(d.Paragraph(text + "."))
    if not names:
        c.doc.add(
            d.Paragraph(
                "No data card describes this dataset: a card is shown only for the dataset it "
                "was written for (the GDPH&SYSUCC release with its 2,405 images, or the "
                f"synthetic generator's output; tag `{schema.TAG_DATASET_CARD}` of the parent runs)."
            )
        )
    for name in names:
        if name not in list_cards():
            c.doc.add(d.Paragraph(f"Data card `{name}`: not among the cards medbench ships."))
            continue
        try:
            meta, _ = read_card(name)
        except (OSError, DataError) as err:
            c.doc.add(d.Paragraph(f"Data card `{name}` cannot be read: {err}"))
            continue
        rows = _card_summary(meta)
        c.doc.add(d.Paragraph(f"From the data card `data_cards/{name}.md`:"))
        c.table(pd.DataFrame(rows, columns=["Field", "Value"]), keep=("Field", "Value"))


ENV_TAGS = (
    (schema.TAG_VERSION, "medbench"),
    (schema.TAG_TORCH, "PyTorch"),
    (schema.TAG_PYTHON, "Python"),
    (schema.TAG_PLATFORM, "Platform"),
    (schema.TAG_DEVICE, "Device"),
    (schema.TAG_CONFIG_HASH, "Config hash"),
    (schema.TAG_FINGERPRINT, "Dataset fingerprint"),
)


def _environment(c: _Ctx) -> None:
    folds = c.record.folds
    rows = []
    for tag, label in ENV_TAGS:
        col = tag_column(tag)
        if col in folds and folds[col].notna().any():
            counts = folds[col].dropna().value_counts()
            value = (
                str(counts.index[0])
                if len(counts) == 1
                else "; ".join(f"{k} ({v} runs)" for k, v in counts.items())
            )
        else:
            value = c.record.tags.get(tag, "not recorded")
        rows.append((label, value))
    c.doc.add(d.Heading("Environment", 3), d.Paragraph("From the tags of the fold runs:"))
    c.table(pd.DataFrame(rows, columns=["", "Value"]), keep=("", "Value"))


def _files(c: _Ctx) -> None:
    c.doc.add(
        d.Heading("Files", 3),
        d.Paragraph(
            "Every table is also a full-precision CSV beside this report (`table_*.csv`); every "
            "figure is a PNG (200 dpi) and an SVG (`fig_*`). The same files are attached to each "
            "parent run of the experiment under `report/`."
        ),
    )


#: The report's sections in order: each adds its blocks to the document.
SECTIONS = (
    _overview,
    _verdict,
    _how_to_read,
    _protocol,
    _tuning_protocol,
    _discrimination,
    _paired,
    _external,
    _training,
    _compute,
    _errors,
    _calibration,
    _sites,
    _clinical,
    _flatness,
)
#: Sections folded into the collapsible appendix, in order.
APPENDIX = (_configuration, _dataset, _environment, _files)
