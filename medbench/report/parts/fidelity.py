"""Does the precision keep SAM's perturbation? How faithfully the compute dtype carried the
weight perturbation of each SAM-family run (logged per epoch as ``perturbation_fidelity`` and
``perturbation_norm_ratio``), against :data:`~medbench.optim.fidelity.FIDELITY_THRESHOLD`, the
threshold training warns at."""

from __future__ import annotations

import math

import pandas as pd

from medbench.optim.fidelity import FIDELITY_THRESHOLD
from medbench.report import document as d
from medbench.report.formatting import fnum
from medbench.report.part import Analysis, Part, Writer
from medbench.report.units import unit_curves


def analyse(a: Analysis) -> pd.DataFrame:
    """:func:`fidelity` of the usable units."""
    i = a.inputs
    return i.in_order(fidelity(i.record.curves, i.inventory.units))


def tables(fid: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"fidelity": fid}


def sections(fid: pd.DataFrame, w: Writer) -> None:
    if fid.empty:
        return
    w.doc.add(
        d.Heading("Does the precision keep SAM's perturbation?", 3),
        d.Paragraph(
            "Cosine between the weight perturbation a SAM-family optimizer intends and the one the "
            "forward pass sees in the compute dtype, measured on the first step of each epoch "
            f"(1.0 in fp32). Below {FIDELITY_THRESHOLD:g} the arm is partly its base optimizer "
            "plus noise."
        ),
    )
    table = pd.DataFrame(
        {
            "Model": fid["model"],
            "Optimizer": fid["optimizer"],
            "Runs": fid["n_runs"],
            "Epochs measured": fid["n_epochs"],
            "Fidelity median": [fnum(x) for x in fid["fidelity_median"]],
            "Fidelity min": [fnum(x) for x in fid["fidelity_min"]],
            f"Epochs below {FIDELITY_THRESHOLD:g}": fid["n_below_threshold"],
            "Norm ratio range": [
                f"{fnum(x)}–{fnum(y)}"
                for x, y in zip(fid["norm_ratio_min"], fid["norm_ratio_max"], strict=True)
            ],
        }
    )
    # every column stays, even when each row holds the same value: 1.000 in every row of every
    # arm is the finding here, not a constant to fold into the caption
    w.table(table, "", "fidelity", keep=tuple(table.columns))
    low = fid[fid["fidelity_min"] < FIDELITY_THRESHOLD]
    if low.empty:
        w.doc.add(
            d.Paragraph(
                f"Fidelity stayed at or above {FIDELITY_THRESHOLD:g} in every epoch measured: the "
                "compute dtype carried the perturbation."
            )
        )
    else:
        names = ", ".join(
            f"{r.model}/{r.optimizer} (min {fnum(r.fidelity_min)})" for r in low.itertuples()
        )
        w.doc.add(
            d.Paragraph(
                f"**Warning: fidelity fell below {FIDELITY_THRESHOLD:g}** for {names}: under this "
                "precision these arms are partly their base optimizer plus noise, and their "
                "comparison with it is not a comparison of SAM. Train in fp32 (`train.amp: off`)."
            )
        )


PART = Part("fidelity", analyse, tables, sections=sections)


def fidelity(curves: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Per (model, optimizer) that logged it: how faithfully the compute dtype carried the SAM
    perturbation (cosine between the intended ``e`` and what the forward pass saw, on each epoch's
    first step): runs, epochs measured, minimum, median and mean fidelity, epochs below
    :data:`FIDELITY_THRESHOLD`, and the range of the norm ratio."""
    uc = unit_curves(curves, units)
    fid = uc[uc["metric"] == "perturbation_fidelity"]
    ratio = uc[uc["metric"] == "perturbation_norm_ratio"]
    rows = []
    for (model, opt), part in fid.groupby(["model", "optimizer"], sort=False):
        values = part["value"].astype(float)
        r = ratio[(ratio["model"] == model) & (ratio["optimizer"] == opt)]["value"].astype(float)
        rows.append(
            {
                "model": model,
                "optimizer": opt,
                "n_runs": part["run_id"].nunique(),
                "n_epochs": len(values),
                "fidelity_min": float(values.min()),
                "fidelity_median": float(values.median()),
                "fidelity_mean": float(values.mean()),
                "n_below_threshold": int((values < FIDELITY_THRESHOLD).sum()),
                "threshold": FIDELITY_THRESHOLD,
                "norm_ratio_min": float(r.min()) if len(r) else math.nan,
                "norm_ratio_max": float(r.max()) if len(r) else math.nan,
            }
        )
    return pd.DataFrame(rows)
