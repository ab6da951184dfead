"""Paired comparisons between optimizers: per model, every later optimizer (B) against every
earlier one (A) over the units both finished (the folds, or the (repeat, fold) pairs of a
repeated cross-validation), unit by unit (the difference B − A), with the corrected resampled
t-test (the primary test: with repeats, the corrected repeated k-fold t-test), Holm's adjustment
over the comparisons actually tested, the Bayesian correlated t-test, what each comparison could
detect (:mod:`medbench.report.power`), and the fold-stratified AUC
(:mod:`medbench.report.fold_auc`), which replaces the pooled out-of-fold AUC as evidence; the
paired-folds, difference and per-repeat figures (drawn by
:mod:`~medbench.report.parts.comparisons_figures`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.metrics import describe
from medbench.report import document as d
from medbench.report import fold_auc, power, stats
from medbench.report.figures import FigureFiles, rows_where, save
from medbench.report.formatting import fnum, fp, fpercent, fsigned
from medbench.report.part import Analysis, Part, Writer
from medbench.report.parts.comparisons_figures import (
    differences_figure,
    paired_folds_figure,
    repeats_figure,
)
from medbench.report.units import (
    REPEAT,
    drop_single_repeat,
    fold_means,
    test_train_ratios,
    unit_label,
    with_repeat,
)
from medbench.report.vocab import metric_label

PAIRED_METRICS = ("auc", "accuracy")
#: Power at which the minimum detectable difference is given.
POWER = 0.8
#: Two-sided level of every test of the report.
ALPHA = 0.05


@dataclass
class Comparisons:
    """The comparisons between optimizers."""

    fold_differences: pd.DataFrame  # B − A per (repeat, fold), what the comparisons test
    paired: pd.DataFrame  # the tests, one row per (model, metric, pair)
    fold_auc: pd.DataFrame  # the fold-stratified AUC comparison, one row per (model, pair)
    paired_folds: pd.DataFrame  # wide per-fold AUC of the paired plot
    repeat_differences: pd.DataFrame  # per repeat: the mean of its differences (r > 1)
    n_repeats: int = 1


def analyse(a: Analysis) -> Comparisons:
    i = a.inputs
    diffs = i.in_order(fold_differences(i.per_unit, i.models, i.optimizers))
    return Comparisons(
        fold_differences=diffs,
        paired=i.in_order(paired(i.per_unit, diffs, i.models, i.optimizers, i.rope)),
        fold_auc=i.in_order(
            fold_auc_comparisons(i.predictions, diffs, i.models, i.optimizers, i.n_resamples)
        ),
        paired_folds=i.in_order(paired_folds(i.per_unit, i.models, i.optimizers)),
        repeat_differences=i.in_order(repeat_differences(diffs)),
        n_repeats=i.inventory.n_repeats,
    )


def tables(c: Comparisons) -> dict[str, pd.DataFrame]:
    return {
        "fold_differences": drop_single_repeat(c.fold_differences),
        "paired_tests": c.paired,
        "paired_fold_auc": c.fold_auc,
        "repeat_differences": c.repeat_differences,
    }


def figures(c: Comparisons, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    """Each fold's AUC per optimizer (``paired``), the differences B − A (``differences``) and,
    with repeats, each repeat's mean difference (``repeats``)."""
    i = a.inputs
    if i.per_unit.empty:
        return {}
    models, folds = i.tested_models, i.folds
    fig = paired_folds_figure(c.paired_folds, models, i.tested_optimizers, i.colours, folds)
    made = {"paired": save(fig, out, "fig_paired_folds_auc")}
    if not c.paired.empty:
        metrics = list(dict.fromkeys(c.paired["metric"]))
        fig = differences_figure(
            c.fold_differences, c.paired, models, metrics, i.rope, folds, c.n_repeats
        )
        made["differences"] = save(fig, out, "fig_differences")
    if not c.repeat_differences.empty:
        fig = repeats_figure(c.repeat_differences, c.paired, models, i.rope)
        made["repeats"] = save(fig, out, "fig_repeat_differences")
    return made


def sections(c: Comparisons, w: Writer) -> None:
    a = w.inputs
    if a.per_unit.empty:
        return
    w.doc.add(d.Heading("Paired comparisons between optimizers"))
    if c.paired.empty:
        w.doc.add(d.Paragraph("Only one optimizer has results: nothing to compare."))
        return
    unit = "(repeat, fold) pairs" if c.n_repeats > 1 else "folds"
    test = (
        "corrected repeated k-fold t-test (Bouckaert & Frank 2004)"
        if c.n_repeats > 1
        else "corrected resampled t-test (Nadeau & Bengio 2003)"
    )
    w.table(
        paired_rows(c.paired),
        f"Differences B − A over the {unit} both optimizers finished (seeds averaged within "
        f"each), with the interval and p of the {test}; Holm's adjustment over the "
        "comparisons of one metric in this report that could be tested (a comparison whose "
        "differences have no spread is not tested and not counted); the smallest difference the "
        f"test detects with {POWER:.0%} power at this spread (two-sided alpha {ALPHA:g}); "
        "posterior probabilities of the Bayesian correlated t-test with equivalence within "
        f"±{a.rope:g}, and the most P(equivalent) can reach with this spread (equivalence is "
        f"shown at {power.EQUIVALENCE_THRESHOLD:.0%}). The uncorrected paired t-test and the "
        "Wilcoxon test are in the CSV; each difference in table_fold_differences.csv.",
        "paired_tests",
    )
    w.image(
        "paired",
        "Test AUC of each fold per optimizer (mean over its seeds); a line, a marker and a label "
        "on each side per fold (same initial weights and batches under every optimizer).",
    )
    if c.n_repeats > 1:
        w.image(
            "repeats",
            "Each repeat's mean difference B − A over its folds (one marker per repeat), beside "
            "the mean over all (repeat, fold) pairs and its corrected 95% interval: repeats that "
            "disagree show how much one partition of the images decides.",
        )
    if not c.fold_auc.empty:
        fa = c.fold_auc
        w.table(
            pd.DataFrame(
                {
                    "Model": fa["model"],
                    "B − A": [
                        f"{b} − {x}"
                        for x, b in zip(fa["optimizer_a"], fa["optimizer_b"], strict=True)
                    ],
                    "Images": fa["n_images"],
                    "Fold-stratified AUC A / B": [
                        f"{fnum(x)} / {fnum(y)}"
                        for x, y in zip(fa["auc_a"], fa["auc_b"], strict=True)
                    ],
                    "Difference [95% CI]": [_fold_auc_difference(r) for r in fa.to_dict("records")],
                    "p": [
                        "no test" if r["identical"] else fp(r["p"]) for r in fa.to_dict("records")
                    ],
                    "Test-image noise alone [95% CI]": [
                        f"[{fsigned(r['image_ci_low'])}, {fsigned(r['image_ci_high'])}]"
                        if math.isfinite(r["image_ci_low"]) and not r["identical"]
                        else "n/a"
                        for r in fa.to_dict("records")
                    ],
                }
            ),
            "Fold-stratified AUC: every test image of every fold, but only malignant–benign pairs "
            "of the same fold, so that differences in calibration between fold models cannot "
            f"count. {fold_auc.METHOD} A second look at the AUC comparison above, not adjusted "
            "for multiplicity; the last column is the interval that test-image noise alone would "
            "give, given these fitted models.",
            "paired_fold_auc",
        )


def _fold_auc_difference(r: dict) -> str:
    if r["identical"]:
        return "+0.000 (every fold ranked alike: no test)"
    ci = (
        f" [{fsigned(r['ci_low'])}, {fsigned(r['ci_high'])}]"
        if math.isfinite(r["ci_low"]) and math.isfinite(r["ci_high"])
        else ""
    )
    return f"{fsigned(r['auc_diff'])}{ci}"


def paired_rows(paired: pd.DataFrame) -> pd.DataFrame:
    """The table of paired comparisons (:func:`paired`): the effect with its corrected
    interval first, then the corrected and Holm-adjusted p, what the test could detect and the
    Bayesian probabilities; comparisons without spread say so instead of a test."""
    rows = []
    for r in paired.to_dict("records"):
        significant = math.isfinite(r["p_holm"]) and r["p_holm"] < ALPHA
        tested = r["test_status"] == "tested"
        units = f"{r['n_folds']}"
        if r["n_repeats"] > 1:
            units += f" ({r['n_repeats']} repeats)"
        if r["n_unpaired"]:
            units += f" ({r['n_unpaired']} unpaired run(s) left out)"
        if tested and math.isfinite(r["corrected_ci_low"]):
            effect = (
                f"{fsigned(r['mean_diff'])} "
                f"[{fsigned(r['corrected_ci_low'])}, {fsigned(r['corrected_ci_high'])}]"
            )
        else:
            effect = fsigned(r["mean_diff"])
        reach = r["max_p_equivalent"]
        rows.append(
            {
                "Model": r["model"],
                "Metric": metric_label(r["metric"], capitalised=True),
                "B − A": f"{r['optimizer_b']} − {r['optimizer_a']}",
                "Folds": units,
                "Mean difference [95% CI]": effect,
                "p (corrected t)": fp(r["corrected_t_p"]) if tested else "no test",
                "p (Holm)": (fp(r["p_holm"]) + (" **significant**" if significant else ""))
                if tested
                else status_text(r),
                f"Detectable at {POWER:.0%} power": f"≥ {fnum(r['mdd'])}"
                if math.isfinite(r["mdd"])
                else "n/a",
                "P(A better) / P(equivalent) / P(B better)": " / ".join(
                    fpercent(r[k]) for k in ("p_a_better", "p_equivalent", "p_b_better")
                )
                if tested
                else "n/a",
                "P(equivalent) at most": (
                    fpercent(reach) + ("" if r["equivalence_reachable"] else " (cannot show it)")
                )
                if tested and math.isfinite(reach)
                else "n/a",
            }
        )
    return pd.DataFrame(rows)


def status_text(r: Mapping) -> str:
    """Why a comparison was not tested, in words ('' when it was)."""
    kind, n = r["test_status"], int(r["n_folds"])
    if kind == "identical":
        return f"identical on every paired fold ({n}): no test"
    if kind == "constant":
        return f"the same difference on every paired fold ({n}): no test"
    if kind == "one":
        return "one paired fold: no test"
    if kind == "none":
        return "no paired fold: no test"
    return ""


PART = Part("comparisons", analyse, tables, figures, sections)


# -- the numbers -------------------------------------------------------------------------------


def _pairs(optimizers) -> list[tuple[str, str]]:
    """Every later optimizer (B) against every earlier one (A), in the given order."""
    return [(a, b) for i, a in enumerate(optimizers) for b in optimizers[i + 1 :]]


#: What pairs a unit of one optimizer with one of another: the same repeat, fold and seed.
PAIRING = [REPEAT, "fold", "seed"]


def fold_differences(
    per_unit: pd.DataFrame, models, optimizers, metrics=PAIRED_METRICS
) -> pd.DataFrame:
    """B − A per (repeat, fold), per model, metric and pair of optimizers: each side averaged
    over the seeds both finished there, and the unit's n_test / n_train (mean over those runs;
    without a logged ``n_train``, the images outside the test fold stand in, validation
    included: :func:`~medbench.report.units.test_train_ratios`)."""
    rows = []
    per_unit = with_repeat(per_unit)
    for model in models:
        mine = per_unit[per_unit["model"] == model]
        mine = mine.assign(_ratio=test_train_ratios(mine))
        for opt_a, opt_b in _pairs(optimizers):
            a = mine[mine["optimizer"] == opt_a].set_index(PAIRING)
            b = mine[mine["optimizer"] == opt_b].set_index(PAIRING)
            if a.empty or b.empty:
                continue
            common = a.index.intersection(b.index).sort_values()
            for unit in dict.fromkeys(k[:2] for k in common):
                keys = [k for k in common if k[:2] == unit]
                both = pd.concat([a.loc[keys], b.loc[keys]])
                ratio = float(both["_ratio"].mean())
                for m in metrics:
                    value_a = float(a.loc[keys, m].mean(skipna=False))
                    value_b = float(b.loc[keys, m].mean(skipna=False))
                    rows.append(
                        {
                            "model": model,
                            "metric": m,
                            "optimizer_a": opt_a,
                            "optimizer_b": opt_b,
                            REPEAT: unit[0],
                            "fold": unit[1],
                            "n_seeds": len(keys),
                            "value_a": value_a,
                            "value_b": value_b,
                            "diff": value_b - value_a,
                            "test_train_ratio": ratio,
                        }
                    )
    cols = ["model", "metric", "optimizer_a", "optimizer_b", REPEAT, "fold", "n_seeds"]
    return pd.DataFrame(rows, columns=[*cols, "value_a", "value_b", "diff", "test_train_ratio"])


def paired(
    per_unit: pd.DataFrame,
    diffs: pd.DataFrame,
    models,
    optimizers,
    rope: float,
    metrics=PAIRED_METRICS,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Every later optimizer (B) against every earlier one (A), per model and metric, over the
    units both finished (``diffs``, :func:`fold_differences`; the difference is B − A).

    Per row: the classical paired t-test and Wilcoxon over units; the corrected resampled
    t-test (the primary test; over the ``r·k`` (repeat, fold) differences it is the corrected
    repeated k-fold t-test) with its interval; Holm's adjustment of its p over every comparison
    of the same metric in the report that was tested (all models: ``family_size``); the
    Bayesian correlated t-test with the region of practical equivalence ``[-rope, rope]``; and
    what the comparison could detect: the minimum detectable difference ``mdd`` at
    :data:`POWER` and the most the Bayesian test could say for equivalence
    (:func:`~medbench.report.power.comparison_power`).

    Differences without spread (``test_status`` ``identical`` or ``constant``,
    :func:`~medbench.report.stats.paired_status`), or fewer than two, are not tested: their
    p-values, interval, probabilities and power are NaN and they are not in Holm's family.
    """
    rows = []
    per_unit, diffs = with_repeat(per_unit), with_repeat(diffs)
    for model in models:
        mine = per_unit[per_unit["model"] == model]
        for opt_a, opt_b in _pairs(optimizers):
            a = mine[mine["optimizer"] == opt_a].set_index(PAIRING)
            b = mine[mine["optimizer"] == opt_b].set_index(PAIRING)
            if a.empty or b.empty:
                continue
            common = a.index.intersection(b.index)
            for m in metrics:
                d = diffs[
                    (diffs["model"] == model)
                    & (diffs["metric"] == m)
                    & (diffs["optimizer_a"] == opt_a)
                    & (diffs["optimizer_b"] == opt_b)
                ]
                d = d[np.isfinite(d["diff"])]
                res = stats.paired_test(d["value_a"], d["value_b"], confidence)
                ratio = float(d["test_train_ratio"].mean()) if len(d) else math.nan
                nb = stats.corrected_resampled_ttest(d["diff"], ratio, confidence)
                bayes = stats.bayesian_correlated_ttest(d["diff"], ratio, rope)
                status = stats.paired_status(d["diff"])
                reach = power.comparison_power(d["diff"], ratio, rope, ALPHA, POWER)
                nan = math.nan
                tested = status.testable
                rows.append(
                    {
                        "model": model,
                        "metric": m,
                        "optimizer_a": opt_a,
                        "optimizer_b": opt_b,
                        "n_pairs": int(d["n_seeds"].sum()),
                        "n_unpaired": len(a.index.union(b.index)) - len(common),
                        "mean_a": describe(d["value_a"]).mean,
                        "mean_b": describe(d["value_b"]).mean,
                        "mean_diff": res.mean_diff,
                        "diff_ci_low": res.ci_low if tested else nan,
                        "diff_ci_high": res.ci_high if tested else nan,
                        "t_statistic": res.t_statistic if tested else nan,
                        "t_p": res.t_p if tested else nan,
                        "wilcoxon_statistic": res.wilcoxon_statistic,
                        "wilcoxon_p": res.wilcoxon_p,
                        "wilcoxon_min_p": res.wilcoxon_min_p,
                        "caveat": res.caveat if tested else status.text,
                        "n_folds": nb.n_folds,
                        "test_train_ratio": ratio,
                        "corrected_t": nb.t_statistic if tested else nan,
                        "corrected_t_p": nb.p if tested else nan,
                        "corrected_ci_low": nb.ci_low if tested else nan,
                        "corrected_ci_high": nb.ci_high if tested else nan,
                        "p_holm": nan,
                        "family_size": 0,
                        "rope": rope,
                        "p_a_better": bayes.p_a_better if tested else nan,
                        "p_equivalent": bayes.p_equivalent if tested else nan,
                        "p_b_better": bayes.p_b_better if tested else nan,
                        # added with issues 22 and 23: keep the columns above as they are
                        "n_repeats": int(d[REPEAT].nunique()) if len(d) else 0,
                        "test_status": status.kind,
                        "corrected_se": reach.scale if tested else nan,
                        "mdd": reach.mdd if tested else nan,
                        "mdd_power": POWER,
                        "max_p_equivalent": reach.equivalence.max_p_equivalent if tested else nan,
                        "equivalence_reachable": bool(tested and reach.equivalence.reachable),
                    }
                )
    out = pd.DataFrame(rows)
    for _, family in out.groupby("metric", sort=False) if rows else ():
        p = family["corrected_t_p"].to_numpy()
        out.loc[family.index, "p_holm"] = stats.holm(p)
        out.loc[family.index, "family_size"] = int(np.isfinite(p).sum())
    return out


def fold_auc_comparisons(
    preds: pd.DataFrame,
    diffs: pd.DataFrame,
    models,
    optimizers,
    n_resamples: int = stats.BOOTSTRAP_RESAMPLES,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The fold-stratified AUC of every pair (:func:`~medbench.report.fold_auc.
    compare_fold_stratified_auc`): per model and pair, each image's P(malignant) averaged over
    the seeds both optimizers finished in its (repeat, fold), only malignant–benign pairs of the
    same (repeat, fold) counted, with the test of two levels (folds and images) and the ratio
    n_test / n_train of the fold differences (``diffs``)."""
    rows = []
    key = [REPEAT, "fold", "seed"]
    preds = with_repeat(preds)
    for model in models:
        mine = preds[preds["model"] == model]
        for opt_a, opt_b in _pairs(optimizers):
            a, b = mine[mine["optimizer"] == opt_a], mine[mine["optimizer"] == opt_b]
            both = set(map(tuple, a[key].to_numpy())) & set(map(tuple, b[key].to_numpy()))
            if not both:
                continue
            sides = []
            for side in (a, b):
                kept = side[[tuple(k) in both for k in side[key].to_numpy()]]
                sides.append(
                    kept.groupby([REPEAT, "fold", "id"], sort=True)
                    .agg(label=("label", "first"), p=("prob_malignant", "mean"))
                    .reset_index()
                )
            merged = sides[0].merge(sides[1], on=[REPEAT, "fold", "id"], suffixes=("_a", "_b"))
            d = rows_where(diffs, model=model, metric="auc", optimizer_a=opt_a, optimizer_b=opt_b)
            ratio = float(d["test_train_ratio"].mean()) if len(d) else math.nan
            units = merged[REPEAT].astype(str) + "|" + merged["fold"].astype(str)
            res = fold_auc.compare_fold_stratified_auc(
                merged["label_a"], merged["p_a"], merged["p_b"], units, ratio,
                n_resamples=n_resamples, confidence=confidence,
            )  # fmt: skip
            nan = math.nan
            rows.append(
                {
                    "model": model,
                    "optimizer_a": opt_a,
                    "optimizer_b": opt_b,
                    "n_seeds": len({k[2] for k in both}),
                    "n_folds": res.n_folds,
                    "n_images": res.n_images,
                    "auc_a": res.auc_a,
                    "auc_b": res.auc_b,
                    "auc_diff": res.diff,
                    "ci_low": nan if res.identical else res.test.ci_low,
                    "ci_high": nan if res.identical else res.test.ci_high,
                    "p": nan if res.identical else res.test.p,
                    "se": res.test.se,
                    "identical": res.identical,
                    "image_ci_low": res.image_ci_low,
                    "image_ci_high": res.image_ci_high,
                    "test_train_ratio": ratio,
                    "fold_var": res.fold_var,
                    "image_var": res.image_var,
                    "n_resamples": res.n_resamples,
                    "bootstrap_seed": res.seed,
                }
            )
    return pd.DataFrame(rows)


def repeat_differences(diffs: pd.DataFrame) -> pd.DataFrame:
    """Per model, metric, pair and repeat: the mean difference B − A over the repeat's folds
    (the per-repeat figure's points); empty without repeats."""
    if diffs.empty or diffs[REPEAT].nunique() < 2:
        return pd.DataFrame()
    keys = ["model", "metric", "optimizer_a", "optimizer_b", REPEAT]
    grouped = diffs[np.isfinite(diffs["diff"])].groupby(keys, sort=False)["diff"]
    out = grouped.agg(n_folds="size", mean_diff="mean").reset_index()
    return out


def paired_folds(per_unit: pd.DataFrame, models, optimizers, metric: str = "auc") -> pd.DataFrame:
    """The paired plot's table: per model, one row per (repeat, fold) and one column per
    optimizer holding its ``metric`` (mean over its seeds); ``label`` names the row (``f{fold}``,
    ``r{repeat}f{fold}`` with repeats). Rows and optimizers without any defined value are left
    out."""
    frames = []
    folds = fold_means(with_repeat(per_unit), [metric])
    n_repeats = int(folds[REPEAT].nunique()) if REPEAT in folds and len(folds) else 1
    for model in models:
        mine = folds[folds["model"] == model]
        if mine.empty:
            continue
        wide = mine.pivot_table(
            index=[REPEAT, "fold"], columns="optimizer", values=metric, aggfunc="first"
        )
        wide = wide[[o for o in optimizers if o in wide.columns]].reset_index()
        wide.insert(0, "model", model)
        labels = [
            unit_label(r, f, n_repeats) for r, f in zip(wide[REPEAT], wide["fold"], strict=True)
        ]
        wide.insert(3, "label", labels)
        frames.append(wide)
    if not frames:
        return pd.DataFrame(columns=["model", REPEAT, "fold", "label"])
    return pd.concat(frames, ignore_index=True).rename_axis(columns=None)
