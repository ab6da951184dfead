"""The report's text: each section of ``report.md`` / ``report.html`` as a function that adds
blocks to the document, formatting the numbers of :class:`~medbench.report.analysis.Analysis`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from medbench.report import document as d
from medbench.report import figures, results
from medbench.report.analysis import Analysis, config_value
from medbench.report.formatting import fci, fnum, fp, fpm, fsig, seconds
from medbench.report.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from medbench.report.vocab import metric_label, reader_style
from medbench.tracking import ExperimentRecord, schema
from medbench.tracking.reader import tag_column


def _cell(row, metric: str, digits: int = 3) -> str:
    text = fpm(row[f"{metric}_mean"], row[f"{metric}_std"], digits)
    ci = fci(row[f"{metric}_ci_low"], row[f"{metric}_ci_high"], digits)
    return f"{text} {ci}".strip()


def _sig_cell(row, key: str) -> str:
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    text = fsig(mean) + ("" if not math.isfinite(float(std)) else f" ± {fsig(std, 2)}")
    lo, hi = row[f"{key}_ci_low"], row[f"{key}_ci_high"]
    if math.isfinite(float(lo)) and math.isfinite(float(hi)):
        text += f" [{fsig(lo)}, {fsig(hi)}]"
    return text


def _folds(row) -> str:
    done = f"{int(row['n_finished'])}/{int(row['n_expected'])}"
    return done if row["complete"] else f"{done} (incomplete)"


# -- the document ------------------------------------------------------------------------------


@dataclass
class _Ctx:
    record: ExperimentRecord
    a: Analysis
    figs: dict[str, figures.FigureFiles]
    tables: dict[str, Path]
    doc: d.Document

    def image(self, key: str, caption: str) -> None:
        f = self.figs.get(key)
        if f is not None:
            self.doc.add(d.Image(f.png.name, f.svg.name, caption))

    def table(self, frame: pd.DataFrame, caption: str = "", csv_key: str | None = None) -> None:
        csv = self.tables.get(csv_key) if csv_key else None
        self.doc.add(d.Table(frame, caption, csv.name if csv else None))


def compose(
    record: ExperimentRecord,
    a: Analysis,
    figs: dict[str, figures.FigureFiles],
    tables: dict[str, Path],
) -> d.Document:
    """The whole report; ``figs`` and ``tables`` are the files written beside it, by key."""
    ctx = _Ctx(record, a, figs, tables, d.Document(f"medbench report: {record.name}"))
    for section in (
        _overview,
        _configuration,
        _dataset,
        _protocol,
        _environment,
        _discrimination,
        _paired,
        _external,
        _training,
        _errors,
        _calibration,
        _sites,
        _clinical,
        _flatness,
        _files,
    ):
        section(ctx)
    return ctx.doc


def _overview(c: _Ctx) -> None:
    a, rec = c.a, c.record
    folds = rec.folds
    n_runs = len(folds)
    times = pd.to_numeric(folds.get("start_time"), errors="coerce").dropna()
    ends = pd.to_numeric(folds.get("end_time"), errors="coerce").dropna()
    span = ""
    if len(times) and len(ends):
        fmt = "%Y-%m-%d %H:%M UTC"
        start = pd.to_datetime(times.min(), unit="ms", utc=True).strftime(fmt)
        end = pd.to_datetime(ends.max(), unit="ms", utc=True).strftime(fmt)
        span = f" Runs from {start} to {end}."
    c.doc.add(
        d.Paragraph(
            f"Built from the MLflow experiment `{rec.name}` (id {rec.experiment_id}): "
            f"{len(a.models)} model(s) × {len(a.optimizers)} optimizer(s), {n_runs} fold run(s), "
            f"{len(a.inventory.units)} of which finished and count.{span} Every number below is "
            "recomputed from the runs' `predictions.csv` artifacts (test folds only); rebuild it "
            f"with `medbench report {rec.name} --tracking-uri URI`."
            + (
                f" {rec.ignored_runs} other run(s) of this experiment, made with another config or "
                "dataset (config hash or dataset fingerprint), are left out: a report covers one "
                "config, the latest."
                if getattr(rec, "ignored_runs", 0)
                else ""
            )
        ),
        d.Heading("At a glance"),
    )
    if a.per_unit.empty and a.external is not None and not a.external.empty:
        c.doc.add(
            d.Paragraph(
                "No internal test fold (`data.folds: none`): the models were tested on external "
                "data only; see External validation."
            )
        )
    elif a.per_unit.empty:
        c.doc.add(d.Paragraph("**No fold run finished: there are no results to show.**"))
    else:
        rows = []
        for r in a.performance.itertuples(index=False):
            r = r._asdict()
            pooled = a.pooled[
                (a.pooled["model"] == r["model"]) & (a.pooled["optimizer"] == r["optimizer"])
            ]
            cal = a.calibration[
                (a.calibration["model"] == r["model"])
                & (a.calibration["optimizer"] == r["optimizer"])
            ]
            rows.append(
                {
                    "Model": r["model"],
                    "Optimizer": r["optimizer"],
                    "Folds": _folds(r),
                    "AUC (mean ± std)": fpm(r["auc_mean"], r["auc_std"]),
                    "Accuracy (mean ± std)": fpm(r["accuracy_mean"], r["accuracy_std"]),
                    "Pooled AUC [95% CI]": "; ".join(
                        f"{fnum(p.auc)} {fci(p.ci_low, p.ci_high)}" for p in pooled.itertuples()
                    ),
                    "ECE": fpm(cal.iloc[0]["ece_mean"], cal.iloc[0]["ece_std"])
                    if len(cal)
                    else "n/a",
                }
            )
        c.table(
            pd.DataFrame(rows),
            f"Test metrics over folds; accuracy at threshold {a.threshold:g}.",
            "performance",
        )
    probs = a.inventory.problems
    if probs.empty:
        c.doc.add(d.Paragraph(f"All {n_runs} fold runs finished."))
    else:
        incomplete = a.inventory.status[~a.inventory.status["complete"]]
        names = ", ".join(f"{r.model}/{r.optimizer}" for r in incomplete.itertuples())
        c.doc.add(
            d.Heading("Runs that did not finish", 3),
            d.Paragraph(
                f"**{len(probs)} fold run(s) did not finish.** They are left out of every number "
                f"below, and the rows they belong to are marked incomplete ({names or 'none'}). "
                "Paired comparisons use only the folds finished under both optimizers."
            ),
        )
        shown = probs.assign(
            fold=probs["fold"].astype(str),
            seed=probs["seed"].astype(str),
            run_id=probs["run_id"].fillna(""),
        )
        c.table(
            shown.rename(columns=str.capitalize).rename(columns={"Run_id": "Run id"}),
            "",
            "problems",
        )


def _configuration(c: _Ctx) -> None:
    c.doc.add(d.Heading("Configuration"))
    if c.record.config:
        c.doc.add(
            d.Paragraph("The config the runs were made with (`config.yaml` of the parent runs):"),
            d.Code(yaml.safe_dump(c.record.config, sort_keys=False, allow_unicode=True), "yaml"),
        )
    else:
        c.doc.add(d.Paragraph("No `config.yaml` artifact was found on the parent runs."))


def _card_summary(meta: dict, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _card_summary(value, name + ".")
        elif isinstance(value, list):
            rows.append((name, ", ".join(str(v) for v in value)))
        else:
            rows.append((name, str(value)))
    return rows


def _dataset(c: _Ctx) -> None:
    from medbench.data.cards import list_cards, read_card
    from medbench.errors import DataError

    c.doc.add(d.Heading("Dataset"))
    parents = c.record.parents
    col = tag_column(schema.TAG_DATASET_CARD)
    names = sorted(set(parents[col].dropna())) if col in parents else []
    fp = c.record.tags.get(schema.TAG_FINGERPRINT)
    if fp:
        c.doc.add(
            d.Paragraph(f"Dataset fingerprint (ids, labels, sites, folds, image bytes): `{fp}`.")
        )
    if not names:
        c.doc.add(d.Paragraph(f"The runs name no data card (tag `{schema.TAG_DATASET_CARD}`)."))
    for name in names:
        if name not in list_cards():
            c.doc.add(d.Paragraph(f"Data card `{name}`: not among the cards medbench ships."))
            continue
        try:
            meta, _ = read_card(name)
        except (OSError, DataError) as err:
            c.doc.add(d.Paragraph(f"Data card `{name}` cannot be read: {err}"))
            continue
        rows = _card_summary(meta)
        c.doc.add(d.Paragraph(f"From the data card `data_cards/{name}.md`:"))
        c.table(pd.DataFrame(rows, columns=["Field", "Value"]))
    imgs = c.a.images
    if not imgs.empty:
        n_mal = int(imgs["label"].sum())
        text = (
            f"Test images seen in this experiment: {len(imgs)} ({n_mal} malignant, "
            f"{len(imgs) - n_mal} benign)"
        )
        if "site" in imgs and imgs["site"].notna().any():
            counts = imgs["site"].fillna("(none)").value_counts().sort_index()
            text += "; per site: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        c.doc.add(d.Paragraph(text + "."))


def _protocol(c: _Ctx) -> None:
    cfg, a = c.record.config, c.a
    units = a.inventory.units
    n_folds = (
        units["fold"].nunique()
        if not units.empty
        else c.record.folds.get("fold", pd.Series()).nunique()
    )
    seeds = sorted(set(c.record.folds.get("seed", pd.Series()).dropna().astype(int)))
    kind = config_value(cfg, "data.folds", "unknown")
    single = {"official": "official", "all": "none"}  # the one fold of these modes
    found = set(units["fold"]) if not units.empty else set()
    if kind == "auto" and len(found) == 1 and next(iter(found)) in single:
        kind = single[next(iter(found))]
    fold_text = {
        "sheet": "the dataset sheet's own fold column",
        "stratified": "stratified folds made by the suite (a patient's images in one fold)",
        "site": "leave-one-site-out: each test fold is one hospital, training uses the other",
        "auto": "the dataset's own folds when it has them, else stratified folds",
        "official": "the dataset's official train/val/test split as one fold; its val part is "
        "the validation split",
        "none": "no internal test: the models trained on every image but the validation split "
        "and were tested on external data only",
    }.get(kind, str(kind))
    es = config_value(cfg, "train.early_stopping", {}) or {}
    val = config_value(cfg, "data.val_fraction")
    val_text = f"{float(val):.0%}" if val is not None else "a share"
    items = [
        f"Cross-validation: {n_folds} folds ({fold_text}); seeds {', '.join(map(str, seeds)) or 'n/a'}. "
        "Each fold in turn is the test set.",
        f"Validation split: {val_text} of the training folds is held out for model selection.",
        f"Selection rule: early stopping on `{es.get('monitor', 'val_auc')}` of the validation "
        f"split (patience {es.get('patience', 'n/a')} epochs, at most "
        f"{config_value(cfg, 'train.epochs', 'n/a')} epochs); the best checkpoint on the "
        "validation split is evaluated once on the test fold. The test fold is never used for "
        "early stopping or selection.",
        "Paired design: for one (model, fold, seed), every optimizer starts from the same initial "
        "weights and sees the same batches in the same order.",
        f"Decision threshold: P(malignant) ≥ {a.threshold:g} is called malignant (accuracy, "
        "sensitivity, specificity, F1, balanced accuracy, confusion matrices).",
        f"Optimizer settings: lr {config_value(cfg, 'optimizer.lr', 'n/a')}, rho "
        f"{config_value(cfg, 'optimizer.rho', 'n/a')}, weight decay "
        f"{config_value(cfg, 'optimizer.weight_decay', 'n/a')}; batch size "
        f"{config_value(cfg, 'train.batch_size', 'n/a')}, image size "
        f"{config_value(cfg, 'data.image_size', 'n/a')} px.",
        "Intervals: 95% Student-t over folds (units: finished (fold, seed) runs); pooled "
        f"out-of-fold AUC with a percentile bootstrap over images ({BOOTSTRAP_RESAMPLES} "
        f"resamples, seed {BOOTSTRAP_SEED}).",
    ]
    c.doc.add(d.Heading("Protocol"), d.Bullets(items))


ENV_TAGS = (
    (schema.TAG_VERSION, "medbench"),
    (schema.TAG_TORCH, "PyTorch"),
    (schema.TAG_PYTHON, "Python"),
    (schema.TAG_PLATFORM, "Platform"),
    (schema.TAG_DEVICE, "Device"),
    (schema.TAG_CONFIG_HASH, "Config hash"),
    (schema.TAG_FINGERPRINT, "Dataset fingerprint"),
)


def _environment(c: _Ctx) -> None:
    folds = c.record.folds
    rows = []
    for tag, label in ENV_TAGS:
        col = tag_column(tag)
        if col in folds and folds[col].notna().any():
            counts = folds[col].dropna().value_counts()
            value = (
                str(counts.index[0])
                if len(counts) == 1
                else "; ".join(f"{k} ({v} runs)" for k, v in counts.items())
            )
        else:
            value = c.record.tags.get(tag, "not recorded")
        rows.append((label, value))
    c.doc.add(d.Heading("Environment"), d.Paragraph("From the tags of the fold runs:"))
    c.table(pd.DataFrame(rows, columns=["", "Value"]))


def _discrimination(c: _Ctx) -> None:
    a = c.a
    if a.per_unit.empty:
        return
    c.doc.add(d.Heading("Test performance"))
    rows = []
    for r in a.performance.to_dict("records"):
        row = {"Model": r["model"], "Optimizer": r["optimizer"], "Folds": _folds(r)}
        for m in results.SUMMARY_METRICS:
            cell = _cell(r, m)
            if r[f"{m}_n"] < r["n_finished"]:  # e.g. no AUC on a single-class test fold
                cell += f" (defined on {int(r[f'{m}_n'])} folds)"
            row[metric_label(m, capitalised=True)] = cell
        rows.append(row)
    c.table(
        pd.DataFrame(rows),
        "Mean ± std over folds [95% t CI]; threshold metrics at P(malignant) ≥ "
        f"{a.threshold:g}. Per-fold values: table_per_fold.csv.",
        "performance",
    )
    c.image(
        "intervals",
        "Test AUC and accuracy per model and optimizer: mean with 95% CI over folds; dots are single folds.",
    )
    for model in a.models:
        c.image(
            f"roc/{model}",
            f"{model}: mean test ROC over folds per optimizer (band ±1 std, AUC mean ± std in the "
            "legend) and the two readers' operating points (BI-RADS ≥ 4a called malignant) on the "
            "same test images.",
        )
    pooled = a.pooled.assign(
        **{
            "Pooled AUC": a.pooled["auc"].map(fnum),
            "95% CI": [
                fci(lo, hi) for lo, hi in zip(a.pooled["ci_low"], a.pooled["ci_high"], strict=True)
            ],
        }
    )[["model", "optimizer", "seed", "n_folds", "n_images", "Pooled AUC", "95% CI"]]
    c.table(
        pooled.rename(
            columns={
                "model": "Model",
                "optimizer": "Optimizer",
                "seed": "Seed",
                "n_folds": "Folds",
                "n_images": "Images",
            }
        ),
        "Out-of-fold AUC: every test fold's predictions pooled, percentile bootstrap CI over images "
        f"({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}).",
        "pooled",
    )


def _paired(c: _Ctx) -> None:
    a = c.a
    if a.per_unit.empty:
        return
    c.doc.add(d.Heading("Paired comparisons between optimizers"))
    c.image(
        "paired",
        "Test AUC of each fold per optimizer; grey lines join the same fold (same initial weights and batches).",
    )
    if a.paired.empty:
        c.doc.add(d.Paragraph("Only one optimizer has results: nothing to compare."))
        return
    c.table(
        _paired_rows(a.paired),
        "Differences B − A over the (fold, seed) pairs both optimizers finished; paired t-test "
        "(scipy.stats.ttest_rel) and Wilcoxon signed-rank (scipy.stats.wilcoxon, two-sided).",
        "paired",
    )
    caveats = [
        f"{r['model']}, {metric_label(r['metric'], capitalised=True)}, {r['optimizer_b']} − {r['optimizer_a']}: {r['caveat']}"
        for r in a.paired.to_dict("records")
        if r["caveat"]
    ]
    if caveats:
        c.doc.add(d.Paragraph("**How far these tests can go:**"), d.Bullets(caveats))
    c.doc.add(
        d.Paragraph(
            "A p-value above 0.05 means the folds do not show a difference, not that there is "
            "none; read the interval of the mean difference for the size of a possible effect."
        )
    )


def _paired_rows(paired: pd.DataFrame) -> pd.DataFrame:
    """The table of paired tests (``results.paired``), one row per (model, metric, pair)."""
    rows = []
    for r in paired.to_dict("records"):
        rows.append(
            {
                "Model": r["model"],
                "Metric": metric_label(r["metric"], capitalised=True),
                "B − A": f"{r['optimizer_b']} − {r['optimizer_a']}",
                "Pairs": f"{r['n_pairs']}"
                + (f" ({r['n_unpaired']} unpaired left out)" if r["n_unpaired"] else ""),
                "Mean difference [95% CI]": f"{fnum(r['mean_diff'], 4)} {fci(r['diff_ci_low'], r['diff_ci_high'], 4)}".strip(),
                "Paired t-test p": fp(r["t_p"]),
                "Wilcoxon p": fp(r["wilcoxon_p"]),
                "Smallest possible Wilcoxon p": fp(r["wilcoxon_min_p"]),
            }
        )
    return pd.DataFrame(rows)


def _external(c: _Ctx) -> None:
    ext = c.a.external
    if ext is None or ext.empty:
        return
    sizes = ext.summary.drop_duplicates("dataset").set_index("dataset")
    described = "; ".join(
        f"`{name}` ({int(sizes.at[name, 'n_images'])} images, "
        f"{int(sizes.at[name, 'n_malignant'])} malignant)"
        for name in ext.datasets
    )
    c.doc.add(
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
            "Internal AUC": _cell(r, "internal_auc")
            if r["internal_auc_n"]
            else "n/a (no internal test fold)",
            "External AUC": _cell(r, "auc"),
            "External − internal AUC": f"{fnum(r['gap_auc_mean'])} "
            f"{fci(r['gap_auc_ci_low'], r['gap_auc_ci_high'])}".strip(),
            "External accuracy": _cell(r, "accuracy"),
            "AUC of the mean probability": f"{fnum(r['mean_prob_auc'])} "
            f"{fci(r['mean_prob_auc_ci_low'], r['mean_prob_auc_ci_high'])}".strip(),
        }
        for r in ext.summary.to_dict("records")
    ]
    c.table(
        pd.DataFrame(rows),
        "Internal (each checkpoint's own test fold) against external AUC: mean ± std over "
        "checkpoints [95% t CI]; the gap is taken checkpoint by checkpoint; the AUC of the "
        "checkpoints' mean probability has a percentile bootstrap CI over the external images "
        f"({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}). Accuracy at P(malignant) ≥ "
        f"{c.a.threshold:g}.",
        "external",
    )
    for name in ext.datasets:
        for model in c.a.models:
            c.image(
                f"external_roc/{name}/{model}",
                f"{model} on `{name}`: mean ROC of the fold checkpoints per optimizer (band ±1 "
                "std), with the dataset's readers' operating points when it has readers.",
            )
    if not ext.paired.empty:
        c.doc.add(
            d.Paragraph("**Optimizers compared on the external data**, paired by checkpoint:")
        )
        for name in ext.datasets:
            part = ext.paired[ext.paired["dataset"] == name]
            if not part.empty:
                c.table(
                    _paired_rows(part),
                    f"`{name}`: differences B − A over the (fold, seed) checkpoints both "
                    "optimizers finished, as for the test folds.",
                    "external_paired",
                )


def _training(c: _Ctx) -> None:
    a = c.a
    if a.curves.empty and a.cost.empty:
        return
    c.doc.add(d.Heading("Training"))
    c.image(
        "learning",
        "Training loss and validation AUC against epoch, mean ± std over folds (early-stopped runs leave the later epochs to fewer folds).",
    )
    c.image(
        "cost",
        "Training cost per optimizer: time per epoch, total training time, and training time until the epoch of best validation AUC (mean ± std over folds). SAM-family optimizers need two forward-backward passes per step.",
    )
    if not a.cost.empty:
        rows = []
        for r in a.cost.to_dict("records"):
            rows.append(
                {
                    "Model": r["model"],
                    "Optimizer": r["optimizer"],
                    "Folds": r["n_units"],
                    "Epochs run": fpm(r["epochs_mean"], r["epochs_std"], 1),
                    "Time per epoch": f"{seconds(r['epoch_time_s_mean'])} ± {seconds(r['epoch_time_s_std'])}",
                    "Total training time": f"{seconds(r['train_time_s_mean'])} ± {seconds(r['train_time_s_std'])}",
                    "Time to best val AUC": f"{seconds(r['time_to_best_val_auc_s_mean'])} ± {seconds(r['time_to_best_val_auc_s_std'])}",
                }
            )
        c.table(pd.DataFrame(rows), "Mean ± std over folds.", "cost")


def _errors(c: _Ctx) -> None:
    a = c.a
    if a.confusion.empty:
        return
    c.doc.add(d.Heading("Confusion matrices"))
    for model in a.models:
        c.image(
            f"confusion/{model}",
            f"{model}: test confusion matrices pooled over folds, P(malignant) ≥ {a.threshold:g} called malignant; percentages per true class.",
        )
    c.table(
        a.confusion.rename(
            columns={
                "model": "Model",
                "optimizer": "Optimizer",
                "threshold": "Threshold",
                "tn": "TN",
                "fp": "FP",
                "fn": "FN",
                "tp": "TP",
            }
        ),
        "Pooled over folds (and seeds).",
        "confusion",
    )


def _calibration(c: _Ctx) -> None:
    a = c.a
    if a.per_unit.empty:
        return
    c.doc.add(d.Heading("Calibration"))
    for model in a.models:
        c.image(
            f"reliability/{model}",
            f"{model}: reliability diagram of the test predictions pooled over folds, and their distribution.",
        )
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Folds": _folds(r),
            **{metric_label(m, capitalised=True): _cell(r, m) for m in results.CALIBRATION_METRICS},
        }
        for r in a.calibration.to_dict("records")
    ]
    c.table(
        pd.DataFrame(rows),
        "Expected calibration error (10 equal-width bins) and Brier score per fold: mean ± std [95% t CI]; lower is better.",
        "calibration",
    )


def _sites(c: _Ctx) -> None:
    a = c.a
    if a.sites.empty:
        return
    c.doc.add(d.Heading("Per site"))
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Site": r["site"],
            "Folds": r["n_units"],
            "Images": r["n_images"],
            **{metric_label(m, capitalised=True): _cell(r, m) for m in results.SITE_METRICS},
        }
        for r in a.sites.to_dict("records")
    ]
    missing = int(a.predictions["site"].isna().sum()) if "site" in a.predictions else 0
    note = f" {missing} prediction(s) without a site are left out." if missing else ""
    c.table(
        pd.DataFrame(rows),
        "Test metrics on each hospital's images within each fold: mean ± std [95% t CI] over folds."
        + note,
        "sites",
    )


def _clinical(c: _Ctx) -> None:
    a = c.a
    if a.readers.empty or int(a.readers["n_used"].sum()) == 0:
        return
    c.doc.add(
        d.Heading("Clinical context: the radiologists' BI-RADS calls"),
        d.Paragraph(
            "Each reader's BI-RADS category is a call: 4a or above (a plain 4 included) is "
            "malignant. Empty cells (missing) and values that are not a BI-RADS category (stray, "
            "BI-RADS 0 included) are left out of that reader's numbers and counted here."
        ),
    )
    rows = [
        {
            "Reader": reader_style(r["reader"]).name,
            "Images": r["n_images"],
            "Used": r["n_used"],
            "Missing (left out)": r["n_missing"],
            "Stray (left out)": r["n_stray"],
            "Sensitivity": fnum(r["sensitivity"]),
            "Specificity": fnum(r["specificity"]),
            "TP / FN / TN / FP": f"{r['tp']} / {r['fn']} / {r['tn']} / {r['fp']}",
        }
        for r in a.readers.to_dict("records")
    ]
    c.table(
        pd.DataFrame(rows),
        "Reader operating points on the test images of this experiment.",
        "readers",
    )
    if not a.agreement.empty:
        r = a.agreement.iloc[0]
        c.doc.add(
            d.Paragraph(
                f"Agreement between the readers on the {int(r['n_both_assessed'])} images both "
                f"assessed: Cohen's kappa {fnum(r['kappa_calls'])} on the malignant/benign calls "
                f"({fnum(100 * r['percent_agreement_calls'], 1)}% equal calls) and "
                f"{fnum(r['kappa_categories'])} on the BI-RADS categories (unweighted)."
            )
        )
    if not a.vs_readers.empty:
        rows = [
            {
                "Model": r["model"],
                "Optimizer": r["optimizer"],
                "Seed": r["seed"],
                "Reader": reader_style(r["reader"]).name,
                "Images": r["n_images"],
                "Reader sens / spec": f"{fnum(r['reader_sensitivity'])} / {fnum(r['reader_specificity'])}",
                "Model sensitivity at reader's specificity": fnum(
                    r["model_sensitivity_at_reader_specificity"]
                ),
                "Model specificity at reader's sensitivity": fnum(
                    r["model_specificity_at_reader_sensitivity"]
                ),
            }
            for r in a.vs_readers.to_dict("records")
        ]
        c.table(
            pd.DataFrame(rows),
            "The model against each reader on the same pooled test images (those the reader "
            "assessed): its best sensitivity among thresholds at least as specific as the "
            "reader, and its best specificity among thresholds at least as sensitive. The "
            "threshold is chosen on the test predictions, so this is an optimistic comparison.",
            "vs_readers",
        )


def _flatness(c: _Ctx) -> None:
    a = c.a
    if a.flatness.empty:
        return
    c.doc.add(
        d.Heading("Flatness of the minima"),
        d.Paragraph(
            "Measured on the best checkpoint of each fold, on a fixed seeded subset of its "
            "training data: the largest Hessian eigenvalue (power iteration on Hessian-vector "
            "products), the Hessian trace (Hutchinson), and the SAM sharpness (loss increase "
            "after one ascent step of radius rho). Lower means flatter."
        ),
    )
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Folds": r["n_units"],
            "Top Hessian eigenvalue": _sig_cell(r, "hessian_top_eigenvalue"),
            "Hessian trace": _sig_cell(r, "hessian_trace"),
            "SAM sharpness": _sig_cell(r, "sam_sharpness"),
            "Cost per fold": seconds(r["seconds_mean"]),
            "Samples": fnum(r["n_samples_mean"], 0),
        }
        for r in a.flatness.to_dict("records")
    ]
    c.table(pd.DataFrame(rows), "Mean ± std over folds [95% t CI].", "flatness")
    for model in a.models:
        c.image(
            f"flatness/{model}",
            f"{model}: training loss along one filter-normalised random direction from the best checkpoint (mean ± std over folds), and each fold's largest Hessian eigenvalue.",
        )


def _files(c: _Ctx) -> None:
    c.doc.add(
        d.Heading("Files"),
        d.Paragraph(
            "Every table is also a full-precision CSV beside this report (`table_*.csv`); every "
            "figure is a PNG (200 dpi) and an SVG (`fig_*`). The same files are attached to each "
            "parent run of the experiment under `report/`."
        ),
    )
