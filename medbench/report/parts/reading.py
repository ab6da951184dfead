"""How to read the report's numbers: the unit of analysis, the intervals (over folds, and of
test-image noise), the comparisons, what each could detect and what a non-significant result
means, stated with this experiment's own numbers (folds, repeats, seeds, resamples, family
sizes, the region of practical equivalence)."""

from __future__ import annotations

import pandas as pd

from medbench.report import document as d
from medbench.report.fold_auc import METHOD
from medbench.report.inputs import Inputs
from medbench.report.part import Analysis, Part, Writer
from medbench.report.power import EQUIVALENCE_THRESHOLD
from medbench.report.stats import wilcoxon_min_p
from medbench.report.vocab import metric_label


def analyse(a: Analysis) -> pd.DataFrame:
    """The paired tests whose reading the section explains (the comparisons part's)."""
    return a.result("comparisons").paired


def sections(paired: pd.DataFrame, w: Writer) -> None:
    a = w.inputs
    if a.per_unit.empty:
        return
    n_repeats = a.inventory.n_repeats
    n_units = int(a.fold_means.groupby(["model", "optimizer"]).size().max())
    n_folds = int(a.per_unit["fold"].nunique())
    n_seeds = int(a.fold_means["n_seeds"].max())
    family = (
        ", ".join(
            f"{int(n)} for {metric_label(m)}"
            for m, n in paired.groupby("metric", sort=False)["family_size"].max().items()
        )
        if not paired.empty
        else "none"
    )
    min_p = wilcoxon_min_p(n_units)
    seeds = (
        f"The {n_seeds} seeds of a fold share its test images, so they are averaged within "
        "the fold first; how much the seeds disagree is shown separately (Seed-to-seed spread)."
        if n_seeds > 1
        else "One seed per fold."
    )
    if n_repeats > 1:
        unit = (
            f"**The unit is the fold of one repeat.** The cross-validation was repeated "
            f"{n_repeats} times, each repeat a new partition of the same images into {n_folds} "
            f"folds: {n_units} (repeat, fold) units, each tested once on images its model never "
            f"trained or was selected on. {seeds} Repeats shrink the part of the variance that "
            "comes from one partition; the part that comes from having one data set at all "
            "stays (the n_test/n_train term below), so they cannot make any difference "
            "detectable."
        )
        test = (
            "the corrected repeated k-fold t-test (Bouckaert & Frank 2004; Nadeau & Bengio "
            "2003), which widens the ordinary paired t interval because the training sets "
            f"overlap: variance × (1/(r·k) + n_test/n_train) over the r·k = {n_units} "
            f"differences instead of 1/(r·k), with r·k − 1 degrees of freedom, "
        )
    else:
        unit = (
            f"**The unit is the fold.** Each of the {n_folds} folds is tested once on images "
            f"the model never trained or was selected on. {seeds}"
        )
        test = (
            "the corrected resampled t-test (Nadeau & Bengio 2003), which widens the ordinary "
            "paired t interval because the folds' training sets overlap: variance × (1/k + "
            "n_test/n_train) instead of 1/k, "
        )
    items = [
        unit,
        "**The headline interval is over folds.** A mean over folds gets the 95% t interval "
        "over its folds, with the same Nadeau–Bengio correction as the comparisons "
        "(variance × (1/k + n_test/n_train)): it reflects retraining, i.e. how much the result "
        "would move with other training data of this kind. The plain t interval over folds "
        "would be too narrow for that (it covered about 86% instead of 95% in simulations where "
        "folds share training images), so the corrected one is shown. No interval is given "
        "where it would be degenerate: the same value on every fold, one fold, or threshold "
        "metrics of a model that predicts one class on every test fold.",
        "**Test-image noise is shown apart.** Metrics in [0, 1] (AUC, accuracy, sensitivity, "
        "specificity, F1, balanced accuracy, Brier) also get a 95% percentile bootstrap "
        f"interval over test images ({a.n_resamples} resamples, seed {a.bootstrap_seed}, "
        "stratified by fold, site and label): the uncertainty from the finite test sets, given "
        "these fitted models; it leaves out the variation between trained models and is "
        "narrower. Intervals never leave what is possible. Readers' sensitivity and "
        "specificity get Wilson intervals. ECE, times, gradient evaluations and curvatures are "
        "given as median and quartiles over folds. ± is the standard deviation over folds.",
        "**Comparisons.** The effect comes first: the mean difference B − A over the units both "
        f"optimizers finished with its 95% interval from {test}{_ratio_text(paired, a)}. Its "
        "p-value is adjusted with Holm–Bonferroni over the pairwise comparisons of one metric "
        "in this report that could be tested, all models (family size: "
        f"{family}); **significant** means Holm-adjusted p < 0.05, and its direction is the "
        "sign of the paired difference. Two optimizers identical on every paired fold, or "
        "differing by the same amount on every fold, have no spread to test: the report says "
        "so, gives no p, and leaves them out of the family.",
        "**What each comparison could detect.** Beside every comparison stands the smallest "
        "true difference its test detects with 80% power at the observed (corrected) spread, "
        "two-sided at 0.05, and the largest P(equivalent) the Bayesian test could give with "
        "that spread. A difference below the first cannot be expected to show; when the "
        f"second is below {EQUIVALENCE_THRESHOLD:.0%}, no outcome of these folds could show "
        "equivalence either.",
        "**How likely is each optimizer better?** The Bayesian correlated t-test (Benavoli et "
        "al. 2017; same corrected scale) gives the probability that A is better, that the two "
        f"are practically equivalent (difference within ±{a.rope:g}, `report.rope`), and that "
        "B is better.",
        "**A non-significant result** means these folds cannot tell the optimizers apart, not "
        "that they perform alike: read the interval for the differences that remain plausible, "
        "the detectable difference for what the test could have found, and P(equivalent) for "
        f"how likely the difference is too small to matter. With {n_units} "
        f"{'units' if n_repeats > 1 else 'folds'} the Wilcoxon signed-rank test (in the CSV) "
        f"cannot go below p = {min_p:.4g}"
        + (" and so can never reach 0.05." if min_p > 0.05 else "."),
        "**Pooled out-of-fold AUC is descriptive only.** It ranks every fold's test predictions "
        "together, so it compares the scores of different fold models with one another: a "
        "fold model whose scores are shifted (its calibration) moves it although no model "
        "ranks its own images better. It is given without a test. Its evidence counterpart is "
        "the fold-stratified AUC, compared in Paired comparisons. How that comparison is "
        f"made: {METHOD}",
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
