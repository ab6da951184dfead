"""External validation: every fold's selected checkpoint tested on datasets it never saw, with the
training data's preprocessing (``predictions_external_{dataset}.csv`` of each fold run).

A unit is one finished fold run, as for the test folds; on an external dataset every unit sees
the same images, so folds compare checkpoints, not test sets. Per (model, optimizer, dataset)
the tables give the internal test AUC beside the external one, the gap between them on the same
checkpoints, and the AUC of the checkpoints' mean probability. As everywhere in the report,
seeds are averaged within a fold first, and the intervals of metrics in [0, 1] are percentile
bootstrap intervals over (here: external) images, so they never leave [0, 1]; the gap, a
difference, has a t interval over folds. Optimizers are compared on the external set with the
tests of the test folds (:func:`~medbench.report.parts.comparisons.paired`: corrected t-test,
Holm over this dataset's comparisons, Bayesian correlated t-test).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.metrics import describe, resampled_metrics
from medbench.report import document as d
from medbench.report import stats
from medbench.report.clinical import readers_by_model
from medbench.report.figures import FigureFiles, roc, safe_name, save
from medbench.report.formatting import fcell, fci, fnum
from medbench.report.part import Analysis, Part, Writer
from medbench.report.parts.comparisons import fold_differences, paired, paired_rows
from medbench.report.resampling import (
    Resampling,
    bounded_columns,
    resampled_fold_mean,
    resampling,
)
from medbench.report.units import fold_means, mean_roc, unit_metrics, unit_predictions
from medbench.tracking import ExperimentRecord

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
    paired: pd.DataFrame  # comparisons.paired on each external dataset, with a dataset column
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
        i.rope,
        i.n_resamples,
    )


def tables(ext: ExternalAnalysis) -> dict[str, pd.DataFrame]:
    return {
        "external": ext.summary,
        "external_per_fold": ext.per_unit,
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
                    paired_rows(part),
                    f"`{name}`: differences B − A over the (fold, seed) checkpoints both "
                    "optimizers finished, as for the test folds.",
                    "external_paired_tests",
                )


PART = Part("external", analyse, tables, figures, sections)


def analyse_external(
    record: ExperimentRecord,
    units: pd.DataFrame,
    internal: pd.DataFrame,
    models: list[str],
    optimizers: list[str],
    threshold: float,
    rope: float,
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
    rope : float
        Half-width of the region of practical equivalence of the Bayesian comparison.
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
        diffs = fold_differences(metrics, models, optimizers)
        tests.append(paired(metrics, diffs, models, optimizers, rope).assign(dataset=name))
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
