"""Test-set results recomputed from each fold's ``predictions.csv``: the numbers of every table
and of the figures that show test results (mean ROC, reliability bins, paired folds, confusion).

A *unit* is one finished child run, i.e. one (model, optimizer, fold, seed); units with the same
(fold, seed) are paired across optimizers. Runs that did not finish are listed with their reason
and the rows they belong to are marked incomplete, never silently averaged over.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from medbench.data.folds import SMALL_FOLD_SHARE
from medbench.metrics import (
    METRIC_NAMES,
    binary_metrics,
    calibration_bins,
    describe,
    describe_by,
    quartiles,
    resampled_metrics,
)
from medbench.report import clinical, stats
from medbench.tracking.reader import param_column

#: Metrics of the main table (all at the config's threshold except AUC).
SUMMARY_METRICS = ("auc", "accuracy", "sensitivity", "specificity", "f1", "balanced_accuracy")
CALIBRATION_METRICS = ("ece", "brier")
SITE_METRICS = ("auc", "accuracy", "sensitivity", "specificity")
PAIRED_METRICS = ("auc", "accuracy")
#: Metrics summarised by median and quartiles over folds rather than a bootstrap interval: the
#: ECE estimate is biased upward on small test sets (each bin's |observed − predicted| gains from
#: noise), so its bootstrap distribution lies above the estimate and a percentile interval can
#: miss it altogether.
QUARTILE_METRICS = ("ece",)


@dataclass
class Inventory:
    """Which runs count, and what is missing or broken."""

    units: pd.DataFrame  # run_id, model, optimizer, fold, seed: finished runs with predictions
    status: pd.DataFrame  # per (model, optimizer): n_expected, n_finished, complete, note
    problems: pd.DataFrame  # model, optimizer, fold, seed, status, reason, run_id


_UNIT_COLS = ["run_id", "model", "optimizer", "fold", "seed"]


def _fold(value) -> int | str:
    """A fold label: an integer, or a site name under leave-one-site-out."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


_PROBLEM_COLS = ["model", "optimizer", "fold", "seed", "status", "reason", "run_id"]


def inventory(folds: pd.DataFrame, predictions: pd.DataFrame, models, optimizers) -> Inventory:
    """Sort child runs into usable units and problems; expected units are every (fold, seed) seen
    for the model under any optimizer, so a job that never started is missing too."""
    if folds.empty:
        empty = pd.DataFrame(columns=_UNIT_COLS)
        return Inventory(empty, pd.DataFrame(), pd.DataFrame(columns=_PROBLEM_COLS))
    runs = folds[folds["fold"].notna()].copy()
    runs["seed"] = runs["seed"].fillna(0)
    with_preds = set(predictions["run_id"]) if "run_id" in predictions else set()
    runs["usable"] = (runs["status"] == "FINISHED") & runs["run_id"].isin(with_preds)
    runs = runs.sort_values("end_time", na_position="first")
    # a rerun of the same job supersedes earlier attempts: keep the latest finished one
    usable = runs[runs["usable"]].drop_duplicates(
        ["model", "optimizer", "fold", "seed"], keep="last"
    )
    units = usable[_UNIT_COLS].copy()
    units["fold"] = units["fold"].map(_fold)
    units["seed"] = units["seed"].astype(int)
    units = units.sort_values(["model", "optimizer", "seed", "fold"]).reset_index(drop=True)

    done = set(zip(units["model"], units["optimizer"], units["fold"], units["seed"], strict=True))
    used = set(units["run_id"])
    problems = []
    for row in runs.itertuples(index=False):
        if row.run_id in used:
            continue
        key = (row.model, row.optimizer, _fold(row.fold), int(row.seed))
        if key in done:
            continue  # superseded by a finished rerun of the same job
        reason = row.failure if isinstance(row.failure, str) and row.failure else None
        if row.status == "FINISHED":
            reason = reason or "finished without a predictions.csv artifact"
        elif row.status == "RUNNING":
            reason = reason or "still running, or its process died without closing the run"
        problems.append([*key, row.status, reason or "no reason recorded", row.run_id])

    status_rows = []
    for model in models:
        mine = runs[runs["model"] == model]
        expected = {(_fold(f), int(s)) for f, s in zip(mine["fold"], mine["seed"], strict=True)}
        for opt in optimizers:
            have = {(k[2], k[3]) for k in done if k[0] == model and k[1] == opt}
            mine_opt = mine[mine["optimizer"] == opt]
            if mine_opt.empty and not have:
                continue
            for fold, seed in sorted(expected - have):
                if not any(
                    p[0] == model and p[1] == opt and p[2] == fold and p[3] == seed
                    for p in problems
                ):
                    problems.append(
                        [model, opt, fold, seed, "MISSING", "no run recorded for this job", None]
                    )
            n_exp, n_fin = len(expected), len(have)
            status_rows.append(
                {
                    "model": model,
                    "optimizer": opt,
                    "n_expected": n_exp,
                    "n_finished": n_fin,
                    "complete": n_fin == n_exp,
                    "note": "" if n_fin == n_exp else f"incomplete: {n_fin} of {n_exp} folds",
                }
            )
    problems_df = pd.DataFrame(problems, columns=_PROBLEM_COLS)
    problems_df = problems_df.sort_values(["model", "optimizer", "seed", "fold"]).reset_index(
        drop=True
    )
    return Inventory(units, pd.DataFrame(status_rows), problems_df)


def unit_predictions(predictions: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Predictions of the usable units only, with the unit's fold and seed from its run params."""
    if units.empty or predictions.empty:
        return pd.DataFrame(columns=[*_UNIT_COLS, "id", "site", "label", "prob_malignant"])
    preds = predictions.drop(columns=["model", "optimizer", "seed", "fold"], errors="ignore")
    out = units.merge(preds, on="run_id", how="inner")
    out["label"] = out["label"].astype(int)
    out["prob_malignant"] = out["prob_malignant"].astype(float)
    return out


def unit_metrics(preds: pd.DataFrame, threshold: float, folds: pd.DataFrame) -> pd.DataFrame:
    """One row per unit: every metric of :func:`medbench.metrics.binary_metrics` on its test fold,
    with the sizes of its split (``n_train``: images the model was fit on, validation excluded;
    ``n_val``; from the fold run's params, NaN when the run did not log them)."""
    sizes = pd.DataFrame({"run_id": folds.get("run_id", pd.Series(dtype=str))})
    for name in ("n_train", "n_val"):
        sizes[name] = pd.to_numeric(
            folds.get(param_column(name), pd.Series(math.nan, index=folds.index)), errors="coerce"
        )
    sizes = sizes.drop_duplicates("run_id").set_index("run_id")
    rows = []
    for keys, part in preds.groupby(_UNIT_COLS, sort=False):
        m = binary_metrics(part["label"].to_numpy(), part["prob_malignant"].to_numpy(), threshold)
        run_id = keys[0]
        rows.append(
            {
                **dict(zip(_UNIT_COLS, keys, strict=True)),
                "n_train": sizes.at[run_id, "n_train"] if run_id in sizes.index else math.nan,
                "n_val": sizes.at[run_id, "n_val"] if run_id in sizes.index else math.nan,
                "n_test": len(part),
                "n_malignant": int(part["label"].sum()),
                **m,
            }
        )
    cols = [*_UNIT_COLS, "n_train", "n_val", "n_test", "n_malignant", *METRIC_NAMES]
    return pd.DataFrame(rows, columns=cols).sort_values(["model", "optimizer", "seed", "fold"])


def mark_small_folds(per_unit: pd.DataFrame) -> pd.DataFrame:
    """``per_unit`` with a ``small_fold`` column: the fold's test part is far smaller than the
    median fold's (:data:`medbench.data.folds.SMALL_FOLD_SHARE`), e.g. a few images given a
    mistyped fold in the sheet; every mean and test still counts it as a full fold."""
    out = per_unit.copy()
    sizes = out.drop_duplicates("fold").set_index("fold")["n_test"]
    median = float(sizes.median()) if len(sizes) >= 3 else math.nan
    out["small_fold"] = (
        out["n_test"] < SMALL_FOLD_SHARE * median if math.isfinite(median) else False
    )
    return out


def fold_means(per_unit: pd.DataFrame, columns) -> pd.DataFrame:
    """Per (model, optimizer, fold): the mean over seeds of ``columns`` and the number of seeds.

    The fold is the unit of analysis: seeds of one fold share its test images, so they are
    averaged before any interval or test (a NaN of one seed, e.g. no AUC, gives NaN)."""
    keys = ["model", "optimizer", "fold"]
    if per_unit.empty:
        return pd.DataFrame(columns=[*keys, "n_seeds", *columns])
    grouped = per_unit.groupby(keys, sort=False)
    out = grouped[list(columns)].agg(lambda v: v.mean(skipna=False))
    out.insert(0, "n_seeds", grouped.size())
    return out.reset_index()


# -- intervals of bounded metrics ------------------------------------------------------------------


@dataclass(frozen=True)
class Resampling:
    """One stratified bootstrap of each model's test images, shared by every optimizer of the
    model (so that intervals of differences are paired) and every table of the report."""

    ids: dict[str, pd.Index]  # per model: its test image ids, the columns of ``counts``
    counts: dict[str, np.ndarray]  # per model: (n_resamples, n_images) draws
    n_resamples: int
    seed: int

    def columns(self, model: str, ids) -> np.ndarray:
        """The counts of these images of ``model``, in the given order."""
        return self.counts[model][:, self.ids[model].get_indexer(ids)]


def resampling(
    preds: pd.DataFrame,
    n_resamples: int = stats.BOOTSTRAP_RESAMPLES,
    seed: int = stats.BOOTSTRAP_SEED,
) -> Resampling:
    """Per model, :func:`~medbench.report.stats.stratified_counts` of its test images (sorted by
    id) stratified by fold, site and label: every resample keeps each fold's size, class balance
    and sites, as the cross-validation design fixes them."""
    ids, counts = {}, {}
    for model, part in preds.groupby("model", sort=True):
        images = part.drop_duplicates("id").sort_values("id")
        site = images["site"] if "site" in images else pd.Series("", index=images.index)
        strata = (
            images["fold"].astype(str)
            + "|"
            + site.fillna("").astype(str)
            + "|"
            + images["label"].astype(str)
        )
        ids[model] = pd.Index(images["id"])
        counts[model] = stats.stratified_counts(strata.to_numpy(), n_resamples, seed)
    return Resampling(ids, counts, n_resamples, seed)


def resampled_fold_mean(
    preds: pd.DataFrame, boot: Resampling, threshold: float, metrics
) -> dict[str, np.ndarray]:
    """Per resample, each metric's mean over folds of its mean over seeds (the estimate the tables
    show), for the predictions of one (model, optimizer) (optionally one site's images only)."""
    per_fold: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for (model, _), fold_part in preds.groupby(["model", "fold"], sort=True):
        seeds = []
        for _, unit in fold_part.groupby("seed", sort=True):
            w = boot.columns(model, unit["id"])
            seeds.append(resampled_metrics(unit["label"], unit["prob_malignant"], w, threshold))
        for m in metrics:
            per_fold[m].append(np.mean([s[m] for s in seeds], axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a metric undefined on every fold
        return {
            m: np.nanmean(np.vstack(v), axis=0) if v else np.full(boot.n_resamples, math.nan)
            for m, v in per_fold.items()
        }


def bounded_columns(
    values, samples: np.ndarray, name: str, confidence: float = 0.95
) -> dict[str, float]:
    """``name_mean``, ``name_std``, ``name_ci_low``, ``name_ci_high``, ``name_n`` of a metric in
    [0, 1]: mean and std over folds (:func:`medbench.metrics.describe`), percentile bootstrap
    interval of that mean over test images (inside [0, 1] like every resample)."""
    ci = describe(values, confidence)
    low, high = stats.percentile_interval(samples, confidence)
    return {
        f"{name}_mean": ci.mean,
        f"{name}_std": ci.std,
        f"{name}_ci_low": low,
        f"{name}_ci_high": high,
        f"{name}_n": ci.n,
    }


def resampled_arms(
    preds: pd.DataFrame, status: pd.DataFrame, boot: Resampling, threshold: float, metrics
) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """:func:`resampled_fold_mean` of every (model, optimizer) of ``status``, computed once for
    all the tables that draw on it (the bootstrap is the analysis's costliest step)."""
    out = {}
    for st in status.itertuples(index=False):
        mine = preds[(preds["model"] == st.model) & (preds["optimizer"] == st.optimizer)]
        out[st.model, st.optimizer] = (
            resampled_fold_mean(mine, boot, threshold, metrics) if len(mine) else {}
        )
    return out


def summarise(
    per_unit: pd.DataFrame,
    status: pd.DataFrame,
    metrics,
    samples: dict[tuple[str, str], dict[str, np.ndarray]],
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per (model, optimizer): mean and std over folds (seeds averaged within each fold) and a
    percentile bootstrap interval over test images of each metric (:func:`bounded_columns`,
    from the arm's resamples in ``samples``, see :func:`resampled_arms`); metrics of
    :data:`QUARTILE_METRICS` get their median and quartiles over folds instead of the interval
    (``_median``, ``_q25``, ``_q75``)."""
    folds = fold_means(per_unit, metrics)
    rows = []
    for st in status.itertuples(index=False):
        part = folds[(folds["model"] == st.model) & (folds["optimizer"] == st.optimizer)]
        arm = samples.get((st.model, st.optimizer), {})
        row = {
            "model": st.model,
            "optimizer": st.optimizer,
            "n_finished": st.n_finished,
            "n_expected": st.n_expected,
            "complete": st.complete,
            "n_folds": len(part),
            "n_seeds": int(part["n_seeds"].max()) if len(part) else 0,
        }
        for m in metrics:
            if m in QUARTILE_METRICS:
                ci, q = describe(part[m]), quartiles(part[m])
                row.update({f"{m}_mean": ci.mean, f"{m}_std": ci.std, f"{m}_median": q.median})
                row.update({f"{m}_q25": q.q25, f"{m}_q75": q.q75, f"{m}_n": q.n})
            else:
                row.update(bounded_columns(part[m], arm.get(m, np.array([])), m, confidence))
        rows.append(row)
    return pd.DataFrame(rows)


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


# -- comparisons between optimizers ----------------------------------------------------------------


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


def confusion(preds: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Test confusion counts per (model, optimizer), pooled over every fold and seed."""
    rows = []
    for (model, opt), part in preds.groupby(["model", "optimizer"], sort=False):
        y = part["label"].to_numpy().astype(int)
        c = (part["prob_malignant"].to_numpy() >= threshold).astype(int)
        point = clinical.operating_point(y, c)
        rows.append(
            {
                "model": model,
                "optimizer": opt,
                "threshold": threshold,
                "tn": point.tn,
                "fp": point.fp,
                "fn": point.fn,
                "tp": point.tp,
            }
        )
    return pd.DataFrame(rows, columns=["model", "optimizer", "threshold", "tn", "fp", "fn", "tp"])


def confusion_shares(confusion: pd.DataFrame) -> pd.DataFrame:
    """The confusion counts with each cell's share of its true class (the matrix's row): ``tn`` and
    ``fp`` over the benign images, ``fn`` and ``tp`` over the malignant ones; 0 for an empty row."""
    out = confusion.copy()
    benign = (out["tn"] + out["fp"]).to_numpy(dtype=float)
    malignant = (out["fn"] + out["tp"]).to_numpy(dtype=float)
    for cell, total in (("tn", benign), ("fp", benign), ("fn", malignant), ("tp", malignant)):
        count = out[cell].to_numpy(dtype=float)
        out[f"{cell}_share"] = np.divide(count, total, out=np.zeros_like(count), where=total > 0)
    return out


#: Equal-width bins of P(malignant) of the reliability diagrams (those of the ECE).
RELIABILITY_BINS = 10


def reliability(labels, probs, n_bins: int = RELIABILITY_BINS) -> pd.DataFrame:
    """Equal-width bins of P(malignant), the bins of ``expected_calibration_error``."""
    rows = [
        {
            "bin": b,
            "lower": b / n_bins,
            "upper": (b + 1) / n_bins,
            "n": n,
            "mean_predicted": predicted,
            "observed_rate": observed,
        }
        for b, (n, predicted, observed) in enumerate(calibration_bins(labels, probs, n_bins))
    ]
    return pd.DataFrame(rows)


def reliability_bins(preds: pd.DataFrame, n_bins: int = RELIABILITY_BINS) -> pd.DataFrame:
    """:func:`reliability` per (model, optimizer), test predictions pooled over folds."""
    frames = []
    for (model, opt), part in preds.groupby(["model", "optimizer"], sort=False):
        bins = reliability(part["label"], part["prob_malignant"], n_bins)
        frames.append(bins.assign(model=model, optimizer=opt))
    cols = ["model", "optimizer", "bin", "lower", "upper", "n", "mean_predicted", "observed_rate"]
    return pd.concat(frames)[cols].reset_index(drop=True) if frames else pd.DataFrame(columns=cols)


#: False positive rates at which the folds' ROC curves are averaged.
ROC_GRID = np.linspace(0, 1, 201)


def mean_roc(preds: pd.DataFrame, grid: np.ndarray = ROC_GRID) -> pd.DataFrame:
    """Per (model, optimizer) and false positive rate of ``grid``: mean, std, quartiles and number
    of the folds' true positive rates (each unit's test ROC interpolated on the grid, starting at
    0, then averaged over the seeds of its fold). Units whose test fold holds a single class have
    no ROC and are left out."""
    frames = []
    keys = ["model", "optimizer", "fold", "run_id"]
    for (model, opt, fold, _), part in preds.groupby(keys, sort=False):
        labels = part["label"].to_numpy()
        if len(np.unique(labels)) < 2:
            continue
        fpr, tpr, _ = roc_curve(labels, part["prob_malignant"].to_numpy())
        tpr_grid = np.interp(grid, fpr, tpr)
        tpr_grid[0] = 0.0
        frames.append(
            pd.DataFrame(
                {"model": model, "optimizer": opt, "fold": fold, "fpr": grid, "tpr": tpr_grid}
            )
        )
    cols = ["model", "optimizer", "fold", "fpr", "tpr"]
    curves = pd.concat(frames) if frames else pd.DataFrame(columns=cols)
    per_fold = curves.groupby(cols[:4], sort=False, as_index=False)["tpr"].mean()
    out = describe_by(per_fold, ["model", "optimizer", "fpr"], "tpr")
    return out.rename(
        columns={"mean": "tpr_mean", "std": "tpr_std", "q25": "tpr_q25", "q75": "tpr_q75"}
    )


def sites(
    preds: pd.DataFrame, threshold: float, boot: Resampling, confidence: float = 0.95
) -> pd.DataFrame:
    """Per (model, optimizer, site): test metrics of each unit's images from that site, averaged
    over the seeds of each fold; mean and std over folds and a bootstrap interval
    (:func:`bounded_columns`). Images with no site are left out."""
    if "site" not in preds:
        return pd.DataFrame()
    known = preds[preds["site"].notna() & (preds["site"].astype(str).str.strip() != "")]
    rows = []
    for (model, opt, site), part in known.groupby(["model", "optimizer", "site"], sort=False):
        per = []
        for (fold, seed), unit in part.groupby(["fold", "seed"]):
            m = binary_metrics(
                unit["label"].to_numpy(), unit["prob_malignant"].to_numpy(), threshold
            )
            per.append({"model": model, "optimizer": opt, "fold": fold, "seed": seed, **m})
        folds = fold_means(pd.DataFrame(per), SITE_METRICS)
        samples = resampled_fold_mean(part, boot, threshold, SITE_METRICS)
        row = {
            "model": model,
            "optimizer": opt,
            "site": site,
            "n_folds": len(folds),
            "n_units": len(per),
            "n_images": part["id"].nunique(),
        }
        for m in SITE_METRICS:
            row.update(bounded_columns(folds[m], samples[m], m, confidence))
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.sort_values(["model", "optimizer", "site"]).reset_index(drop=True) if rows else out


# -- readers -----------------------------------------------------------------------------------


def images(preds: pd.DataFrame) -> pd.DataFrame:
    """One row per test image (the readers' calls do not depend on the model)."""
    cols = [c for c in ("id", "site", "label", *clinical.READERS) if c in preds]
    return preds[cols].drop_duplicates("id").sort_values("id").reset_index(drop=True)


def readers_table(imgs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per reader: images, calls used, missing and stray values left out, operating point with
    Wilson intervals of its sensitivity and specificity."""
    rows = []
    for reader in clinical.READERS:
        values = imgs[reader].tolist() if reader in imgs else [None] * len(imgs)
        calls = clinical.reader_calls(values)
        valid = calls.valid
        point = clinical.operating_point(
            imgs["label"].to_numpy()[valid], calls.positive[valid].astype(int)
        )
        sens_ci = stats.wilson_interval(point.tp, point.tp + point.fn, confidence)
        spec_ci = stats.wilson_interval(point.tn, point.tn + point.fp, confidence)
        rows.append(
            {
                "reader": reader,
                "n_images": len(imgs),
                "n_used": int(valid.sum()),
                "n_missing": calls.n_missing,
                "n_stray": calls.n_stray,
                "sensitivity": point.sensitivity,
                "sensitivity_ci_low": sens_ci[0],
                "sensitivity_ci_high": sens_ci[1],
                "specificity": point.specificity,
                "specificity_ci_low": spec_ci[0],
                "specificity_ci_high": spec_ci[1],
                "tp": point.tp,
                "fn": point.fn,
                "tn": point.tn,
                "fp": point.fp,
            }
        )
    return pd.DataFrame(rows)


def readers_by_model(preds: pd.DataFrame) -> pd.DataFrame:
    """:func:`readers_table` on the test images of each model (the points of its ROC figure)."""
    frames = []
    for model, part in preds.groupby("model", sort=False):
        table = readers_table(images(part))
        table.insert(0, "model", model)
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def agreement_table(imgs: pd.DataFrame) -> pd.DataFrame:
    """Agreement between the readers on the images both assessed: Cohen's kappa on the calls, on
    the categories (unweighted) and on the ordinal categories with linear and quadratic weights,
    each with a percentile bootstrap interval over those images."""
    if not all(r in imgs for r in clinical.READERS):
        return pd.DataFrame()
    ag = clinical.reader_agreement(
        imgs[clinical.READERS[0]].tolist(), imgs[clinical.READERS[1]].tolist()
    )
    row = {
        "n_images": len(imgs),
        "n_both_assessed": ag.n,
        "percent_agreement_calls": ag.percent_agreement,
    }
    for name in clinical.KAPPAS:
        row.update(
            {name: ag.kappa[name], f"{name}_ci_low": ag.low[name], f"{name}_ci_high": ag.high[name]}
        )
    return pd.DataFrame([row])


def model_vs_readers(
    preds: pd.DataFrame, boot: Resampling, confidence: float = 0.95
) -> pd.DataFrame:
    """Per (model, optimizer, seed, reader), on the pooled test images the reader assessed: the
    reader's operating point, the model's sensitivity at the reader's specificity (with a
    percentile interval of the stratified bootstrap over those images, the reader's specificity
    recomputed in each resample) and its specificity at the reader's sensitivity (best threshold
    on the pooled ROC)."""
    rows = []
    for (model, opt, s), part in preds.groupby(["model", "optimizer", "seed"], sort=False):
        for reader in clinical.READERS:
            if reader not in part:
                continue
            calls = clinical.reader_calls(part[reader].tolist())
            valid = calls.valid
            if not valid.any():
                continue
            y = part["label"].to_numpy()[valid]
            p = part["prob_malignant"].to_numpy()[valid]
            c = calls.positive[valid].astype(int)
            point = clinical.operating_point(y, c)
            sens, thr_sens = clinical.sensitivity_at_specificity(y, p, point.specificity)
            spec, thr_spec = clinical.specificity_at_sensitivity(y, p, point.sensitivity)
            w = boot.columns(model, part["id"].to_numpy()[valid])
            low, high = stats.percentile_interval(
                clinical.sensitivity_at_specificity_resampled(y, p, c, w), confidence
            )
            rows.append(
                {
                    "model": model,
                    "optimizer": opt,
                    "seed": s,
                    "reader": reader,
                    "n_images": int(valid.sum()),
                    "n_left_out": int((~valid).sum()),
                    "reader_sensitivity": point.sensitivity,
                    "reader_specificity": point.specificity,
                    "model_sensitivity_at_reader_specificity": sens,
                    "model_sensitivity_at_reader_specificity_ci_low": low,
                    "model_sensitivity_at_reader_specificity_ci_high": high,
                    "threshold_at_reader_specificity": thr_sens,
                    "model_specificity_at_reader_sensitivity": spec,
                    "threshold_at_reader_sensitivity": thr_spec,
                }
            )
    return pd.DataFrame(rows)


# -- the verdict ---------------------------------------------------------------------------------

#: The optimizer every other one is compared with in the verdict, when it ran.
BASELINE = "adam"


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
