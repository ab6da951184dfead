"""Clinical context: the radiologists' BI-RADS calls as a yardstick. Each reader's operating
point (Wilson intervals), the agreement between the two readers (Cohen's kappas) when the data
has two, and each model against each reader on the same test images (its sensitivity at the
reader's specificity, with a bootstrap interval, and its specificity at the reader's
sensitivity). Rows and sentences follow the readers the data has (one in BUS-BRA)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from medbench.report import document as d
from medbench.report import stats
from medbench.report.clinical import (
    KAPPAS,
    operating_point,
    reader_agreement,
    reader_calls,
    readers_in,
    readers_table,
    sensitivity_at_specificity,
    sensitivity_at_specificity_resampled,
    specificity_at_sensitivity,
)
from medbench.report.formatting import fci, fnum
from medbench.report.part import Analysis, Part, Writer
from medbench.report.resampling import Resampling
from medbench.report.vocab import reader_style


@dataclass
class Readers:
    readers: pd.DataFrame  # per reader: operating point on every test image
    agreement: pd.DataFrame  # Cohen's kappas between the readers
    vs_readers: pd.DataFrame  # the model against each reader on the same images


def analyse(a: Analysis) -> Readers:
    i = a.inputs
    return Readers(
        readers=readers_table(i.images),
        agreement=agreement_table(i.images),
        vs_readers=i.in_order(model_vs_readers(i.predictions, i.boot)),
    )


def tables(r: Readers) -> dict[str, pd.DataFrame]:
    return {
        "readers": r.readers,
        "reader_agreement": r.agreement,
        "model_vs_readers": r.vs_readers,
    }


def sections(readers: Readers, w: Writer) -> None:
    if readers.readers.empty or int(readers.readers["n_used"].sum()) == 0:
        return
    w.doc.add(
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
            "Sensitivity [95% CI]": f"{fnum(r['sensitivity'])} {fci(r['sensitivity_ci_low'], r['sensitivity_ci_high'])}".strip(),
            "Specificity [95% CI]": f"{fnum(r['specificity'])} {fci(r['specificity_ci_low'], r['specificity_ci_high'])}".strip(),
            "TP / FN / TN / FP": f"{r['tp']} / {r['fn']} / {r['tn']} / {r['fp']}",
        }
        for r in readers.readers.to_dict("records")
    ]
    w.table(
        pd.DataFrame(rows),
        "Reader operating points on the test images of this experiment (Wilson intervals).",
        "readers",
        keep=("Reader",),
    )
    if not readers.agreement.empty and int(readers.agreement["n_both_assessed"].iloc[0]):
        r = readers.agreement.iloc[0]

        def kappa(name: str) -> str:
            return f"{fnum(r[name])} {fci(r[f'{name}_ci_low'], r[f'{name}_ci_high'])}".strip()

        w.doc.add(
            d.Paragraph(
                f"Agreement between the readers on the {int(r['n_both_assessed'])} images both "
                f"assessed ({fnum(100 * r['percent_agreement_calls'], 1)}% equal calls), Cohen's "
                f"kappa [95% bootstrap CI]: {kappa('kappa_calls')} on the malignant/benign calls; "
                f"on the ordinal BI-RADS categories {kappa('kappa_linear')} with linear and "
                f"{kappa('kappa_quadratic')} with quadratic weights (a plain 4 counted as 4b), "
                f"{kappa('kappa_categories')} unweighted."
            )
        )
    if not readers.vs_readers.empty:
        rows = [
            {
                "Model": r["model"],
                "Optimizer": r["optimizer"],
                "Seed": r["seed"],
                "Reader": reader_style(r["reader"]).name,
                "Images": r["n_images"],
                "Reader sens / spec": f"{fnum(r['reader_sensitivity'])} / {fnum(r['reader_specificity'])}",
                "Model sensitivity at reader's specificity [95% CI]": (
                    f"{fnum(r['model_sensitivity_at_reader_specificity'])} "
                    f"{fci(r['model_sensitivity_at_reader_specificity_ci_low'], r['model_sensitivity_at_reader_specificity_ci_high'])}"
                ).strip(),
                "Model specificity at reader's sensitivity": fnum(
                    r["model_specificity_at_reader_sensitivity"]
                ),
            }
            for r in readers.vs_readers.to_dict("records")
        ]
        w.table(
            pd.DataFrame(rows),
            "The model against each reader on the same pooled test images (those the reader "
            "assessed): its best sensitivity among thresholds at least as specific as the "
            "reader (interval: stratified bootstrap over images, the reader's specificity "
            "recomputed in each resample), and its best specificity among thresholds at least as "
            "sensitive. The threshold is chosen on the test predictions, so this is an "
            "optimistic comparison.",
            "model_vs_readers",
            keep=("Optimizer", "Reader"),
        )


PART = Part("readers", analyse, tables, sections=sections)


def agreement_table(imgs: pd.DataFrame) -> pd.DataFrame:
    """Agreement between the readers on the images both assessed: Cohen's kappa on the calls, on
    the categories (unweighted) and on the ordinal categories with linear and quadratic weights,
    each with a percentile bootstrap interval over those images; empty unless the data has two
    readers."""
    readers = readers_in(imgs)
    if len(readers) < 2:
        return pd.DataFrame()
    ag = reader_agreement(imgs[readers[0]].tolist(), imgs[readers[1]].tolist())
    row = {
        "n_images": len(imgs),
        "n_both_assessed": ag.n,
        "percent_agreement_calls": ag.percent_agreement,
    }
    for name in KAPPAS:
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
        for reader in readers_in(part):
            calls = reader_calls(part[reader].tolist())
            valid = calls.valid
            if not valid.any():
                continue
            y = part["label"].to_numpy()[valid]
            p = part["prob_malignant"].to_numpy()[valid]
            c = calls.positive[valid].astype(int)
            point = operating_point(y, c)
            sens, thr_sens = sensitivity_at_specificity(y, p, point.specificity)
            spec, thr_spec = specificity_at_sensitivity(y, p, point.sensitivity)
            w = boot.columns(model, part["id"].to_numpy()[valid])
            low, high = stats.percentile_interval(
                sensitivity_at_specificity_resampled(y, p, c, w), confidence
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
