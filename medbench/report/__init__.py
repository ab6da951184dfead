"""Reports built from MLflow: figures, tables, statistics, ``report.md`` and ``report.html``.

One direction, each module one concern:

- ``results`` and ``training``: tables from the runs (test metrics recomputed from each fold's
  ``predictions.csv``, seeds averaged within each fold; curves, cost, fidelity and flatness),
  with ``stats`` (stratified bootstrap counts, percentile and Wilson intervals, the corrected
  resampled and Bayesian correlated t-tests, Holm) and ``clinical`` (the readers' BI-RADS calls,
  kappas). Means, standard deviations and quartiles come from :func:`medbench.metrics.describe`,
  :func:`~medbench.metrics.quartiles` and :func:`~medbench.metrics.describe_by`.
- ``analysis``: :func:`analyse` computes every number once: each table, what each figure draws,
  and the closing summary.
- ``vocab``: metric labels, optimizer order and colours, reader names and markers.
- ``formatting``: how numbers are printed.
- ``figures`` (draw only), ``sections`` and ``document`` (Markdown and HTML), ``summary`` (the
  command line's closing table).
- ``build``: :func:`read_experiment` → :func:`analyse` → :func:`write_report`, or
  :func:`build_report` for all three (the ``medbench report`` entry point).
"""

from __future__ import annotations

from importlib import import_module

_PUBLIC = {
    "Analysis": "medbench.report.analysis",
    "analyse": "medbench.report.analysis",
    "build_report": "medbench.report.build",
    "read_experiment": "medbench.report.build",
    "write_report": "medbench.report.build",
    "render_summary": "medbench.report.summary",
    "summary_table": "medbench.report.summary",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    # lazy: importing medbench.report must not pull matplotlib in
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
