"""Test performance: every metric of each model × optimizer over folds with its headline interval
(a t interval over folds, corrected for overlapping training sets: it reflects retraining) and
its bootstrap interval over test images (test-image noise, given these fitted models), the
seed-to-seed spread, the pooled out-of-fold AUC as a descriptive number, and the figures of the
answer (the mean test ROC of each model with the readers' points, the intervals of AUC and
accuracy)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medbench.metrics import (
    METRIC_NAMES,
    PREDICTS_ONE_CLASS,
    describe,
    fold_interval,
    predicts_one_class,
    resampled_metrics,
)
from medbench.report import document as d
from medbench.report import stats
from medbench.report.clinical import readers_by_model
from medbench.report.figures import FigureFiles, roc, rows_where, safe_name, save, styled, subplots
from medbench.report.fold_auc import fold_stratified_auc
from medbench.report.formatting import fci, fnum, fpm, fruns
from medbench.report.part import Analysis, Part, Writer
from medbench.report.resampling import Resampling, summarise
from medbench.report.units import (
    drop_single_repeat,
    fold_keys,
    fold_means,
    mean_roc,
    test_train_ratios,
)
from medbench.report.vocab import metric_label

#: Metrics of the main table (all at the config's threshold except AUC).
SUMMARY_METRICS = ("auc", "accuracy", "sensitivity", "specificity", "f1", "balanced_accuracy")
#: Metrics of a call at the threshold: a model that predicts one class has no interval for them.
THRESHOLD_METRICS = ("accuracy", "sensitivity", "specificity", "f1", "balanced_accuracy")


@dataclass
class Performance:
    """The test results of every model × optimizer."""

    per_unit: pd.DataFrame  # every metric per run, with its split's sizes (the inputs')
    performance: pd.DataFrame  # SUMMARY_METRICS over folds with bootstrap intervals
    seed_spread: pd.DataFrame  # seed-to-seed vs fold-to-fold spread (empty with one seed)
    pooled: pd.DataFrame  # out-of-fold AUC per (model, optimizer, seed)
    roc: pd.DataFrame  # mean ROC per (model, optimizer) on a fixed FPR grid
    readers_by_model: pd.DataFrame  # reader operating points on each model's test images


def analyse(a: Analysis) -> Performance:
    i = a.inputs
    summary = summarise(i.per_unit, i.inventory.status, SUMMARY_METRICS, i.samples)
    headline = fold_intervals(i.per_unit, i.predictions, SUMMARY_METRICS, i.threshold)
    if not summary.empty:
        summary = summary.merge(headline, on=["model", "optimizer"], how="left")
    return Performance(
        per_unit=i.per_unit,
        performance=i.in_order(summary),
        seed_spread=i.in_order(seed_spread(i.per_unit, METRIC_NAMES)),
        pooled=i.in_order(pooled_auc(i.predictions, i.boot)),
        roc=i.in_order(mean_roc(i.predictions)),
        readers_by_model=i.in_order(readers_by_model(i.predictions)),
    )


def tables(p: Performance) -> dict[str, pd.DataFrame]:
    return {
        "per_fold": drop_single_repeat(p.per_unit),
        "performance": p.performance,
        "pooled_auc": p.pooled,
        "seed_spread": p.seed_spread,
    }


def figures(p: Performance, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    """The mean test ROC of each model (``roc/{model}``) and the intervals of AUC and
    accuracy (``intervals``)."""
    i = a.inputs
    if i.per_unit.empty:
        return {}
    models, opts, colours = i.tested_models, i.tested_optimizers, i.colours
    made = {
        f"roc/{model}": save(
            roc(p.roc, p.performance, p.readers_by_model, model, opts, colours),
            out,
            f"fig_roc_{safe_name(model)}",
        )
        for model in models
    }
    fig = intervals_figure(p.performance, i.fold_means, models, opts, colours)
    made["intervals"] = save(fig, out, "fig_auc_accuracy_ci")
    return made


def sections(p: Performance, w: Writer) -> None:
    a = w.inputs
    if a.per_unit.empty:
        return
    w.doc.add(d.Heading("Test performance"))
    repeated = a.inventory.n_repeats > 1
    units = "(repeat, fold) units" if repeated else "folds"
    rows, noise = [], []
    for r in p.performance.to_dict("records"):
        row = {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Runs": fruns(r),
            "Folds": r["n_folds"],
        }
        image = dict(row)
        for m in SUMMARY_METRICS:
            cell = headline_cell(r, m)
            if r[f"{m}_n"] < r["n_folds"]:  # e.g. no AUC on a single-class test fold
                cell += f" (defined on {int(r[f'{m}_n'])} folds)"
            row[metric_label(m, capitalised=True)] = cell
            image[metric_label(m, capitalised=True)] = image_noise_cell(r, m)
        rows.append(row)
        noise.append(image)
    w.table(
        pd.DataFrame(rows),
        f"Mean ± std over {units} [95% CI of the mean over {units}, t interval corrected for "
        "the training images the folds share (Nadeau & Bengio 2003): it reflects retraining "
        f"on data like these]; threshold metrics at P(malignant) ≥ {a.threshold:g}. No interval "
        "is shown where it would be degenerate (the same value on every fold, or a model that "
        "predicts one class). Per-run values (with each split's size): table_per_fold.csv.",
        "performance",
    )
    w.table(
        pd.DataFrame(noise),
        "Test-image noise, given these fitted models: 95% percentile bootstrap interval of the "
        f"same means over the test images ({a.n_resamples} resamples, stratified by fold, site "
        "and label), with the fold models held fixed. Narrower than the interval above, which "
        "also counts the variation between trained models; not an interval for comparing "
        "optimizers (see Paired comparisons).",
        "performance",
    )
    w.image(
        "intervals",
        f"Test AUC and accuracy per model and optimizer: mean over {units} with its 95% "
        "interval corrected for overlapping training sets (as in the table); dots are single "
        f"{'units' if repeated else 'folds'}.",
    )
    if not p.seed_spread.empty:
        w.doc.add(d.Heading("Seed-to-seed spread", 3))
        spread = p.seed_spread[p.seed_spread["metric"].isin(["auc", "accuracy"])]
        w.table(
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
    pooled = p.pooled
    w.table(
        pd.DataFrame(
            {
                "Model": pooled["model"],
                "Optimizer": pooled["optimizer"],
                "Seed": pooled["seed"],
                "Folds": pooled["n_folds"],
                "Images": pooled["n_images"],
                "Pooled AUC (descriptive)": pooled["auc"].map(fnum),
                "Fold-stratified AUC": pooled["fold_stratified_auc"].map(fnum),
            }
        ),
        "Out-of-fold AUC, a descriptive number only: every test fold's predictions pooled and "
        "ranked together, so the scores of different fold models are compared with one another "
        "and a fold model whose scores are shifted (its calibration) moves it although no model "
        "ranks its own images better. It is therefore no evidence for a difference between "
        "optimizers, and has no test here; the fold-stratified AUC beside it counts only "
        "malignant–benign pairs of the same fold (its comparison between optimizers is in "
        "Paired comparisons).",
        "pooled_auc",
    )


def headline_cell(row, metric: str) -> str:
    """ "mean ± std [low, high]" with the headline interval over folds, or the reason there is
    none (never "[x, x]")."""
    text = fpm(row[f"{metric}_mean"], row[f"{metric}_std"])
    why = row.get(f"{metric}_fold_ci_degenerate", "")
    if isinstance(why, str) and why:
        return f"{text} (no interval: {why})"
    ci = fci(
        row.get(f"{metric}_fold_ci_low", math.nan), row.get(f"{metric}_fold_ci_high", math.nan)
    )
    return f"{text} {ci}".strip()


def image_noise_cell(row, metric: str) -> str:
    """The bootstrap interval over test images, or why there is none."""
    flag = row.get("one_class", False)
    if metric in THRESHOLD_METRICS and isinstance(flag, bool | np.bool_) and flag:
        return f"n/a ({PREDICTS_ONE_CLASS})"
    low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    if math.isfinite(low) and low == high:
        return "no spread over the resamples"
    return fci(low, high) or "n/a"


PART = Part("performance", analyse, tables, figures, sections)


def seed_spread(per_unit: pd.DataFrame, metrics) -> pd.DataFrame:
    """How much the seeds of one fold disagree, beside how much the folds do: per (model,
    optimizer, metric), the pooled within-fold std over seeds (root mean of the folds'
    variances, ddof=1) and the std over folds of the seed means. Empty with one seed per fold."""
    counts = per_unit.groupby(["model", "optimizer", *fold_keys(per_unit)]).size()
    if counts.empty or counts.max() < 2:
        return pd.DataFrame()
    folds = fold_means(per_unit, metrics)
    rows = []
    for (model, opt), part in per_unit.groupby(["model", "optimizer"], sort=False):
        mine = folds[(folds["model"] == model) & (folds["optimizer"] == opt)]
        for m in metrics:
            within = part.groupby(fold_keys(part))[m].var(ddof=1).dropna()
            rows.append(
                {
                    "model": model,
                    "optimizer": opt,
                    "metric": m,
                    "n_folds": len(mine),
                    "n_seeds": int(mine["n_seeds"].max()),
                    "seed_std": float(np.sqrt(within.mean())) if len(within) else math.nan,
                    "fold_std": describe(mine[m]).std,
                }
            )
    return pd.DataFrame(rows)


def pooled_auc(preds: pd.DataFrame, boot: Resampling, confidence: float = 0.95) -> pd.DataFrame:
    """Out-of-fold AUC per (model, optimizer, seed): every test fold pooled and ranked together,
    with the percentile interval of the stratified bootstrap over images, and the fold-stratified
    AUC of the same predictions (:func:`~medbench.report.fold_auc.fold_stratified_auc`). The
    pooled AUC compares the scores of different fold models with each other, so calibration
    differences between them move it: a descriptive number, no evidence between optimizers."""
    rows = []
    for (model, opt, s), part in preds.groupby(["model", "optimizer", "seed"], sort=False):
        w = np.vstack([np.ones(len(part)), boot.columns(model, part["id"])])
        aucs = resampled_metrics(part["label"], part["prob_malignant"], w)["auc"]
        low, high = stats.percentile_interval(aucs[1:], confidence)
        units = part[fold_keys(part)].astype(str).agg("|".join, axis=1)
        rows.append(
            {
                "model": model,
                "optimizer": opt,
                "seed": s,
                "n_folds": part["fold"].nunique(),
                "n_images": len(part),
                "auc": float(aucs[0]),
                "ci_low": low,
                "ci_high": high,
                "n_resamples": boot.n_resamples,
                "n_valid_resamples": int(np.isfinite(aucs[1:]).sum()),
                "bootstrap_seed": boot.seed,
                "fold_stratified_auc": fold_stratified_auc(
                    part["label"], part["prob_malignant"], units
                ),
            }
        )
    cols = ["model", "optimizer", "seed", "n_folds", "n_images", "auc", "ci_low", "ci_high"]
    cols += ["n_resamples", "n_valid_resamples", "bootstrap_seed", "fold_stratified_auc"]
    return pd.DataFrame(rows, columns=cols)


def fold_intervals(
    per_unit: pd.DataFrame, preds: pd.DataFrame, metrics, threshold: float, confidence=0.95
) -> pd.DataFrame:
    """The headline interval of each metric's mean over folds, per (model, optimizer):
    :func:`medbench.metrics.fold_interval` of the (repeat, fold) means (seeds averaged), clipped
    to [0, 1], with Nadeau & Bengio's ratio n_test / n_train (the mean over the arm's runs:
    folds share training images, and the plain t interval covers about 86% instead of 95%
    then). Columns ``{metric}_fold_ci_low``, ``_fold_ci_high`` and ``_fold_ci_degenerate``
    (why there is none: the same value on every fold, one fold, or, for threshold metrics, a
    model that predicts one class on every test fold: ``one_class``), and ``test_train_ratio``."""
    cols = ["model", "optimizer", "test_train_ratio", "one_class"]
    cols += [f"{m}_fold_ci_{k}" for m in metrics for k in ("low", "high", "degenerate")]
    if per_unit.empty:
        return pd.DataFrame(columns=cols)
    ratios = per_unit.assign(_ratio=test_train_ratios(per_unit))
    folds = fold_means(per_unit, metrics)
    calls = preds.groupby("run_id")["prob_malignant"].agg(
        lambda p: predicts_one_class(p.to_numpy(), threshold)
    )
    rows = []
    for (model, opt), part in ratios.groupby(["model", "optimizer"], sort=False):
        mine = folds[(folds["model"] == model) & (folds["optimizer"] == opt)]
        ratio = float(part["_ratio"].mean())
        one_class = bool(len(part)) and bool(calls.reindex(part["run_id"]).fillna(False).all())
        row = {"model": model, "optimizer": opt, "test_train_ratio": ratio, "one_class": one_class}
        for m in metrics:
            ci = fold_interval(
                mine[m],
                confidence,
                bounds=(0.0, 1.0),
                ratio=ratio if math.isfinite(ratio) else 0.0,
                one_class=one_class and m in THRESHOLD_METRICS,
            )
            row.update(
                {
                    f"{m}_fold_ci_low": ci.low,
                    f"{m}_fold_ci_high": ci.high,
                    f"{m}_fold_ci_degenerate": ci.degenerate,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def intervals_figure(
    summary: pd.DataFrame,
    per_fold: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
    metrics: Sequence[str] = ("auc", "accuracy"),
) -> Figure:
    """Mean over folds and its headline 95% interval (over folds, corrected: ``_fold_ci_*``) per
    model × optimizer, each fold's value (mean over its seeds) as a faint dot; ``summary`` is
    :attr:`Performance.performance`, ``per_fold`` the inputs' ``fold_means``."""
    width = max(5.5, 1.2 + 1.4 * len(models) * len(metrics))
    fig, axes = subplots(1, len(metrics), width, 3.8)
    n_opt = len(optimizers)
    offsets = (np.arange(n_opt) - (n_opt - 1) / 2) * (0.7 / max(n_opt, 1))
    with styled():
        for ax, metric in zip(axes[0], metrics, strict=True):
            for j, opt in enumerate(optimizers):
                for i, model in enumerate(models):
                    row = rows_where(summary, model=model, optimizer=opt)
                    if row.empty:
                        continue
                    r = row.iloc[0]
                    x = i + offsets[j]
                    vals = rows_where(per_fold, model=model, optimizer=opt)[metric]
                    ax.plot(
                        np.full(len(vals), x),
                        vals,
                        ls="none",
                        marker="o",
                        ms=3,
                        alpha=0.35,
                        color=colours[opt],
                    )
                    lo, hi = r[f"{metric}_fold_ci_low"], r[f"{metric}_fold_ci_high"]
                    yerr = None
                    if math.isfinite(lo) and math.isfinite(hi):
                        yerr = [[r[f"{metric}_mean"] - lo], [hi - r[f"{metric}_mean"]]]
                    ax.errorbar(
                        x,
                        r[f"{metric}_mean"],
                        yerr=yerr,
                        fmt="D",
                        ms=5,
                        capsize=4,
                        color=colours[opt],
                        mfc="white" if not r["complete"] else colours[opt],
                        label=opt if i == 0 else None,
                    )
            ax.set_xticks(range(len(models)), models)
            ax.set_xlim(-0.6, len(models) - 0.4)
            ax.set_ylabel(
                f"Test {metric_label(metric)} (fraction)" if metric != "auc" else "Test ROC AUC"
            )
            ax.set_title(f"Test {metric_label(metric)}")
        fig.suptitle("Mean over folds with its 95% CI over folds, corrected (dots: folds)")
        fig.legend(
            *axes[0, 0].get_legend_handles_labels(),
            loc="outside lower center",
            ncols=min(len(optimizers), 6),
            title="optimizer (hollow marker: incomplete, some folds failed)",
        )
    return fig
