"""Test-set results recomputed from each fold's ``predictions.csv``: the numbers of every table
and of the figures that show test results (mean ROC, reliability bins, paired folds, confusion).

A *unit* is one finished child run, i.e. one (model, optimizer, fold, seed); units with the same
(fold, seed) are paired across optimizers. Runs that did not finish are listed with their reason
and the rows they belong to are marked incomplete, never silently averaged over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from medbench.metrics import METRIC_NAMES, binary_metrics, calibration_bins, describe, describe_by
from medbench.report import clinical, stats

#: Metrics of the main table (all at the config's threshold except AUC).
SUMMARY_METRICS = ("auc", "accuracy", "sensitivity", "specificity", "f1", "balanced_accuracy")
CALIBRATION_METRICS = ("ece", "brier")
SITE_METRICS = ("auc", "accuracy", "sensitivity", "specificity")
PAIRED_METRICS = ("auc", "accuracy")


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


def unit_metrics(preds: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One row per unit: every metric of :func:`medbench.metrics.binary_metrics` on its test fold."""
    rows = []
    for keys, part in preds.groupby(_UNIT_COLS, sort=False):
        m = binary_metrics(part["label"].to_numpy(), part["prob_malignant"].to_numpy(), threshold)
        rows.append(
            {
                **dict(zip(_UNIT_COLS, keys, strict=True)),
                "n_test": len(part),
                "n_malignant": int(part["label"].sum()),
                **m,
            }
        )
    cols = [*_UNIT_COLS, "n_test", "n_malignant", *METRIC_NAMES]
    return pd.DataFrame(rows, columns=cols).sort_values(["model", "optimizer", "seed", "fold"])


def summarise(
    per_unit: pd.DataFrame, status: pd.DataFrame, metrics, confidence: float = 0.95
) -> pd.DataFrame:
    """Per (model, optimizer): mean, std, t CI and n of each metric over units."""
    rows = []
    for st in status.itertuples(index=False):
        part = per_unit[(per_unit["model"] == st.model) & (per_unit["optimizer"] == st.optimizer)]
        row = {
            "model": st.model,
            "optimizer": st.optimizer,
            "n_finished": st.n_finished,
            "n_expected": st.n_expected,
            "complete": st.complete,
        }
        for m in metrics:
            row.update(stats.interval_columns(part[m], m, confidence))
        rows.append(row)
    return pd.DataFrame(rows)


def pooled_auc(
    preds: pd.DataFrame,
    n_resamples: int = stats.BOOTSTRAP_RESAMPLES,
    seed: int = stats.BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """Out-of-fold AUC per (model, optimizer, seed): every test fold pooled, bootstrap CI."""
    rows = []
    for (model, opt, s), part in preds.groupby(["model", "optimizer", "seed"], sort=False):
        part = part.sort_values(["fold", "id"], kind="stable")
        ci = stats.bootstrap_auc(
            part["label"].to_numpy(), part["prob_malignant"].to_numpy(), n_resamples, seed
        )
        rows.append(
            {
                "model": model,
                "optimizer": opt,
                "seed": s,
                "n_folds": part["fold"].nunique(),
                "n_images": len(part),
                "auc": ci.estimate,
                "ci_low": ci.low,
                "ci_high": ci.high,
                "n_resamples": ci.n_resamples,
                "n_valid_resamples": ci.n_valid,
                "bootstrap_seed": ci.seed,
            }
        )
    cols = ["model", "optimizer", "seed", "n_folds", "n_images", "auc", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=[*cols, "n_resamples", "n_valid_resamples", "bootstrap_seed"])


def paired(
    per_unit: pd.DataFrame, models, optimizers, metrics=PAIRED_METRICS, confidence: float = 0.95
) -> pd.DataFrame:
    """Every later optimizer (B) against every earlier one (A), per model and metric, over the
    (fold, seed) units both finished; the difference is B − A."""
    rows = []
    for model in models:
        mine = per_unit[per_unit["model"] == model]
        for i, opt_a in enumerate(optimizers):
            for opt_b in optimizers[i + 1 :]:
                a = mine[mine["optimizer"] == opt_a].set_index(["fold", "seed"])
                b = mine[mine["optimizer"] == opt_b].set_index(["fold", "seed"])
                if a.empty or b.empty:
                    continue
                common = a.index.intersection(b.index).sort_values()
                unpaired = len(a.index.union(b.index)) - len(common)
                for m in metrics:
                    res = stats.paired_test(
                        a.loc[common, m].to_numpy(), b.loc[common, m].to_numpy(), confidence
                    )
                    rows.append(
                        {
                            "model": model,
                            "metric": m,
                            "optimizer_a": opt_a,
                            "optimizer_b": opt_b,
                            "n_pairs": res.n_pairs,
                            "n_unpaired": unpaired,
                            "mean_a": describe(a.loc[common, m]).mean,
                            "mean_b": describe(b.loc[common, m]).mean,
                            "mean_diff": res.mean_diff,
                            "diff_ci_low": res.ci_low,
                            "diff_ci_high": res.ci_high,
                            "t_statistic": res.t_statistic,
                            "t_p": res.t_p,
                            "wilcoxon_statistic": res.wilcoxon_statistic,
                            "wilcoxon_p": res.wilcoxon_p,
                            "wilcoxon_min_p": res.wilcoxon_min_p,
                            "caveat": res.caveat,
                        }
                    )
    return pd.DataFrame(rows)


def paired_folds(per_unit: pd.DataFrame, models, optimizers, metric: str = "auc") -> pd.DataFrame:
    """The paired plot's table: per model, one row per (fold, seed) and one column per optimizer
    holding that unit's ``metric``; ``label`` names the row (``f{fold}``, ``f{fold}s{seed}`` when
    there are several seeds). Rows and optimizers without any defined value are left out."""
    frames = []
    for model in models:
        mine = per_unit[per_unit["model"] == model]
        if mine.empty:
            continue
        wide = mine.pivot_table(
            index=["fold", "seed"], columns="optimizer", values=metric, aggfunc="first"
        )
        wide = wide[[o for o in optimizers if o in wide.columns]].reset_index()
        one_seed = mine["seed"].nunique() == 1
        wide.insert(0, "model", model)
        wide.insert(
            3,
            "label",
            [
                f"f{fold}" if one_seed else f"f{fold}s{seed}"
                for fold, seed in zip(wide["fold"], wide["seed"], strict=True)
            ],
        )
        frames.append(wide)
    if not frames:
        return pd.DataFrame(columns=["model", "fold", "seed", "label"])
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
    """Per (model, optimizer) and false positive rate of ``grid``: mean, std and number of the
    units' true positive rates (each unit's test ROC interpolated on the grid, starting at 0).
    Units whose test fold holds a single class have no ROC and are left out."""
    frames = []
    for (model, opt, _), part in preds.groupby(["model", "optimizer", "run_id"], sort=False):
        labels = part["label"].to_numpy()
        if len(np.unique(labels)) < 2:
            continue
        fpr, tpr, _ = roc_curve(labels, part["prob_malignant"].to_numpy())
        tpr_grid = np.interp(grid, fpr, tpr)
        tpr_grid[0] = 0.0
        frames.append(
            pd.DataFrame({"model": model, "optimizer": opt, "fpr": grid, "tpr": tpr_grid})
        )
    curves = (
        pd.concat(frames) if frames else pd.DataFrame(columns=["model", "optimizer", "fpr", "tpr"])
    )
    out = describe_by(curves, ["model", "optimizer", "fpr"], "tpr")
    return out.rename(columns={"mean": "tpr_mean", "std": "tpr_std"})


def sites(preds: pd.DataFrame, threshold: float, confidence: float = 0.95) -> pd.DataFrame:
    """Per (model, optimizer, site): test metrics of each unit's images from that site, then mean,
    std and t CI over units. Images with no site are left out."""
    if "site" not in preds:
        return pd.DataFrame()
    known = preds[preds["site"].notna() & (preds["site"].astype(str).str.strip() != "")]
    rows = []
    for (model, opt, site), part in known.groupby(["model", "optimizer", "site"], sort=False):
        per = []
        for _, unit in part.groupby(["fold", "seed"]):
            per.append(
                binary_metrics(
                    unit["label"].to_numpy(), unit["prob_malignant"].to_numpy(), threshold
                )
            )
        per_df = pd.DataFrame(per)
        row = {
            "model": model,
            "optimizer": opt,
            "site": site,
            "n_units": len(per),
            "n_images": len(part),
        }
        for m in SITE_METRICS:
            row.update(stats.interval_columns(per_df[m], m, confidence))
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.sort_values(["model", "optimizer", "site"]).reset_index(drop=True) if rows else out


# -- readers -----------------------------------------------------------------------------------


def images(preds: pd.DataFrame) -> pd.DataFrame:
    """One row per test image (the readers' calls do not depend on the model)."""
    cols = [c for c in ("id", "site", "label", *clinical.READERS) if c in preds]
    return preds[cols].drop_duplicates("id").sort_values("id").reset_index(drop=True)


def readers_table(imgs: pd.DataFrame) -> pd.DataFrame:
    """Per reader: images, calls used, missing and stray values left out, operating point."""
    rows = []
    for reader in clinical.READERS:
        values = imgs[reader].tolist() if reader in imgs else [None] * len(imgs)
        calls = clinical.reader_calls(values)
        valid = calls.valid
        point = clinical.operating_point(
            imgs["label"].to_numpy()[valid], calls.positive[valid].astype(int)
        )
        rows.append(
            {
                "reader": reader,
                "n_images": len(imgs),
                "n_used": int(valid.sum()),
                "n_missing": calls.n_missing,
                "n_stray": calls.n_stray,
                "sensitivity": point.sensitivity,
                "specificity": point.specificity,
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
    """Cohen's kappa between the two readers on the images both assessed."""
    if not all(r in imgs for r in clinical.READERS):
        return pd.DataFrame()
    ag = clinical.reader_agreement(
        imgs[clinical.READERS[0]].tolist(), imgs[clinical.READERS[1]].tolist()
    )
    return pd.DataFrame(
        [
            {
                "n_images": len(imgs),
                "n_both_assessed": ag.n,
                "kappa_calls": ag.kappa_calls,
                "kappa_categories": ag.kappa_categories,
                "percent_agreement_calls": ag.percent_agreement,
            }
        ]
    )


def model_vs_readers(preds: pd.DataFrame) -> pd.DataFrame:
    """Per (model, optimizer, seed, reader), on the pooled test images the reader assessed: the
    reader's operating point, the model's sensitivity at the reader's specificity and its
    specificity at the reader's sensitivity (best threshold on the pooled ROC)."""
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
            point = clinical.operating_point(y, calls.positive[valid].astype(int))
            sens, thr_sens = clinical.sensitivity_at_specificity(y, p, point.specificity)
            spec, thr_spec = clinical.specificity_at_sensitivity(y, p, point.sensitivity)
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
                    "threshold_at_reader_specificity": thr_sens,
                    "model_specificity_at_reader_sensitivity": spec,
                    "threshold_at_reader_sensitivity": thr_spec,
                }
            )
    return pd.DataFrame(rows)
