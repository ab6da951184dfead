"""Reports built from MLflow: figures, tables, statistics, ``report.md`` and ``report.html``.

Layout: ``stats`` (intervals, bootstrap, paired tests), ``clinical`` (readers), ``results`` and
``training`` (tables from runs), ``analysis`` (all tables at once), ``figures``, ``document``
(Markdown and HTML rendering), ``build`` (the ``medbench report`` entry point).
"""

from __future__ import annotations

__all__ = ["build_report"]


def __getattr__(name: str):
    # lazy: importing medbench.report must not pull matplotlib in
    if name == "build_report":
        from medbench.report.build import build_report

        return build_report
    raise AttributeError(name)
