"""The command line's closing table and verdict, taken from the analysis so that they agree
with the report to the last digit: per model and optimizer, finished and failed folds, test AUC
and accuracy; then each model's bottom line, the first line of its verdict in the report."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from medbench.report.formatting import fpm
from medbench.report.part import Analysis

#: The verdict's table in a report folder: one row per model with its bottom line.
VERDICT_TABLE = "table_verdict.csv"
#: Width of the closing lines in the terminal.
WIDTH = 100

SUMMARY_COLUMNS = [
    "model",
    "optimizer",
    "runs",
    "failed",
    "auc_mean",
    "auc_std",
    "accuracy_mean",
    "accuracy_std",
]


def summary_table(analysis: Analysis) -> pd.DataFrame:
    """Model × optimizer: finished and failed folds, test AUC and accuracy over folds.

    Parameters
    ----------
    analysis : Analysis
        The analysis of the experiment, as made by :func:`medbench.report.analysis.analyse`.

    Returns
    -------
    DataFrame
        One row per row of the performance part's table with columns ``model``, ``optimizer``,
        ``runs`` (finished folds that count), ``failed`` (fold runs that failed and were not
        rerun successfully), ``auc_mean``, ``auc_std``, ``accuracy_mean``, ``accuracy_std``:
        the performance table's own numbers, recomputed from the predictions.
    """
    problems = analysis.inputs.inventory.problems
    failed = problems[problems["status"] == "FAILED"].groupby(["model", "optimizer"]).size()
    rows = [
        {
            "model": r["model"],
            "optimizer": r["optimizer"],
            "runs": int(r["n_finished"]),
            "failed": int(failed.get((r["model"], r["optimizer"]), 0)),
            **{c: r[c] for c in SUMMARY_COLUMNS[4:]},
        }
        for r in analysis.result("performance").performance.to_dict("records")
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def render_summary(summary: pd.DataFrame) -> str:
    """The table of :func:`summary_table` as fixed-width text, one line per model × optimizer.

    Parameters
    ----------
    summary : DataFrame
        As returned by :func:`summary_table`.

    Returns
    -------
    str
        Columns ``model``, ``optimizer``, ``test AUC``, ``test accuracy`` (mean ± std over folds,
        three decimals as in the report; the mean alone for a single fold, "undefined" for none)
        and ``runs`` (with "(N failed)" when some failed).
    """

    def cell(mean: float, std: float) -> str:
        return "undefined" if not math.isfinite(mean) else fpm(mean, std)

    lines = [f"{'model':<16} {'optimizer':<10} {'test AUC':<16} {'test accuracy':<16} runs"]
    for r in summary.itertuples():
        runs = f"{r.runs}" + (f" ({r.failed} failed)" if r.failed else "")
        auc, accuracy = cell(r.auc_mean, r.auc_std), cell(r.accuracy_mean, r.accuracy_std)
        lines.append(f"{r.model:<16} {r.optimizer:<10} {auc:<16} {accuracy:<16} {runs}")
    return "\n".join(lines)


def bottom_lines(analysis: Analysis) -> dict[str, str]:
    """Per model, the bottom line of its verdict (the verdict part's), in report order."""
    return dict(analysis.result("verdict").bottom_lines)


def read_bottom_lines(report_dir: str | Path) -> dict[str, str]:
    """The bottom lines of a written report (its :data:`VERDICT_TABLE`); empty without one."""
    path = Path(report_dir) / VERDICT_TABLE
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype={"model": str, "bottom_line": str})
    return dict(zip(table["model"], table["bottom_line"].fillna(""), strict=True))


def render_verdict(lines: Mapping[str, str]) -> str:
    """Each model's bottom line as the terminal prints it: ``verdict  MODEL: ...``, wrapped at
    :data:`WIDTH` columns under its first word; empty when there is none."""
    out = []
    for model, line in lines.items():
        out.append(
            textwrap.fill(
                f"{model}: {line}",
                WIDTH,
                initial_indent="verdict  ",
                subsequent_indent=" " * len("verdict  "),
                break_on_hyphens=False,
            )
        )
    return "\n".join(out)
