"""PROVISIONAL: the closing summary from the analysis (the report engineer's version replaces it)."""

from __future__ import annotations

import math

import pandas as pd


def summary_table(a) -> pd.DataFrame:
    rows = []
    probs = a.inventory.problems
    for r in a.performance.to_dict("records"):
        failed = 0
        if not probs.empty:
            failed = int(
                (
                    (probs["model"] == r["model"])
                    & (probs["optimizer"] == r["optimizer"])
                    & (probs["status"] == "FAILED")
                ).sum()
            )
        rows.append(
            {
                "model": r["model"],
                "optimizer": r["optimizer"],
                "runs": int(r["n_finished"]),
                "failed": failed,
                "auc_mean": r["auc_mean"],
                "auc_std": r["auc_std"],
                "accuracy_mean": r["accuracy_mean"],
                "accuracy_std": r["accuracy_std"],
            }
        )
    return pd.DataFrame(rows)


def render_summary(summary: pd.DataFrame) -> str:
    def pm(m: float, s: float) -> str:
        return "undefined" if math.isnan(m) else f"{m:.3f} ± {s:.3f}"

    lines = [f"{'model':<16} {'optimizer':<10} {'test AUC':<16} {'test accuracy':<16} runs"]
    for r in summary.itertuples():
        runs = f"{r.runs}" + (f" ({r.failed} failed)" if r.failed else "")
        lines.append(
            f"{r.model:<16} {r.optimizer:<10} {pm(r.auc_mean, r.auc_std):<16} {pm(r.accuracy_mean, r.accuracy_std):<16} {runs}"
        )
    return "\n".join(lines)
