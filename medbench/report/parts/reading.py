"""How to read the report's numbers: the unit of analysis, the intervals, the comparisons and
what a non-significant result means, stated with this experiment's own numbers (folds, seeds,
resamples, family sizes, the region of practical equivalence)."""

from __future__ import annotations

import pandas as pd

from medbench.report import document as d
from medbench.report.inputs import Inputs
from medbench.report.part import Analysis, Part, Writer
from medbench.report.stats import wilcoxon_min_p
from medbench.report.vocab import metric_label


def analyse(a: Analysis) -> pd.DataFrame:
    """The paired tests whose reading the section explains (the comparisons part's)."""
    return a.result("comparisons").paired


def sections(paired: pd.DataFrame, w: Writer) -> None:
    a = w.inputs
    if a.per_unit.empty:
        return
    n_folds = int(a.fold_means.groupby(["model", "optimizer"]).size().max())
    n_seeds = int(a.fold_means["n_seeds"].max())
    family = (
        ", ".join(
            f"{int(n)} for {metric_label(m)}"
            for m, n in paired.groupby("metric", sort=False)["family_size"].max().items()
        )
        if not paired.empty
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
        f"(1/k + n_test/n_train) instead of 1/k, {_ratio_text(paired, a)}. Its p-value is adjusted with "
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
    w.doc.add(d.Heading("How to read these numbers"), d.Bullets(items))


def _ratio_text(paired: pd.DataFrame, a: Inputs) -> str:
    """What n_test / n_train was, and where it came from."""
    if paired.empty or paired["test_train_ratio"].isna().all():
        return "n_test/n_train being each fold's test and training sizes"
    ratio = float(paired["test_train_ratio"].mean())
    if a.per_unit["n_train"].notna().all():
        return f"n_test/n_train = {ratio:.3f} here (the mean over folds of the logged sizes)"
    return (
        f"n_test/n_train ≈ {ratio:.3f} here: these runs did not log `n_train`, so the images "
        "outside each test fold stand in (validation images included, which understates the "
        "correction a little)"
    )


PART = Part("reading", analyse, sections=sections)
