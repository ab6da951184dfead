"""Test performance: every metric of each model × optimizer over folds with its bootstrap
interval, the seed-to-seed spread, the pooled out-of-fold AUC, and the figures of the answer (the
mean test ROC of each model with the readers' points, the intervals of AUC and accuracy)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medbench.metrics import METRIC_NAMES, describe, resampled_metrics
from medbench.report import document as d
from medbench.report import stats
from medbench.report.clinical import readers_by_model
from medbench.report.figures import FigureFiles, roc, rows_where, safe_name, save, styled, subplots
from medbench.report.formatting import fcell, fci, fnum, fruns
from medbench.report.part import Analysis, Part, Writer
from medbench.report.resampling import Resampling, summarise
from medbench.report.units import fold_means, mean_roc
from medbench.report.vocab import metric_label

#: Metrics of the main table (all at the config's threshold except AUC).
SUMMARY_METRICS = ("auc", "accuracy", "sensitivity", "specificity", "f1", "balanced_accuracy")


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
    return Performance(
        per_unit=i.per_unit,
        performance=i.in_order(
            summarise(i.per_unit, i.inventory.status, SUMMARY_METRICS, i.samples)
        ),
        seed_spread=i.in_order(seed_spread(i.per_unit, METRIC_NAMES)),
        pooled=i.in_order(pooled_auc(i.predictions, i.boot)),
        roc=i.in_order(mean_roc(i.predictions)),
        readers_by_model=i.in_order(readers_by_model(i.predictions)),
    )


def tables(p: Performance) -> dict[str, pd.DataFrame]:
    return {
        "per_fold": p.per_unit,
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
    rows = []
    for r in p.performance.to_dict("records"):
        row = {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Runs": fruns(r),
            "Folds": r["n_folds"],
        }
        for m in SUMMARY_METRICS:
            cell = fcell(r, m)
            if r[f"{m}_n"] < r["n_folds"]:  # e.g. no AUC on a single-class test fold
                cell += f" (defined on {int(r[f'{m}_n'])} folds)"
            row[metric_label(m, capitalised=True)] = cell
        rows.append(row)
    w.table(
        pd.DataFrame(rows),
        "Mean ± std over folds [95% bootstrap CI]; threshold metrics at P(malignant) ≥ "
        f"{a.threshold:g}. Per-run values (with each split's size): table_per_fold.csv.",
        "performance",
    )
    w.image(
        "intervals",
        "Test AUC and accuracy per model and optimizer: mean over folds with its 95% bootstrap "
        "CI; dots are single folds.",
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
                "Pooled AUC [95% CI]": [
                    f"{fnum(r.auc)} {fci(r.ci_low, r.ci_high)}".strip() for r in pooled.itertuples()
                ],
            }
        ),
        "Out-of-fold AUC, conditional on the fitted fold models: every test fold's predictions "
        "pooled and ranked together (it also penalises calibration differences between the fold "
        "models, so it is another quantity than the mean of the folds' AUCs); percentile "
        f"bootstrap CI over images ({a.n_resamples} resamples, stratified by fold, site and label).",
        "pooled_auc",
    )


PART = Part("performance", analyse, tables, figures, sections)


def seed_spread(per_unit: pd.DataFrame, metrics) -> pd.DataFrame:
    """How much the seeds of one fold disagree, beside how much the folds do: per (model,
    optimizer, metric), the pooled within-fold std over seeds (root mean of the folds'
    variances, ddof=1) and the std over folds of the seed means. Empty with one seed per fold."""
    counts = per_unit.groupby(["model", "optimizer", "fold"]).size()
    if counts.empty or counts.max() < 2:
        return pd.DataFrame()
    folds = fold_means(per_unit, metrics)
    rows = []
    for (model, opt), part in per_unit.groupby(["model", "optimizer"], sort=False):
        mine = folds[(folds["model"] == model) & (folds["optimizer"] == opt)]
        for m in metrics:
            within = part.groupby("fold")[m].var(ddof=1).dropna()
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
    with the percentile interval of the stratified bootstrap over images. It is conditional on the
    fitted fold models and also penalises calibration differences between them, so it is another
    quantity than the mean of the folds' AUCs."""
    rows = []
    for (model, opt, s), part in preds.groupby(["model", "optimizer", "seed"], sort=False):
        w = np.vstack([np.ones(len(part)), boot.columns(model, part["id"])])
        aucs = resampled_metrics(part["label"], part["prob_malignant"], w)["auc"]
        low, high = stats.percentile_interval(aucs[1:], confidence)
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
            }
        )
    cols = ["model", "optimizer", "seed", "n_folds", "n_images", "auc", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=[*cols, "n_resamples", "n_valid_resamples", "bootstrap_seed"])


def intervals_figure(
    summary: pd.DataFrame,
    per_fold: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
    metrics: Sequence[str] = ("auc", "accuracy"),
) -> Figure:
    """Mean over folds and its 95% bootstrap CI per model × optimizer, each fold's value (mean over
    its seeds) as a faint dot; ``summary`` is :attr:`Performance.performance`, ``per_fold`` the
    inputs' ``fold_means``."""
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
                    lo, hi = r[f"{metric}_ci_low"], r[f"{metric}_ci_high"]
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
        fig.suptitle("Mean over folds with 95% bootstrap CI (dots: folds)")
        fig.legend(
            *axes[0, 0].get_legend_handles_labels(),
            loc="outside lower center",
            ncols=min(len(optimizers), 6),
            title="optimizer (hollow marker: incomplete, some folds failed)",
        )
    return fig
