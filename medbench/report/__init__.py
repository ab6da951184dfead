"""Reports built from MLflow: figures, tables, statistics, ``report.md`` and ``report.html``.

The report is an ordered list of parts, one module per topic (``parts``: the verdict,
performance, comparisons, calibration, ..., the appendix); each part computes its numbers, names
its tables, draws its figures and writes its section(s) (the contract: ``part.Part``). What they
share:

- ``inputs``: the common inputs, computed once: the typed config of the runs, which runs count
  (``units``), their metrics recomputed from each fold's ``predictions.csv`` with seeds averaged
  within each fold, and the stratified bootstrap (``resampling``).
- ``stats`` (percentile and Wilson intervals, the corrected resampled and Bayesian correlated
  t-tests, Holm) and ``clinical`` (the readers' BI-RADS calls, kappas).
- ``vocab`` (metric labels, optimizer order and colours, reader styles), ``formatting`` (how
  numbers are printed), ``figures`` (style, saving, the ROC figure), ``document`` (Markdown and
  HTML), ``summary`` (the command line's closing table).
- ``analysis``: :func:`analyse` computes the inputs and every part's result once.
- ``build``: :func:`read_experiment` → :func:`analyse` → :func:`write_report`, or
  :func:`build_report` for all three (the ``medbench report`` entry point).
"""

from __future__ import annotations

from importlib import import_module

_PUBLIC = {
    "Analysis": "medbench.report.part",
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
