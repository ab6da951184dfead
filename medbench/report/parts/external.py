"""External validation: every fold's selected checkpoint tested on datasets it never saw, with the
training data's preprocessing (``predictions_external_{dataset}.csv`` of each fold run).

A unit is one finished fold run, as for the test folds; on an external dataset every unit sees
the same images, so folds compare checkpoints, not test sets. Per (model, optimizer, dataset)
the tables give the internal test AUC beside the external one, the gap between them on the same
checkpoints, and the AUC of the checkpoints' mean probability. As everywhere in the report,
seeds are averaged within a fold first, and the intervals of metrics in [0, 1] are percentile
bootstrap intervals over (here: external) images, so they never leave [0, 1]; the gap, a
difference, has a t interval over folds. Optimizers are compared on the external set by
:func:`~medbench.report.external_test.compare_external`: the fold models share one sample of
external images, so the test counts both the spread between fold models (corrected for their
overlapping training sets with the internal folds' n_test/n_train) and the noise of that shared
sample (a paired bootstrap over the external images); its p does not grow with the external
set's size. Holm adjusts over each dataset's comparisons.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.metrics import describe, resampled_metrics
from medbench.report import document as d
from medbench.report import external_test, stats
from medbench.report.clinical import readers_by_model
from medbench.report.figures import FigureFiles, roc, safe_name, save
from medbench.report.formatting import fcell, fci, fnum, fp, fsigned
from medbench.report.part import Analysis, Part, Writer
from medbench.report.resampling import (
    Resampling,
    bounded_columns,
    resampled_fold_mean,
    resampling,
)
from medbench.report.units import (
    REPEAT,
    drop_single_repeat,
    fold_means,
    mean_roc,
    test_train_ratios,
    unit_metrics,
    unit_predictions,
)
from medbench.tracking import ExperimentRecord, schema
from medbench.tracking.reader import tag_column

#: External metrics of the summary table (mean over folds and its bootstrap interval).
SUMMARY_METRICS = ("auc", "accuracy", "sensitivity", "specificity")


@dataclass
class ExternalAnalysis:
    """The numbers of the report's External validation section (empty without external data)."""

    datasets: list[str]
    #: per (unit, dataset): n_test, n_malignant, every metric, and the unit's internal test AUC
    per_unit: pd.DataFrame
    #: per (model, optimizer, dataset): internal_auc_*, {metric}_*, gap_auc_*, mean_prob_auc
    #: with its bootstrap interval, n_images, n_malignant
    summary: pd.DataFrame
    paired: pd.DataFrame  # external_test.compare_external per (dataset, model, pair)
    roc: pd.DataFrame  # units.mean_roc on each external dataset, with a dataset column
    readers: pd.DataFrame  # clinical.readers_by_model per external dataset, with a dataset column

    @property
    def empty(self) -> bool:
        return self.per_unit.empty


def analyse(a: Analysis) -> ExternalAnalysis:
    i = a.inputs
    return analyse_external(
        i.record,
        i.inventory.units,
        i.per_unit,
        i.models,
        i.optimizers,
        i.threshold,
        i.n_resamples,
    )


def tables(ext: ExternalAnalysis) -> dict[str, pd.DataFrame]:
    return {
        "external": ext.summary,
        "external_per_fold": drop_single_repeat(ext.per_unit),
        "external_paired_tests": ext.paired,
    }


def figures(ext: ExternalAnalysis, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    """The ROC of each model on each external dataset (keys ``external_roc/{dataset}/{model}``)."""
    made: dict[str, FigureFiles] = {}
    if ext.empty:
        return made
    i = a.inputs
    for name in ext.datasets:
        frames = [t[t["dataset"] == name] for t in (ext.roc, ext.summary, ext.readers)]
        for model in i.models:
            opts = [
                o
                for o in i.optimizers
                if ((frames[1]["model"] == model) & (frames[1]["optimizer"] == o)).any()
            ]
            if not opts:
                continue
            fig = roc(
                *frames,
                model,
                opts,
                i.colours,
                title=f"{model} on {name} (external)\nROC, mean ± 1 std over fold checkpoints",
            )
            made[f"external_roc/{name}/{model}"] = save(
                fig, out, f"fig_external_roc_{safe_name(name)}_{safe_name(model)}"
            )
    return made


def sections(ext: ExternalAnalysis, w: Writer) -> None:
    a = w.inputs
    if ext.empty:
        return
    sizes = ext.summary.drop_duplicates("dataset").set_index("dataset")
    described = "; ".join(
        f"`{name}` ({int(sizes.at[name, 'n_images'])} images, "
        f"{int(sizes.at[name, 'n_malignant'])} malignant)"
        for name in ext.datasets
    )
    overlap = external_overlap_tag(w.record.parents)
    w.doc.add(
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
    for name, o in overlap.items():
        if o.get("identical") or o.get("near_duplicates"):
            w.doc.add(
                d.Paragraph(
                    f"**Not all external:** {o.get('identical', 0)} of the {o.get('n', 0)} "
                    f"images of `{name}` are training images (the same pixels) and "
                    f"{o.get('near_duplicates', 0)} more are near-duplicates of one: the models "
                    "saw them, so its results overstate how they do on data from elsewhere."
                )
            )
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Dataset": r["dataset"],
            "Checkpoints": r["n_units"],
            "Internal AUC": fcell(r, "internal_auc")
            if r["internal_auc_n"]
            else "n/a (no internal test fold)",
            "External AUC": fcell(r, "auc"),
            "External − internal AUC": f"{fnum(r['gap_auc_mean'])} "
            f"{fci(r['gap_auc_ci_low'], r['gap_auc_ci_high'])}".strip(),
            "External accuracy": fcell(r, "accuracy"),
            "AUC of the mean probability": f"{fnum(r['mean_prob_auc'])} "
            f"{fci(r['mean_prob_auc_ci_low'], r['mean_prob_auc_ci_high'])}".strip(),
        }
        for r in ext.summary.to_dict("records")
    ]
    w.table(
        pd.DataFrame(rows),
        "Internal (each checkpoint's own test fold; its interval is in Test performance) "
        "against external AUC: mean ± std over folds (seeds averaged) [95% percentile bootstrap "
        f"CI over the external images, {a.n_resamples} resamples, seed {a.bootstrap_seed}]; "
        "the gap is taken checkpoint by checkpoint, with a t interval over folds; the AUC of the "
        "checkpoints' mean probability has a bootstrap CI over the external images. Accuracy at "
        f"P(malignant) ≥ {a.threshold:g}.",
        "external",
    )
    for name in ext.datasets:
        for model in a.models:
            w.image(
                f"external_roc/{name}/{model}",
                f"{model} on `{name}`: mean ROC of the fold checkpoints per optimizer (band: "
                "interquartile range), with the dataset's readers' operating points when it has "
                "readers.",
            )
    if not ext.paired.empty:
        w.doc.add(
            d.Paragraph("**Optimizers compared on the external data**, paired by checkpoint:")
        )
        for name in ext.datasets:
            part = ext.paired[ext.paired["dataset"] == name]
            if not part.empty:
                w.table(
                    external_rows(part),
                    f"`{name}`: AUC difference B − A, the mean over the fold models both "
                    f"optimizers finished (seeds averaged). {external_test.METHOD} Holm's "
                    "adjustment over this dataset's comparisons that could be tested.",
                    "external_paired_tests",
                )


def external_overlap_tag(parents: pd.DataFrame) -> dict[str, dict[str, int]]:
    """The external datasets' images that are training images, as the parent runs logged them
    (tag ``medbench.external_overlap``: only where there are any); {} for none or older runs."""
    col = tag_column(schema.TAG_EXTERNAL_OVERLAP)
    if col not in parents or parents[col].dropna().empty:
        return {}
    try:
        found = json.loads(parents[col].dropna().iloc[0])
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def external_rows(paired: pd.DataFrame) -> pd.DataFrame:
    """The table of the external comparisons (:func:`external_comparisons`)."""
    rows = []
    for r in paired.to_dict("records"):
        tested = math.isfinite(r["p"])
        significant = tested and math.isfinite(r["p_holm"]) and r["p_holm"] < 0.05
        ci = (
            f" [{fsigned(r['ci_low'])}, {fsigned(r['ci_high'])}]"
            if math.isfinite(r["ci_low"]) and math.isfinite(r["ci_high"])
            else ""
        )
        rows.append(
            {
                "Model": r["model"],
                "B − A": f"{r['optimizer_b']} − {r['optimizer_a']}",
                "Fold models": r["n_folds"],
                "External AUC A / B": f"{fnum(r['auc_a'])} / {fnum(r['auc_b'])}",
                "Mean difference [95% CI]": f"{fsigned(r['mean_diff'])}{ci}",
                "p": fp(r["p"]) if tested else "no test",
                "p (Holm)": fp(r["p_holm"]) + (" **significant**" if significant else "")
                if tested
                else "no test",
            }
        )
    return pd.DataFrame(rows)


PART = Part("external", analyse, tables, figures, sections)


def analyse_external(
    record: ExperimentRecord,
    units: pd.DataFrame,
    internal: pd.DataFrame,
    models: list[str],
    optimizers: list[str],
    threshold: float,
    n_resamples: int = stats.BOOTSTRAP_RESAMPLES,
) -> ExternalAnalysis:
    """The external-validation numbers.

    Parameters
    ----------
    record : ExperimentRecord
        Its ``external`` predictions (with a ``dataset`` column) and ``folds`` (split sizes).
    units : DataFrame
        The usable units (``Inventory.units``).
    internal : DataFrame
        The units' metrics on their test folds (``Inputs.per_unit``).
    models, optimizers : list of str
        In report order.
    threshold : float
        P(malignant) called malignant.
    n_resamples : int
        Bootstrap resamples of the external images.
    """
    external = record.external
    preds = unit_predictions(external, units) if not external.empty else pd.DataFrame()
    if preds.empty or "dataset" not in preds:
        empty = pd.DataFrame()
        return ExternalAnalysis([], empty, empty, empty, empty, empty)
    datasets = sorted(preds["dataset"].unique())
    per_unit, summary, tests, rocs, readers = [], [], [], [], []
    own = internal[["run_id", "auc"]].rename(columns={"auc": "internal_auc"})
    for name in datasets:
        part = preds[preds["dataset"] == name]
        metrics = unit_metrics(part, threshold, record.folds).merge(own, on="run_id", how="left")
        per_unit.append(metrics.assign(dataset=name))
        tests.append(external_comparisons(name, part, internal, models, optimizers, n_resamples))
        rocs.append(mean_roc(part).assign(dataset=name))
        readers.append(readers_by_model(part).assign(dataset=name))
        boot = resampling(part, n_resamples)
        summary.append(_summary(name, metrics, part, boot, models, optimizers, threshold))
    return ExternalAnalysis(
        datasets=datasets,
        per_unit=pd.concat(per_unit, ignore_index=True),
        summary=pd.concat(summary, ignore_index=True),
        paired=pd.concat(tests, ignore_index=True),
        roc=pd.concat(rocs, ignore_index=True),
        readers=pd.concat(readers, ignore_index=True),
    )


def _summary(
    name: str,
    per_unit: pd.DataFrame,
    preds: pd.DataFrame,
    boot: Resampling,
    models: list[str],
    optimizers: list[str],
    threshold: float,
) -> pd.DataFrame:
    folds = fold_means(per_unit, ["internal_auc", *SUMMARY_METRICS])
    rows = []
    for model in models:
        for opt in optimizers:
            mine = folds[(folds["model"] == model) & (folds["optimizer"] == opt)]
            if mine.empty:
                continue
            seen = preds[(preds["model"] == model) & (preds["optimizer"] == opt)]
            samples = resampled_fold_mean(seen, boot, threshold, SUMMARY_METRICS)
            # each image's probability averaged over the checkpoints (folds and seeds)
            mean = seen.groupby("id").agg(label=("label", "first"), p=("prob_malignant", "mean"))
            y, p = mean["label"].to_numpy(), mean["p"].to_numpy()
            counts = stats.stratified_counts(y.astype(str), boot.n_resamples, boot.seed)
            aucs = resampled_metrics(y, p, counts, threshold)["auc"]
            low, high = stats.percentile_interval(aucs)
            gap = describe(mine["auc"] - mine["internal_auc"])
            row = {
                "model": model,
                "optimizer": opt,
                "dataset": name,
                "n_units": int(mine["n_seeds"].sum()),
                "n_folds": len(mine),
                "n_images": len(mean),
                "n_malignant": int(mean["label"].sum()),
                **bounded_columns(mine["internal_auc"], np.array([]), "internal_auc"),
                "gap_auc_mean": gap.mean,
                "gap_auc_std": gap.std,
                "gap_auc_ci_low": gap.low,
                "gap_auc_ci_high": gap.high,
                "gap_auc_n": gap.n,
                "mean_prob_auc": resampled_metrics(y, p, np.ones(len(y)), threshold)["auc"][0],
                "mean_prob_auc_ci_low": low,
                "mean_prob_auc_ci_high": high,
            }
            for metric in SUMMARY_METRICS:
                row.update(bounded_columns(mine[metric], samples[metric], metric))
            rows.append(row)
    return pd.DataFrame(rows)


def external_comparisons(
    name: str,
    preds: pd.DataFrame,
    internal: pd.DataFrame,
    models: list[str],
    optimizers: list[str],
    n_resamples: int = stats.BOOTSTRAP_RESAMPLES,
) -> pd.DataFrame:
    """Every later optimizer (B) against every earlier one (A) on external dataset ``name``, per
    model: :func:`~medbench.report.external_test.compare_external` of the fold models both
    finished (each (repeat, fold)'s P(malignant) averaged over the seeds both finished there),
    on the images all of them predicted, with the internal folds' n_test / n_train of the two
    optimizers as the ratio (never n_external / n_train); Holm over the dataset's tested
    comparisons (``p_holm``, ``family_size``)."""
    rows = []
    key = [REPEAT, "fold", "seed"]
    ratios = internal.assign(_ratio=test_train_ratios(internal)) if len(internal) else internal
    for model in models:
        mine = preds[preds["model"] == model]
        for i, opt_a in enumerate(optimizers):
            for opt_b in optimizers[i + 1 :]:
                a, b = mine[mine["optimizer"] == opt_a], mine[mine["optimizer"] == opt_b]
                both = set(map(tuple, a[key].to_numpy())) & set(map(tuple, b[key].to_numpy()))
                if not both:
                    continue
                wide = []
                for side in (a, b):
                    kept = side[[tuple(k) in both for k in side[key].to_numpy()]]
                    wide.append(
                        kept.pivot_table(
                            index="id", columns=[REPEAT, "fold"], values="prob_malignant"
                        ).dropna()
                    )
                ids = wide[0].index.intersection(wide[1].index)
                labels = mine.drop_duplicates("id").set_index("id")["label"].reindex(ids)
                inner = (
                    ratios[(ratios["model"] == model) & ratios["optimizer"].isin([opt_a, opt_b])][
                        "_ratio"
                    ]
                    if len(ratios)
                    else pd.Series(dtype=float)
                )
                ratio = float(inner.mean()) if len(inner) else math.nan
                res = external_test.compare_external(
                    labels.to_numpy(),
                    wide[0].loc[ids].to_numpy().T,
                    wide[1].loc[ids, wide[0].columns].to_numpy().T,
                    ratio,
                    n_resamples=n_resamples,
                )
                rows.append(
                    {
                        "dataset": name,
                        "model": model,
                        "metric": "auc",
                        "optimizer_a": opt_a,
                        "optimizer_b": opt_b,
                        "n_folds": res.n_folds,
                        "n_images": res.n_images,
                        "n_malignant": res.n_malignant,
                        "auc_a": res.auc_a,
                        "auc_b": res.auc_b,
                        "mean_diff": res.diff,
                        "ci_low": res.test.ci_low,
                        "ci_high": res.test.ci_high,
                        "p": res.test.p,
                        "p_holm": math.nan,
                        "family_size": 0,
                        "se": res.test.se,
                        "fold_var": res.fold_var,
                        "image_var": res.image_var,
                        "own_image_var": res.own_image_var,
                        "test_train_ratio": ratio,
                        "n_resamples": res.n_resamples,
                        "bootstrap_seed": res.seed,
                    }
                )
    out = pd.DataFrame(rows)
    if rows:
        p = out["p"].to_numpy()
        out["p_holm"] = stats.holm(p)
        out["family_size"] = int(np.isfinite(p).sum())
    return out
