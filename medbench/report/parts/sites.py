"""Per site: the test metrics of each model × optimizer on each hospital's images within each
fold, mean over folds with a bootstrap interval; images without a site are left out."""

from __future__ import annotations

import pandas as pd

from medbench.metrics import binary_metrics
from medbench.report import document as d
from medbench.report.formatting import fcell
from medbench.report.part import Analysis, Part, Writer
from medbench.report.resampling import Resampling, bounded_columns, resampled_fold_mean
from medbench.report.units import fold_keys, fold_means
from medbench.report.vocab import metric_label

SITE_METRICS = ("auc", "accuracy", "sensitivity", "specificity")


def analyse(a: Analysis) -> pd.DataFrame:
    """:func:`sites` of the usable units' predictions."""
    i = a.inputs
    return i.in_order(sites(i.predictions, i.threshold, i.boot))


def tables(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"sites": table}


def sections(table: pd.DataFrame, w: Writer) -> None:
    a = w.inputs
    if table.empty:
        return
    w.doc.add(d.Heading("Per site"))
    rows = [
        {
            "Model": r["model"],
            "Optimizer": r["optimizer"],
            "Site": r["site"],
            "Folds": r["n_folds"],
            "Images": r["n_images"],
            **{metric_label(m, capitalised=True): fcell(r, m) for m in SITE_METRICS},
        }
        for r in table.to_dict("records")
    ]
    missing = int(a.predictions["site"].isna().sum()) if "site" in a.predictions else 0
    note = f" {missing} prediction(s) without a site are left out." if missing else ""
    w.table(
        pd.DataFrame(rows),
        "Test metrics on each hospital's images within each fold: mean ± std over folds [95% "
        "bootstrap CI]." + note,
        "sites",
    )


PART = Part("sites", analyse, tables, sections=sections)


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
        keys = [*fold_keys(part), "seed"]
        for key, unit in part.groupby(keys):
            m = binary_metrics(
                unit["label"].to_numpy(), unit["prob_malignant"].to_numpy(), threshold
            )
            per.append({"model": model, "optimizer": opt, **dict(zip(keys, key, strict=True)), **m})
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
