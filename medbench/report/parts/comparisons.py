"""Paired comparisons between optimizers: per model, every later optimizer (B) against every
earlier one (A) over the folds both finished, fold by fold (the difference B − A), with the
corrected resampled t-test (the primary test), Holm's adjustment, the Bayesian correlated t-test
and the paired bootstrap of the pooled out-of-fold AUC; the paired-folds and difference figures.

External validation compares optimizers on each external dataset with the same tests
(:func:`fold_differences`, :func:`paired`, :func:`paired_rows`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.lines
import matplotlib.patches
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medbench.metrics import describe, resampled_metrics
from medbench.report import document as d
from medbench.report import stats
from medbench.report.figures import FigureFiles, rows_where, save, styled, subplots
from medbench.report.formatting import fnum, fp, fpercent, fsigned
from medbench.report.part import Analysis, Part, Writer
from medbench.report.resampling import Resampling
from medbench.report.units import fold_means
from medbench.report.vocab import metric_label

PAIRED_METRICS = ("auc", "accuracy")


@dataclass
class Comparisons:
    """The comparisons between optimizers."""

    fold_differences: pd.DataFrame  # B − A per fold, what the comparisons test
    paired: pd.DataFrame  # the tests, one row per (model, metric, pair)
    paired_pooled: pd.DataFrame  # paired bootstrap of the out-of-fold AUC
    paired_folds: pd.DataFrame  # wide per-fold AUC of the paired plot


def analyse(a: Analysis) -> Comparisons:
    i = a.inputs
    diffs = fold_differences(i.per_unit, i.models, i.optimizers)
    return Comparisons(
        fold_differences=i.in_order(diffs),
        paired=i.in_order(paired(i.per_unit, diffs, i.models, i.optimizers, i.rope)),
        paired_pooled=i.in_order(paired_pooled(i.predictions, i.boot, i.models, i.optimizers)),
        paired_folds=i.in_order(paired_folds(i.per_unit, i.models, i.optimizers)),
    )


def tables(c: Comparisons) -> dict[str, pd.DataFrame]:
    return {
        "fold_differences": c.fold_differences,
        "paired_tests": c.paired,
        "paired_pooled_auc": c.paired_pooled,
    }


def figures(c: Comparisons, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    """Each fold's AUC per optimizer (``paired``) and the differences B − A (``differences``)."""
    i = a.inputs
    if i.per_unit.empty:
        return {}
    models, folds = i.tested_models, i.folds
    fig = paired_folds_figure(c.paired_folds, models, i.tested_optimizers, i.colours, folds)
    made = {"paired": save(fig, out, "fig_paired_folds_auc")}
    if not c.paired.empty:
        metrics = list(dict.fromkeys(c.paired["metric"]))
        fig = differences_figure(c.fold_differences, c.paired, models, metrics, i.rope, folds)
        made["differences"] = save(fig, out, "fig_differences")
    return made


def sections(c: Comparisons, w: Writer) -> None:
    a = w.inputs
    if a.per_unit.empty:
        return
    w.doc.add(d.Heading("Paired comparisons between optimizers"))
    if c.paired.empty:
        w.doc.add(d.Paragraph("Only one optimizer has results: nothing to compare."))
        return
    w.table(
        paired_rows(c.paired),
        "Differences B − A over the folds both optimizers finished (seeds averaged within each "
        "fold), with the interval and p of the corrected resampled t-test; Holm's adjustment over "
        "all comparisons of one metric in this report; posterior probabilities of the Bayesian "
        f"correlated t-test with equivalence within ±{a.rope:g}. The uncorrected paired t-test "
        "and the Wilcoxon test are in the CSV; each fold's difference in table_fold_differences.csv.",
        "paired_tests",
    )
    w.image(
        "paired",
        "Test AUC of each fold per optimizer (mean over its seeds); a line, a marker and a label "
        "on each side per fold (same initial weights and batches under every optimizer).",
    )
    if not c.paired_pooled.empty:
        pp = c.paired_pooled
        w.table(
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
            "paired_pooled_auc",
        )


def paired_rows(paired: pd.DataFrame) -> pd.DataFrame:
    """The table of paired comparisons (:func:`paired`): the effect with its corrected
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


PART = Part("comparisons", analyse, tables, figures, sections)


# -- the numbers -------------------------------------------------------------------------------


def _pairs(optimizers) -> list[tuple[str, str]]:
    """Every later optimizer (B) against every earlier one (A), in the given order."""
    return [(a, b) for i, a in enumerate(optimizers) for b in optimizers[i + 1 :]]


def fold_differences(
    per_unit: pd.DataFrame, models, optimizers, metrics=PAIRED_METRICS
) -> pd.DataFrame:
    """B − A per fold, per model, metric and pair of optimizers: each side averaged over the seeds
    both finished in that fold, and the fold's n_test / n_train (mean over those runs; without a
    logged ``n_train``, the images outside the test fold stand in, validation included)."""
    rows = []
    for model in models:
        mine = per_unit[per_unit["model"] == model]
        n_images = mine.drop_duplicates(["fold", "seed"]).groupby("seed")["n_test"].sum()
        for opt_a, opt_b in _pairs(optimizers):
            a = mine[mine["optimizer"] == opt_a].set_index(["fold", "seed"])
            b = mine[mine["optimizer"] == opt_b].set_index(["fold", "seed"])
            if a.empty or b.empty:
                continue
            common = a.index.intersection(b.index).sort_values()
            for fold in dict.fromkeys(common.get_level_values(0)):
                keys = [k for k in common if k[0] == fold]
                both = pd.concat([a.loc[keys], b.loc[keys]])
                fallback = np.array([n_images.get(s, math.nan) for _, s in both.index])
                n_train = both["n_train"].fillna(
                    pd.Series(fallback - both["n_test"].to_numpy(), index=both.index)
                )
                ratio = float((both["n_test"] / n_train).mean())
                for m in metrics:
                    value_a = float(a.loc[keys, m].mean(skipna=False))
                    value_b = float(b.loc[keys, m].mean(skipna=False))
                    rows.append(
                        {
                            "model": model,
                            "metric": m,
                            "optimizer_a": opt_a,
                            "optimizer_b": opt_b,
                            "fold": fold,
                            "n_seeds": len(keys),
                            "value_a": value_a,
                            "value_b": value_b,
                            "diff": value_b - value_a,
                            "test_train_ratio": ratio,
                        }
                    )
    cols = ["model", "metric", "optimizer_a", "optimizer_b", "fold", "n_seeds", "value_a"]
    return pd.DataFrame(rows, columns=[*cols, "value_b", "diff", "test_train_ratio"])


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
    folds both finished (``diffs``, :func:`fold_differences`; the difference is B − A).

    Per row: the classical paired t-test and Wilcoxon over folds; the corrected resampled t-test
    (the primary test) with its interval; Holm's adjustment of its p over every comparison of the
    same metric in the report (all models: ``family_size``); the Bayesian correlated t-test with
    the region of practical equivalence ``[-rope, rope]``."""
    rows = []
    for model in models:
        mine = per_unit[per_unit["model"] == model]
        for opt_a, opt_b in _pairs(optimizers):
            a = mine[mine["optimizer"] == opt_a].set_index(["fold", "seed"])
            b = mine[mine["optimizer"] == opt_b].set_index(["fold", "seed"])
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
                        "diff_ci_low": res.ci_low,
                        "diff_ci_high": res.ci_high,
                        "t_statistic": res.t_statistic,
                        "t_p": res.t_p,
                        "wilcoxon_statistic": res.wilcoxon_statistic,
                        "wilcoxon_p": res.wilcoxon_p,
                        "wilcoxon_min_p": res.wilcoxon_min_p,
                        "caveat": res.caveat,
                        "n_folds": nb.n_folds,
                        "test_train_ratio": ratio,
                        "corrected_t": nb.t_statistic,
                        "corrected_t_p": nb.p,
                        "corrected_ci_low": nb.ci_low,
                        "corrected_ci_high": nb.ci_high,
                        "p_holm": math.nan,
                        "family_size": 0,
                        "rope": rope,
                        "p_a_better": bayes.p_a_better,
                        "p_equivalent": bayes.p_equivalent,
                        "p_b_better": bayes.p_b_better,
                    }
                )
    out = pd.DataFrame(rows)
    for _, family in out.groupby("metric", sort=False) if rows else ():
        p = family["corrected_t_p"].to_numpy()
        out.loc[family.index, "p_holm"] = stats.holm(p)
        out.loc[family.index, "family_size"] = int(np.isfinite(p).sum())
    return out


def paired_pooled(
    preds: pd.DataFrame, boot: Resampling, models, optimizers, confidence: float = 0.95
) -> pd.DataFrame:
    """Paired bootstrap of the out-of-fold AUC between optimizers: per model and pair, the pooled
    AUC of each optimizer averaged over the seeds both finished, on the images both predicted, and
    B − A with its percentile interval; both optimizers are scored on the same resamples of images
    (stratified by fold, site and label). ``p_bootstrap`` is twice the smaller share of resamples
    on either side of 0 (capped at 1)."""
    rows = []
    for model in models:
        mine = preds[preds["model"] == model]
        for opt_a, opt_b in _pairs(optimizers):
            a, b = mine[mine["optimizer"] == opt_a], mine[mine["optimizer"] == opt_b]
            seeds = sorted(set(a["seed"]) & set(b["seed"]))
            if not seeds:
                continue
            scores: dict[str, list[np.ndarray]] = {"a": [], "b": []}
            images = set()
            for s in seeds:
                pa, pb = a[a["seed"] == s], b[b["seed"] == s]
                ids = sorted(set(pa["id"]) & set(pb["id"]))
                images.update(ids)
                w = np.vstack([np.ones(len(ids)), boot.columns(model, ids)])
                for side, part in (("a", pa), ("b", pb)):
                    part = part.set_index("id").loc[ids]
                    scores[side].append(
                        resampled_metrics(part["label"], part["prob_malignant"], w)["auc"]
                    )
            mean_a, mean_b = np.mean(scores["a"], axis=0), np.mean(scores["b"], axis=0)
            diff = mean_b - mean_a
            low, high = stats.percentile_interval(diff[1:], confidence)
            finite = diff[1:][np.isfinite(diff[1:])]
            share = min((finite <= 0).mean(), (finite >= 0).mean()) if len(finite) else math.nan
            rows.append(
                {
                    "model": model,
                    "optimizer_a": opt_a,
                    "optimizer_b": opt_b,
                    "n_seeds": len(seeds),
                    "n_images": len(images),
                    "auc_a": float(mean_a[0]),
                    "auc_b": float(mean_b[0]),
                    "auc_diff": float(diff[0]),
                    "ci_low": low,
                    "ci_high": high,
                    "p_bootstrap": min(1.0, 2 * share),
                    "n_resamples": boot.n_resamples,
                    "bootstrap_seed": boot.seed,
                }
            )
    return pd.DataFrame(rows)


def paired_folds(per_unit: pd.DataFrame, models, optimizers, metric: str = "auc") -> pd.DataFrame:
    """The paired plot's table: per model, one row per fold and one column per optimizer holding
    that fold's ``metric`` (mean over its seeds); ``label`` names the row (``f{fold}``). Rows and
    optimizers without any defined value are left out."""
    frames = []
    folds = fold_means(per_unit, [metric])
    for model in models:
        mine = folds[folds["model"] == model]
        if mine.empty:
            continue
        wide = mine.pivot_table(index="fold", columns="optimizer", values=metric, aggfunc="first")
        wide = wide[[o for o in optimizers if o in wide.columns]].reset_index()
        wide.insert(0, "model", model)
        wide.insert(2, "label", [f"f{fold}" for fold in wide["fold"]])
        frames.append(wide)
    if not frames:
        return pd.DataFrame(columns=["model", "fold", "label"])
    return pd.concat(frames, ignore_index=True).rename_axis(columns=None)


# -- the figures -------------------------------------------------------------------------------

#: One marker per fold (in fold order), the same in the paired plot and the difference plot.
FOLD_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
FOLD_GREYS = ("#222222", "#555555", "#888888")


def fold_marker(i: int) -> str:
    return FOLD_MARKERS[i % len(FOLD_MARKERS)]


def _label_points(ax, points: list[tuple[float, float, str, str]], dx: float) -> None:
    """Label points ``(x, y, text, colour)`` at ``x + dx`` (right-aligned when ``dx`` < 0), the
    labels of one column at least 5% of the final y-range apart, so coinciding folds stay
    readable. Call it after everything else is drawn."""
    low, high = ax.get_ylim()
    for x in dict.fromkeys(p[0] for p in points):
        column = [p for p in points if p[0] == x and math.isfinite(p[1])]
        heights = _spread_labels([p[1] for p in column], 0.05 * (high - low))
        for (_, y, text, colour), y_label in zip(column, heights, strict=True):
            ax.annotate(
                text,
                (x, y),
                xytext=(x + dx, y_label),
                textcoords="data",
                fontsize=7,
                va="center",
                ha="right" if dx < 0 else "left",
                color=colour,
            )


def _spread_labels(ys: Sequence[float], gap: float) -> np.ndarray:
    """Label heights near ``ys`` at least ``gap`` apart (coinciding folds stay readable)."""
    ys = np.asarray(ys, dtype=float)
    order = np.argsort(ys, kind="stable")
    placed = ys[order].copy()
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    placed -= (placed - ys[order]).mean()  # keep them centred on the points
    out = np.empty_like(placed)
    out[order] = placed
    return out


def paired_folds_figure(
    wide: pd.DataFrame,
    models: Sequence[str],
    optimizers: Sequence[str],
    colours: Mapping[str, str],
    folds: Sequence,
    metric: str = "auc",
) -> Figure:
    """Each fold's value per optimizer (mean over its seeds), one line per fold across optimizers;
    each fold keeps its own marker (its place in ``folds``) and line style and is labelled on both
    sides, so that folds with equal values stay traceable. ``wide`` is
    :attr:`Comparisons.paired_folds`."""
    fig, axes = subplots(1, len(models), max(4.4, 1.6 + 1.1 * len(optimizers)) * len(models), 3.8)
    with styled():
        for ax, model in zip(axes[0], models, strict=True):
            mine = rows_where(wide, model=model).reset_index(drop=True)
            cols = [o for o in optimizers if o in mine and mine[o].notna().any()]
            values = mine[cols].astype(float).to_numpy() if cols else np.empty((len(mine), 0))
            place = [list(folds).index(f) for f in mine["fold"]]
            for i, k in enumerate(place):
                grey = FOLD_GREYS[k % len(FOLD_GREYS)]
                dash = ("-", "--", ":", "-.")[(k // len(FOLD_GREYS)) % 4]
                ax.plot(range(len(cols)), values[i], color=grey, lw=1.0, ls=dash, alpha=0.9)
                for j, opt in enumerate(cols):
                    ax.plot(
                        j,
                        values[i, j],
                        ls="none",
                        marker=fold_marker(k),
                        ms=6.5,
                        color=colours[opt],
                        mec=grey,
                        mew=0.8,
                        zorder=3,
                    )
            if cols:
                for j, dx in ((0, -0.12), (len(cols) - 1, 0.12)):
                    labels = [
                        (j, values[i, j], mine.at[i, "label"], FOLD_GREYS[k % len(FOLD_GREYS)])
                        for i, k in enumerate(place)
                    ]
                    _label_points(ax, labels, dx)
            ax.set_xticks(range(len(cols)), cols)
            ax.set_xlim(-0.8, len(cols) - 0.2)
            ax.set_xlabel("Optimizer")
            ax.set_ylabel(f"Test {metric_label(metric)} per fold (mean over seeds)")
            ax.set_title(f"{model}: paired folds")
    return fig


def differences_figure(
    diffs: pd.DataFrame,
    tests: pd.DataFrame,
    models: Sequence[str],
    metrics: Sequence[str],
    rope: float,
    folds: Sequence,
) -> Figure:
    """The estimation plot of the comparisons: per model (rows), metric (columns) and pair, each
    fold's difference B − A (labelled, with the fold's marker of the paired plot: its place in
    ``folds``), their mean and its corrected 95% interval (the one the test uses), zero and the
    region of practical equivalence. ``diffs`` and ``tests`` are :class:`Comparisons`'
    ``fold_differences`` and ``paired``."""
    pairs = list(dict.fromkeys(zip(tests["optimizer_a"], tests["optimizer_b"], strict=True)))
    fig, axes = subplots(
        len(models),
        len(metrics),
        max(4.2, 1.2 + 1.3 * len(pairs)) * len(metrics),
        3.2 * len(models) + 0.5,
    )
    with styled():
        for i, model in enumerate(models):
            for k, metric in enumerate(metrics):
                ax = axes[i, k]
                ax.axhspan(-rope, rope, color="#dddddd", alpha=0.6, lw=0, label=f"ROPE ±{rope:g}")
                ax.axhline(0, color="#777777", lw=0.8)
                labels: list[tuple[float, float, str, str]] = []
                for x, (a, b) in enumerate(pairs):
                    d = rows_where(diffs, model=model, metric=metric, optimizer_a=a, optimizer_b=b)
                    t = rows_where(tests, model=model, metric=metric, optimizer_a=a, optimizer_b=b)
                    if t.empty:
                        continue
                    for _, r in d.iterrows():
                        f = list(folds).index(r["fold"])
                        grey = FOLD_GREYS[f % len(FOLD_GREYS)]
                        ax.plot(
                            x - 0.12,
                            r["diff"],
                            ls="none",
                            marker=fold_marker(f),
                            ms=5,
                            mfc="none",
                            color=grey,
                        )
                        labels.append((x - 0.12, r["diff"], f"f{r['fold']}", grey))
                    r = t.iloc[0]
                    lo, hi = r["corrected_ci_low"], r["corrected_ci_high"]
                    yerr = None
                    if math.isfinite(lo) and math.isfinite(hi):
                        yerr = [[r["mean_diff"] - lo], [hi - r["mean_diff"]]]
                    ax.errorbar(
                        x + 0.12,
                        r["mean_diff"],
                        yerr=yerr,
                        fmt="D",
                        ms=6,
                        capsize=4,
                        color="black",
                        zorder=3,
                    )
                    ax.annotate(
                        f"p Holm {fp(r['p_holm'])}",
                        (x, 1.0),
                        xycoords=("data", "axes fraction"),
                        ha="center",
                        va="top",
                        fontsize=7,
                        color="#444444",
                    )
                ax.set_xticks(range(len(pairs)), [f"{b} − {a}" for a, b in pairs])
                ax.set_xlim(-0.6, len(pairs) - 0.4)
                _label_points(ax, labels, -0.1)
                ax.set_ylabel(f"Difference in test {metric_label(metric)}")
                ax.set_title(f"{model}: {metric_label(metric)}, B − A per fold", pad=12)
        handles = [
            matplotlib.lines.Line2D(
                [],
                [],
                ls="none",
                marker="o",
                mfc="none",
                color="#444444",
                label="a fold (marker per fold)",
            ),
            matplotlib.lines.Line2D(
                [], [], ls="none", marker="D", color="black", label="mean, corrected 95% CI"
            ),
            matplotlib.patches.Patch(
                color="#dddddd", label=f"region of practical equivalence ±{rope:g}"
            ),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig
